"""Message byte buffers handed to rclpy without a copy, and the NaN-only depth check."""

from __future__ import annotations

import array

import numpy as np
import pytest

from depth_sr_ros.core.image_msg import depth_to_image_fields
from depth_sr_ros.core.msg_buffer import POOL_PER_SIZE, backing_array, message_bytes, nan_is_the_only_invalid
from depth_sr_ros.ros.rclpy_messages import uint8_array


def test_message_bytes_are_writable_and_stored_in_an_array():
    data = message_bytes(12)
    assert data.dtype == np.uint8 and data.shape == (12,) and data.flags.writeable
    owner = backing_array(data)
    assert isinstance(owner, array.array) and owner.typecode == "B" and len(owner) == 12
    data.view("<f4")[1] = 1.0  # a float written through a view lands in the array
    assert bytes(owner[4:8]) == np.float32(1.0).tobytes()
    assert backing_array(message_bytes(0)) is not None
    with pytest.raises(ValueError):
        message_bytes(-1)


def test_a_buffer_is_reused_only_once_nothing_holds_it():
    size = 4099  # a size no other test takes
    data = message_bytes(size)
    first = id(backing_array(data))  # the pool keeps the array, so its id stays its own
    other = message_bytes(size)
    assert id(backing_array(other)) != first  # `data` still holds it
    message = backing_array(data)  # what an rclpy message keeps: the array itself
    view = data[::2]
    del data
    assert id(backing_array(message_bytes(size))) != first  # the message and a view hold it
    del view
    assert id(backing_array(message_bytes(size))) != first  # the message holds it
    del message
    assert id(backing_array(message_bytes(size))) == first  # nothing holds it: reused
    assert id(backing_array(other)) != first


def test_pool_keeps_only_a_few_buffers_per_size():
    size = 4111
    taken = [message_bytes(size) for _ in range(POOL_PER_SIZE + 2)]  # all held: fresh arrays
    owners = {id(backing_array(t)) for t in taken}
    assert len(owners) == POOL_PER_SIZE + 2
    del taken
    again = [backing_array(message_bytes(size)) for _ in range(POOL_PER_SIZE + 1)]
    assert len({id(a) for a in again}) == POOL_PER_SIZE + 1


def test_backing_array_only_for_a_whole_flat_byte_view():
    data = message_bytes(48)
    points = data.view(np.float32).reshape(3, 4)
    assert backing_array(points.reshape(-1).view(np.uint8)) is backing_array(data)  # as the cloud makes it
    assert backing_array(data[4:]) is None  # a part
    assert backing_array(data[:-4]) is None
    assert backing_array(data[::2]) is None
    assert backing_array(points) is None  # not bytes
    assert backing_array(data.reshape(6, 8)) is None  # not flat
    assert backing_array(np.zeros(48, np.uint8)) is None  # numpy's own memory
    assert backing_array(np.frombuffer(bytearray(48), np.uint8)) is None  # another buffer


def test_uint8_array_hands_over_the_backing_array_and_copies_anything_else():
    data = message_bytes(6)
    data[:] = np.arange(6)
    assert uint8_array(data) is backing_array(data)
    part = uint8_array(data[2:])
    assert list(part) == [2, 3, 4, 5] and part is not backing_array(data)
    part[0] = 99  # a copy: the buffer is unchanged
    assert data[2] == 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 2.5, np.nan], True),
        ([np.nan, np.nan], True),
        ([0.1, 65.0], True),
        ([1.0, 0.0], False),
        ([1.0, -0.0], False),
        ([1.0, -2.0], False),
        ([1.0, np.inf], False),
        ([np.nan, -np.inf], False),
    ],
)
def test_nan_is_the_only_invalid(values, expected):
    depth = np.array(values, np.float32).reshape(1, -1)
    assert nan_is_the_only_invalid(depth) is expected
    strided = np.repeat(np.tile(depth, (3, 1)), 2, axis=1)[:, ::2]  # every value, not contiguous
    assert nan_is_the_only_invalid(strided) is expected


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_depth_image_is_written_into_a_message_buffer(encoding):
    depth = np.linspace(0.5, 4.0, 12, dtype=np.float32).reshape(3, 4)
    depth[0, 1], depth[1, 2], depth[2, 3], depth[2, 0] = np.nan, 0.0, np.inf, -1.0
    fields = depth_to_image_fields(depth, encoding)
    assert backing_array(fields.data) is not None and fields.data.size == fields.step * fields.height
    valid = np.isfinite(depth) & (depth > 0)
    if encoding == "32FC1":
        expected = np.where(valid, depth, np.float32(np.nan)).astype("<f4")
    else:
        expected = np.where(valid, np.rint(np.nan_to_num(depth, posinf=0) * 1000), 0).astype("<u2")
    assert fields.data.tobytes() == expected.tobytes()
    clean = depth_to_image_fields(np.where(valid, depth, np.float32(np.nan)), encoding)  # NaN only: copied as is
    assert clean.data.tobytes() == expected.tobytes()
