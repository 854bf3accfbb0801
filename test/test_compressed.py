"""CompressedImage decoding and encoding against image_transport_plugins' layout and real frames.

The messages are real rosbags `sensor_msgs/CompressedImage`s whose data comes from OpenCV's
encoders (as compressed_image_transport and compressed_depth_image_transport publish them), or
is built byte by byte here from the documented compressedDepth layout; decoded values are
checked against the raw TUM frames shipped with the package.
"""

from __future__ import annotations

import array
import struct

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.compressed import (
    COMPRESSED,
    COMPRESSED_DEPTH,
    CompressedFormat,
    compressed_depth_fields,
    compressed_rgb_fields,
    parse_format,
)
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import depth_from_image, image_size, rgb_from_image
from depth_sr_ros.replay.sample_bag import SAMPLE_DIR, read_sample_depth_mm, read_sample_rgb

TYPES = get_typestore(Stores.ROS2_HUMBLE).types
JPEG_RGB_RMSE_MAX = 7.0  # 0-255 scale; measured 4.6-6.1 on the four TUM frames at quality 95


def compressed_msg(fmt: str, data: bytes | np.ndarray):
    """A real rosbags sensor_msgs/CompressedImage."""
    header = TYPES["std_msgs/msg/Header"](stamp=TYPES["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    payload = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    return TYPES["sensor_msgs/msg/CompressedImage"](header=header, format=fmt, data=payload)


def png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="module")
def tum():
    """TUM fr1 frame 00: RGB uint8 and depth in metres (NaN = hole), both 640x480."""
    rgb = read_sample_rgb(SAMPLE_DIR, "00")
    mm = read_sample_depth_mm(SAMPLE_DIR, "00")
    return rgb, mm, np.where(mm > 0, mm / np.float32(1000.0), np.float32(np.nan)).astype(np.float32)


@pytest.mark.parametrize(("text", "expected"), [
    ("rgb8; jpeg compressed bgr8", CompressedFormat("rgb8", COMPRESSED, "jpeg", bgr=True)),
    ("bgra8; png compressed bgr8", CompressedFormat("bgra8", COMPRESSED, "png", bgr=True)),
    ("mono8; jpeg compressed mono8", CompressedFormat("mono8", COMPRESSED, "jpeg", bgr=False)),
    ("16UC1; png compressed ", CompressedFormat("16UC1", COMPRESSED, "png", bgr=False)),
    ("jpeg", CompressedFormat("", COMPRESSED, "jpeg", bgr=True)),
    ("16UC1; compressedDepth png", CompressedFormat("16UC1", COMPRESSED_DEPTH, "png", bgr=False)),
    ("32FC1; compressedDepth", CompressedFormat("32FC1", COMPRESSED_DEPTH, "png", bgr=False)),
    ("16UC1; compressedDepth rvl", CompressedFormat("16UC1", COMPRESSED_DEPTH, "rvl", bgr=False)),
])
def test_format_strings_parse_as_image_transport_writes_them(text, expected):
    assert parse_format(text) == expected


@pytest.mark.parametrize("container", [bytes, bytearray, lambda b: array.array("B", b)])
def test_png_colour_decodes_exactly_to_the_raw_frame_from_any_data_container(tum, container):
    rgb = tum[0]
    fields = compressed_rgb_fields(rgb, "png")
    assert fields.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(cv2.imdecode(fields.data, cv2.IMREAD_UNCHANGED), rgb[:, :, ::-1])  # BGR file
    message = compressed_msg(fields.format, fields.data)
    message.data = container(message.data.tobytes())  # rclpy keeps array('B'); others give bytes
    np.testing.assert_array_equal(rgb_from_image(message), rgb)


def test_jpeg_colour_is_within_the_measured_rmse_of_the_raw_frames():
    for name in ("00", "01", "02", "03"):
        rgb = read_sample_rgb(SAMPLE_DIR, name)
        fields = compressed_rgb_fields(rgb, "jpeg")
        assert fields.format == "rgb8; jpeg compressed bgr8"
        decoded = rgb_from_image(compressed_msg(fields.format, fields.data)).astype(np.float64)
        rmse = float(np.sqrt(np.mean((decoded - rgb) ** 2)))
        assert 0 < rmse < JPEG_RGB_RMSE_MAX, (name, rmse)
        # channel order kept: swapping R and B is far worse than the JPEG loss
        assert rmse < np.sqrt(np.mean((decoded[:, :, ::-1] - rgb) ** 2)) / 2


def test_colour_orders_and_old_publishers():
    rgb = np.array([[[200, 20, 10], [0, 90, 250]]], np.uint8)
    bgr_png = png(rgb[:, :, ::-1])
    for fmt in ("bgr8; png compressed bgr8", "rgba8; png compressed bgr8", "png"):  # "png": old, BGR
        np.testing.assert_array_equal(rgb_from_image(compressed_msg(fmt, bgr_png)), rgb)
    # a publisher that wrote the rgb8 bytes unconverted says so by leaving out "compressed bgr"
    np.testing.assert_array_equal(rgb_from_image(compressed_msg("rgb8; png compressed ", png(rgb))), rgb)
    grey = np.array([[0, 128, 255]], np.uint8)
    for fmt in ("mono8; png compressed ", "png"):
        np.testing.assert_array_equal(rgb_from_image(compressed_msg(fmt, png(grey))), np.repeat(grey[..., None], 3, 2))


def test_compressed_depth_16uc1_is_the_layout_image_transport_writes_and_decodes_exactly(tum):
    _, mm, metres = tum
    fields = compressed_depth_fields(metres, "16UC1")
    assert fields.format == "16UC1; compressedDepth png"
    data = fields.data.tobytes()
    assert struct.unpack("<iff", data[:12]) == (0, 0.0, 0.0)  # INV_DEPTH, unused parameters
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data[12:], np.uint8), cv2.IMREAD_UNCHANGED), mm)
    decoded = depth_from_image(compressed_msg(fields.format, data))
    np.testing.assert_array_equal(decoded, metres)  # NaN holes included
    # the publisher's depth_max filter (10 m): farther depths become holes
    far = compressed_depth_fields(np.array([[9.999, 10.0, 10.001]], np.float32), "16UC1")
    np.testing.assert_array_equal(depth_from_image(compressed_msg(far.format, far.data)),
                                  np.array([[9.999, 10.0, np.nan]], np.float32))


def test_16_bit_depth_through_the_plain_compressed_transport(tum):
    _, mm, metres = tum
    decoded = depth_from_image(compressed_msg("16UC1; png compressed ", png(mm)))
    np.testing.assert_array_equal(decoded, metres)


def test_compressed_depth_32fc1_quantises_inverse_depth_as_image_transport(tum):
    metres = tum[2]
    fields = compressed_depth_fields(metres, "32FC1")
    assert fields.format == "32FC1; compressedDepth png"
    # the layout written by hand: header {INV_DEPTH, A, B}, then the PNG of q = trunc(A / d + B)
    a = np.float32(100.0) * np.float32(101.0)
    b = np.float32(1.0) - a / np.float32(10.0)
    with np.errstate(invalid="ignore"):
        q = np.where(np.isfinite(metres), a / metres + b, 0).astype(np.uint16)
    expected = struct.pack("<iff", 0, a, b) + png(q)
    assert fields.data.tobytes()[:12] == expected[:12]
    np.testing.assert_array_equal(cv2.imdecode(fields.data[12:], cv2.IMREAD_UNCHANGED), q)
    for data in (fields.data, expected):
        decoded = depth_from_image(compressed_msg(fields.format, data))
        valid = np.isfinite(metres)
        np.testing.assert_array_equal(np.isfinite(decoded), valid)
        error = np.abs(decoded[valid] - metres[valid])
        step = metres[valid] ** 2 / a  # one q step in metres
        assert np.all(error <= step * 1.001 + 1e-6), float((error / step).max())
        assert error.max() > 0  # it is a lossy quantisation, not a copy


def test_compressed_depth_32fc1_edges():
    depth = np.array([[0.5, np.nan, 0.0, -1.0, 10.0, 12.0, 0.1, np.inf]], np.float32)
    fields = compressed_depth_fields(depth, "32FC1")
    decoded = depth_from_image(compressed_msg(fields.format, fields.data))
    assert decoded[0, 0] == pytest.approx(0.5, abs=0.5**2 / 10100 + 1e-6)
    # invalid, at/beyond depth_max, and too close for uint16 (0.1 m < 0.154 m) are all holes
    assert np.isnan(decoded[0, 1:]).all()


@pytest.mark.parametrize(("fmt", "data", "reason"), [
    ("rgb8; jpeg compressed bgr8", b"\xff\xd8 not really a jpeg", "corrupt_compressed"),
    ("rgb8; png compressed bgr8", b"", "corrupt_compressed"),
    ("16UC1; compressedDepth png", b"\x00" * 12, "corrupt_compressed"),
    ("16UC1; compressedDepth png", b"\x00" * 12 + b"garbage", "corrupt_compressed"),
    ("16UC1; compressedDepth png", b"\x00" * 12 + png(np.zeros((2, 2), np.uint8)), "corrupt_compressed"),
    ("16UC1; png compressed ", png(np.zeros((2, 2), np.uint8)), "corrupt_compressed"),
    ("16UC1; compressedDepth rvl", b"\x00" * 20, "unsupported_encoding"),
    ("rgb8; compressedDepth png", b"\x00" * 12 + png(np.zeros((2, 2), np.uint16)), "unsupported_encoding"),
    ("rgb8; tiff compressed ", b"II*\x00", "unsupported_encoding"),
])
def test_bad_compressed_data_is_a_frame_error_with_a_reason(fmt, data, reason):
    message = compressed_msg(fmt, data)
    with pytest.raises(FrameError) as err:
        (depth_from_image if "compressedDepth" in fmt or fmt.startswith("16") else rgb_from_image)(message)
    assert err.value.reason == reason, str(err.value)
    assert fmt.split(";")[0] in str(err.value)


def test_a_truncated_png_is_a_frame_error_not_a_crash(tum):
    fields = compressed_rgb_fields(tum[0], "png")
    message = compressed_msg(fields.format, fields.data[: fields.data.size // 2])
    with pytest.raises(FrameError) as err:
        rgb_from_image(message)
    assert err.value.reason == "corrupt_compressed"


def test_colour_as_depth_and_depth_as_colour_are_unsupported_encodings(tum):
    colour = compressed_rgb_fields(tum[0], "jpeg")
    depth = compressed_depth_fields(tum[2], "16UC1")
    with pytest.raises(FrameError, match="bgr8") as err:
        depth_from_image(compressed_msg(colour.format, colour.data))
    assert err.value.reason == "unsupported_encoding"
    with pytest.raises(FrameError, match="16UC1") as err:
        rgb_from_image(compressed_msg(depth.format, depth.data))
    assert err.value.reason == "unsupported_encoding"


def test_encoders_reject_what_image_transport_cannot_publish():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        compressed_rgb_fields(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="jpeg or png"):
        compressed_rgb_fields(np.zeros((4, 4, 3), np.uint8), "webp")
    with pytest.raises(ValueError, match="16UC1 or 32FC1"):
        compressed_depth_fields(np.ones((4, 4), np.float32), "mono8")


# ------------------------------------------------------------------ sizes read before decoding (issue 23)

def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims `width x height`; the scan data stays as it was."""
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1): then height, width
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4:]


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR (bytes 16-23) claims `width x height` (its CRC is left stale)."""
    return data[:16] + struct.pack(">II", width, height) + data[24:]


def never_decode(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called for data whose header should have been refused")

    monkeypatch.setattr(cv2, "imdecode", refuse)


@pytest.mark.parametrize(("encode", "rows", "cols"), [
    (lambda image: compressed_rgb_fields(image, "jpeg"), 123, 321),
    (lambda image: compressed_rgb_fields(image, "png"), 77, 640),
])
def test_header_sizes_are_what_opencv_decodes(tum, encode, rows, cols):
    fields = encode(np.ascontiguousarray(tum[0][:rows, :cols]))
    message = compressed_msg(fields.format, fields.data)
    assert image_size(message) == (cols, rows)
    assert rgb_from_image(message).shape == (rows, cols, 3)
    depth = compressed_depth_fields(tum[2][:50, :70], "16UC1")
    assert image_size(compressed_msg(depth.format, depth.data)) == (70, 50)


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_a_small_file_claiming_a_huge_image_is_oversize_without_decoding(tum, codec, monkeypatch):
    fields = compressed_rgb_fields(tum[0][:16, :16], codec)
    patch = with_jpeg_size if codec == "jpeg" else with_png_size
    message = compressed_msg(fields.format, patch(fields.data.tobytes(), 30000, 30000))
    never_decode(monkeypatch)
    with pytest.raises(FrameError, match="30000x30000") as err:
        rgb_from_image(message)
    assert err.value.reason == "oversize" and "max_image_pixels" in str(err.value)


def test_compressed_depth_png_claiming_a_huge_image_is_oversize_without_decoding(tum, monkeypatch):
    fields = compressed_depth_fields(tum[2][:16, :16], "16UC1")
    data = fields.data.tobytes()
    message = compressed_msg(fields.format, data[:12] + with_png_size(data[12:], 20000, 20000))
    never_decode(monkeypatch)
    with pytest.raises(FrameError, match="20000x20000") as err:
        depth_from_image(message)
    assert err.value.reason == "oversize"


def test_the_limit_admits_what_it_says(tum):
    fields = compressed_rgb_fields(tum[0][:20, :30], "png")
    message = compressed_msg(fields.format, fields.data)
    assert rgb_from_image(message, max_pixels=600).shape == (20, 30, 3)
    with pytest.raises(FrameError, match="30x20") as err:
        rgb_from_image(message, max_pixels=599)
    assert err.value.reason == "oversize"


@pytest.mark.parametrize(("fmt", "data"), [
    ("rgb8; png compressed bgr8", b"BM" + b"\x00" * 60),  # a BMP: OpenCV would decode it whatever format says
    ("rgb8; jpeg compressed bgr8", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 8 + b"\xff\xda\x00\x02"),  # no SOF
    ("rgb8; jpeg compressed bgr8", b"\xff\xd8" + b"\xff\x01" * 5000),  # endless markers
    ("rgb8; png compressed bgr8", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIDAT"),  # no IHDR first
    ("16UC1; compressedDepth png", b"\x00" * 12 + b"\xff\xd8\xff\xc0\x00\x0b\x08\x00\x10\x00\x10\x01"),  # a JPEG
])
def test_data_whose_header_cannot_be_read_is_corrupt_without_decoding(fmt, data, monkeypatch):
    never_decode(monkeypatch)
    with pytest.raises(FrameError) as err:
        (depth_from_image if "Depth" in fmt else rgb_from_image)(compressed_msg(fmt, data))
    assert err.value.reason == "corrupt_compressed", str(err.value)


def test_compressed_depth_of_8_bit_png_is_refused_before_decoding(monkeypatch):
    message = compressed_msg("16UC1; compressedDepth png", b"\x00" * 12 + png(np.zeros((2, 2), np.uint8)))
    never_decode(monkeypatch)
    with pytest.raises(FrameError, match="bit depth 8") as err:
        depth_from_image(message)
    assert err.value.reason == "corrupt_compressed"



def test_a_16_bit_colour_png_is_unsupported_before_decoding(monkeypatch):
    message = compressed_msg("rgb8; png compressed bgr8", png(np.zeros((2, 2, 3), np.uint16)))
    never_decode(monkeypatch)
    with pytest.raises(FrameError, match="16-bit colour") as err:
        rgb_from_image(message)
    assert err.value.reason == "unsupported_encoding"
