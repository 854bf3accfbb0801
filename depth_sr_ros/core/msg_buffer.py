"""Byte buffers that become message `data` without another copy, and the depth check that lets
a depth array go into one as it is.

rclpy keeps a `uint8[]` field as an `array.array('B')`; anything else is copied into one when the
message is built (6.1 MB per 640x480 frame for the depth image and the XYZRGB cloud). The output
field sets are therefore written straight into `array.array('B')` storage: `message_bytes(n)`
is a writable numpy view of a fresh one, which numpy code (and `rosbags`) uses as any uint8
array, and `backing_array(data)` hands the `array.array` itself to the rclpy builder
(`ros/rclpy_messages.py`), which then keeps it.
"""

from __future__ import annotations

import array

import numpy as np


def message_bytes(nbytes: int) -> np.ndarray:
    """A writable 1-D uint8 array of `nbytes` zero bytes, stored in a fresh `array.array('B')`."""
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    return np.frombuffer(array.array("B", b"\0") * nbytes if nbytes else array.array("B"), dtype=np.uint8)


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
