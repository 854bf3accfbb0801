"""Image fields <-> arrays: every encoding, row padding, big-endian, data containers, errors."""

from __future__ import annotations

import array
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import depth_from_image, depth_to_image_fields, rgb_from_image

TYPES = get_typestore(Stores.ROS2_HUMBLE).types


def ros_image(encoding: str, height: int, width: int, step: int, data: bytes, is_bigendian: int = 0):
    """A real rosbags sensor_msgs/Image (data as the uint8 ndarray rosbags uses)."""
    header = TYPES["std_msgs/msg/Header"](
        stamp=TYPES["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
    )
    return TYPES["sensor_msgs/msg/Image"](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=np.frombuffer(data, dtype=np.uint8).copy(),
    )


# Two rows of two pixels; (R, G, B) per pixel, chosen so every channel value is distinct.
PIXELS = [[(10, 20, 30), (40, 50, 60)], [(70, 80, 90), (100, 110, 120)]]
EXPECTED_RGB = np.array(PIXELS, dtype=np.uint8)


def packed_colour(order: str, padding: int) -> bytes:
    """Rows of PIXELS with channels in `order` (e.g. "bgra", alpha 255) and `padding` junk bytes."""
    rows = []
    for row in PIXELS:
        raw = b""
        for r, g, b in row:
            value = {"r": r, "g": g, "b": b, "a": 255}
            raw += bytes(value[c] for c in order)
        rows.append(raw + b"\xee" * padding)
    return b"".join(rows)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_channel_order_with_row_padding_is_a_view(encoding):
    order = encoding[:-1]
    msg = ros_image(encoding, 2, 2, 2 * len(order) + 3, packed_colour(order, padding=3))
    rgb = rgb_from_image(msg)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, EXPECTED_RGB)
    assert np.shares_memory(rgb, msg.data)


def test_mono8_grey_is_replicated():
    msg = ros_image("mono8", 2, 3, 4, bytes([1, 2, 3, 99, 4, 5, 6, 99]))
    rgb = rgb_from_image(msg)
    expected = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], expected)


@pytest.mark.parametrize(
    "make_data",
    [
        bytes,
        bytearray,
        memoryview,
        lambda raw: array.array("B", raw),
        list,
        lambda raw: np.frombuffer(raw, np.uint8),
    ],
    ids=["bytes", "bytearray", "memoryview", "array_B", "list", "ndarray"],
)
def test_any_object_with_image_fields_and_any_data_container(make_data):
    raw = packed_colour("bgr", padding=1)
    msg = SimpleNamespace(height=2, width=2, encoding="bgr8", is_bigendian=0, step=7, data=make_data(raw))
    np.testing.assert_array_equal(rgb_from_image(msg), EXPECTED_RGB)


def test_array_array_data_is_not_copied():
    data = array.array("B", packed_colour("rgb", padding=0))
    msg = SimpleNamespace(height=2, width=2, encoding="rgb8", is_bigendian=0, step=6, data=data)
    rgb = rgb_from_image(msg)
    data[0] = 11  # the first red value, seen through the view
    assert rgb[0, 0, 0] == 11


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
@pytest.mark.parametrize("bigendian", [0, 1])
def test_millimetre_depth_with_padding_and_byte_order(encoding, bigendian):
    fmt = ">" if bigendian else "<"
    rows = [[1000, 0, 65535], [1, 2500, 300]]  # millimetres; 0 is invalid
    raw = b"".join(struct.pack(f"{fmt}3H", *row) + b"\x7f\x7f" for row in rows)
    msg = ros_image(encoding, 2, 3, 8, raw, is_bigendian=bigendian)
    depth = depth_from_image(msg)
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    expected = np.array([[1.0, np.nan, 65.535], [0.001, 2.5, 0.3]], dtype=np.float32)
    np.testing.assert_array_equal(depth, expected)


@pytest.mark.parametrize("bigendian", [0, 1])
def test_float_depth_with_padding_byte_order_and_invalid_values(bigendian):
    fmt = ">" if bigendian else "<"
    rows = [[1.5, float("nan"), float("inf")], [-2.0, 0.0, 4.25]]
    raw = b"".join(struct.pack(f"{fmt}3f", *row) + b"\x00" * 4 for row in rows)
    msg = ros_image("32FC1", 2, 3, 16, raw, is_bigendian=bigendian)
    depth = depth_from_image(msg)
    expected = np.array([[1.5, np.nan, np.nan], [np.nan, np.nan, 4.25]], dtype=np.float32)
    np.testing.assert_array_equal(depth, expected)


def test_depth_from_image_does_not_modify_the_message():
    raw = struct.pack("<2f", float("inf"), 1.0)
    msg = ros_image("32FC1", 1, 2, 8, raw)
    depth_from_image(msg)
    assert bytes(msg.data) == raw


def test_16uc1_output_rounds_millimetres_and_marks_invalid_as_zero():
    depth = np.array([[1.2344, 1.2346, np.nan], [np.inf, -1.0, 70.0], [0.0004, 65.535, 0.5]], np.float32)
    fields = depth_to_image_fields(depth, "16UC1")
    assert (fields.height, fields.width, fields.encoding, fields.is_bigendian, fields.step) == (
        3,
        3,
        "16UC1",
        0,
        6,
    )
    assert fields.data.dtype == np.uint8 and fields.data.ndim == 1
    millimetres = struct.unpack("<9H", fields.data.tobytes())
    assert millimetres == (1234, 1235, 0, 0, 0, 0, 0, 65535, 500)


def test_16uc1_round_trip_is_exact_for_whole_millimetres():
    rng = np.random.default_rng(0)
    millimetres = rng.integers(1, 65536, size=(5, 7))
    depth = (millimetres / 1000.0).astype(np.float32)
    depth[2, 3] = np.nan
    back = depth_from_image(depth_to_image_fields(depth, "16UC1"))
    np.testing.assert_array_equal(back, depth)


def test_32fc1_output_is_metres_with_nan_for_every_invalid_value():
    depth = np.array([[1.25, np.inf], [-3.0, np.nan]], np.float32)
    fields = depth_to_image_fields(depth)
    assert (fields.encoding, fields.step, fields.is_bigendian) == ("32FC1", 8, 0)
    values = struct.unpack("<4f", fields.data.tobytes())
    assert values[0] == 1.25 and all(np.isnan(values[1:]))
    np.testing.assert_array_equal(
        depth_from_image(fields), np.array([[1.25, np.nan], [np.nan, np.nan]], np.float32)
    )


@pytest.mark.parametrize(
    ("convert", "encoding", "height", "width", "step", "size", "reason"),
    [
        (rgb_from_image, "yuv422", 2, 2, 4, 8, "unsupported_encoding"),
        (rgb_from_image, "16UC1", 2, 2, 4, 8, "unsupported_encoding"),
        (depth_from_image, "rgb8", 2, 2, 6, 12, "unsupported_encoding"),
        (depth_from_image, "16UC1", 2, 2, 4, 7, "truncated_data"),
        (rgb_from_image, "rgb8", 2, 2, 6, 11, "truncated_data"),
        (depth_from_image, "32FC1", 2, 2, 7, 14, "bad_step"),
        (rgb_from_image, "bgra8", 2, 2, 6, 12, "bad_step"),
        (depth_from_image, "16UC1", 0, 2, 4, 0, "empty_image"),
        (rgb_from_image, "rgb8", 2, 0, 0, 0, "empty_image"),
    ],
)
def test_bad_images_raise_frame_error_with_reason(convert, encoding, height, width, step, size, reason):
    msg = ros_image(encoding, height, width, step, bytes(size))
    with pytest.raises(FrameError) as caught:
        convert(msg)
    assert caught.value.reason == reason
    assert encoding in str(caught.value)


def test_truncated_message_says_expected_and_got():
    msg = ros_image("16UC1", 3, 2, 4, bytes(10))
    with pytest.raises(FrameError, match="needs 12 bytes; got 10"):
        depth_from_image(msg)


def test_unsupported_output_encoding_and_empty_depth():
    with pytest.raises(FrameError) as caught:
        depth_to_image_fields(np.ones((2, 2), np.float32), "mono8")
    assert caught.value.reason == "unsupported_encoding"
    with pytest.raises(FrameError) as caught:
        depth_to_image_fields(np.ones((0, 2), np.float32))
    assert caught.value.reason == "empty_image"


@pytest.mark.parametrize("convert", [rgb_from_image, depth_from_image])
def test_a_raw_image_claiming_more_than_the_limit_is_oversize(convert):
    message = ros_image("rgb8" if convert is rgb_from_image else "16UC1", 12000, 16000, 48000, b"\x00" * 64)
    with pytest.raises(FrameError, match="16000x12000") as err:
        convert(message)
    assert err.value.reason == "oversize"
    small = ros_image("mono8", 2, 3, 3, bytes(6)) if convert is rgb_from_image else ros_image("16UC1", 2, 3, 6, bytes(12))
    assert convert(small, max_pixels=6).shape[:2] == (2, 3)
    with pytest.raises(FrameError) as err:
        convert(small, max_pixels=5)
    assert err.value.reason == "oversize"
