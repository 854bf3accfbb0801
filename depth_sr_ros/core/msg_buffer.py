"""Byte buffers that become message `data` without another copy, and the depth check that lets
a depth array go into one as it is.

rclpy keeps a `uint8[]` field as an `array.array('B')`; anything else is copied into one when the
message is built (6.1 MB per 640x480 frame for the depth image and the XYZRGB cloud). The output
field sets are therefore written straight into `array.array('B')` storage: `message_bytes(n)`
is a writable numpy view of one, which numpy code (and `rosbags`) uses as any uint8 array, and
`backing_array(data)` hands the `array.array` itself to the rclpy builder
(`ros/rclpy_messages.py`), which then keeps it.

The arrays are pooled: a fresh multi-megabyte array costs a page fault per 4 KiB page on its
first write, so a buffer that nothing references any more (its messages published and dropped,
its field sets and views gone) is handed out again instead. Only the pool holding it is checked
by reference count, so a buffer still held anywhere (a message in a queue, a view, a recorded
field set) is never reused.
"""

from __future__ import annotations

import array
import sys
import threading

import numpy as np

POOL_PER_SIZE = 3  # spare buffers kept per size: enough for a frame in flight while the next is built
POOL_SIZES = 4  # sizes kept (an image and a cloud, and a change of resolution or stride)


class _Pool:
    """Spare `array.array('B')` buffers by size; one is reused once only the pool references it."""

    def __init__(self) -> None:
        self._spares: dict[int, list[array.array]] = {}
        self._lock = threading.Lock()
        probe = [array.array("B")]
        self._unreferenced = _references(probe, 0)  # what "only the pool's list" counts here

    def take(self, nbytes: int) -> array.array:
        with self._lock:
            spares = self._spares.pop(nbytes, [])
            self._spares[nbytes] = spares  # most recently used size last
            for index in range(len(spares)):
                if _references(spares, index) <= self._unreferenced:
                    return spares[index]
            buffer = array.array("B", b"\0") * nbytes
            if len(spares) < POOL_PER_SIZE:
                spares.append(buffer)
            while len(self._spares) > POOL_SIZES:
                del self._spares[next(iter(self._spares))]
            return buffer


def _references(buffers: list[array.array], index: int) -> int:
    return sys.getrefcount(buffers[index])


_POOL = _Pool()


def message_bytes(nbytes: int) -> np.ndarray:
    """A writable 1-D uint8 array of `nbytes` bytes stored in an `array.array('B')`, from the
    pool when a spare of that size is free. Its contents are unspecified (a reused buffer holds
    an earlier message's bytes): write every byte."""
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    return np.frombuffer(_POOL.take(nbytes), dtype=np.uint8)


def backing_array(data: np.ndarray) -> array.array | None:
    """The `array.array('B')` that `data` views as a whole (as `message_bytes` gives), else None.

    None unless `data` is a 1-D contiguous uint8 array that starts at the array's first byte and
    covers all of it: a part of one, or any other array, is not handed over.
    """
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 1:
        return None
    base = data.base
    while isinstance(base, np.ndarray):
        base = base.base
    owner = base.obj if isinstance(base, memoryview) else base
    if not isinstance(owner, array.array) or owner.typecode != "B":
        return None
    if not data.flags.c_contiguous or data.size != len(owner):
        return None
    if data.size and data.ctypes.data != owner.buffer_info()[0]:
        return None
    return owner


def nan_is_the_only_invalid(depth: np.ndarray) -> bool:
    """True when every pixel of float `depth` (metres) is either NaN or finite and > 0, so that
    REP 118's other invalid values (0, negative, inf) need not be rewritten as NaN.

    Two reductions that skip NaN (`fmin`, `fmax`), no temporary array.
    """
    if depth.size == 0:
        return True
    low = np.fmin.reduce(depth, axis=None)
    if np.isnan(low):  # every pixel is NaN
        return True
    return bool(low > 0 and np.fmax.reduce(depth, axis=None) < np.inf)
