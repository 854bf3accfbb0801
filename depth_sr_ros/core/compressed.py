"""sensor_msgs/CompressedImage <-> Image fields, as image_transport_plugins writes and reads them.

Written against the message *fields* `format` and `data` only (rclpy and `rosbags` messages
alike). `decompress(msg)` gives the `ImageFields` of the raw Image that image_transport's
subscriber would hand a callback, so `image_msg.rgb_from_image` / `depth_from_image` (which
call it for any message with a `format` field) convert compressed and raw messages the same way.

`format` strings (the part before `;` is the raw Image's encoding):

| transport | format | data |
|---|---|---|
| `compressed` | `rgb8; jpeg compressed bgr8`, `bgr8; png compressed bgr8`, `mono8; jpeg compressed mono8`, `16UC1; png compressed ` | a JPEG or PNG file; colour in BGR channel order ("compressed bgr...") |
| `compressed` (old publishers) | `jpeg`, `png` | a JPEG or PNG; 1 channel = mono8, 3 = bgr8 |
| `compressedDepth` | `16UC1; compressedDepth png`, `32FC1; compressedDepth png` (older: `...; compressedDepth`) | a 12-byte ConfigHeader, then a PNG |

compressedDepth's ConfigHeader is `{int32 format; float32 depthParam[2]}`, little-endian (the
publisher `memcpy`s the struct; every ROS platform is little-endian). `format` is 0 (INV_DEPTH).
- `16UC1`: the PNG holds the millimetres; the publisher zeroes depths beyond `depth_max`
  (default 10 m); depthParam is unused (0, 0).
- `32FC1`: the PNG holds a uint16 *inverse depth* `q = A / d + B` (truncated towards zero),
  `A = z0 (z0 + 1)`, `B = 1 - A / depth_max`, with `z0 = depth_quantization` (default 100) and
  `depth_max` (default 10 m); `q = 0` for invalid depths and depths at or beyond `depth_max`.
  Decoding is `d = A / (q - B)` metres (`q = 0` -> NaN). One step of q is about `d**2 / A` metres:
  0.9 mm at 3 m, 1 cm at 10 m with the defaults.

Before anything is decoded, the size the data claims is read from its header (a PNG's IHDR, bytes
16-23; a JPEG's SOF segment; for compressedDepth the PNG after the 12-byte ConfigHeader) and
checked against the pixel limit (`core/limits.py`): a 631-byte JPEG claiming 30000x30000 is
refused as `oversize` without decoding it. Data that is neither a PNG nor a JPEG is refused
too (`cv2.imdecode` would read any format OpenCV knows, whatever `format` says).

Bad data (not an image, a truncated header, a PNG of the wrong type) raises `FrameError` with
reason `corrupt_compressed`; a format this module cannot decode (RVL, 16-bit colour, tiff)
raises `unsupported_encoding`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_fields import ImageFields, as_byte_array, depth_array, millimetres_from_metres
from depth_sr_ros.core.limits import DEFAULT_MAX_PIXELS, check_pixels

COMPRESSED = "compressed"
COMPRESSED_DEPTH = "compressedDepth"
CONFIG_HEADER = struct.Struct("<iff")  # compressedDepth ConfigHeader: format, depthParam[2]
INV_DEPTH = 0  # ConfigHeader.format of every compressedDepth publisher
DEFAULT_DEPTH_MAX_M = 10.0  # image_transport_plugins' compressedDepth defaults
DEFAULT_DEPTH_QUANTIZATION = 100.0
DEFAULT_PNG_LEVEL = 9
DEFAULT_JPEG_QUALITY = 95
_CODECS = ("jpeg", "png")
_SINGLE_CHANNEL_BITS = {"mono8": 8, "8UC1": 8, "mono16": 16, "16UC1": 16}


@dataclass(frozen=True)
class CompressedImageFields:
    """The fields of a sensor_msgs/CompressedImage (header excluded); `data` is 1-D uint8."""

    format: str
    data: np.ndarray


@dataclass(frozen=True)
class CompressedFormat:
    """A parsed `format` string: the raw encoding, the transport, the codec, the colour order."""

    encoding: str  # "" for old publishers that gave only the codec
    transport: str  # COMPRESSED or COMPRESSED_DEPTH
    codec: str  # "jpeg", "png", "rvl", ...
    bgr: bool  # colour data in BGR order ("compressed bgr8", and old publishers)


def parse_format(text: str) -> CompressedFormat:
    """Parse a CompressedImage `format` the way the image_transport_plugins subscribers do."""
    encoding, sep, rest = (part.strip() for part in str(text).partition(";"))
    if not sep:  # old publishers: the codec alone ("jpeg", "png")
        return CompressedFormat("", COMPRESSED, encoding.lower(), bgr=True)
    words = rest.split()
    if COMPRESSED_DEPTH in words:
        after = words[words.index(COMPRESSED_DEPTH) + 1:]
        return CompressedFormat(encoding, COMPRESSED_DEPTH, after[0] if after else "png", bgr=False)
    codec = words[0].lower() if words else ""
    target = words[2] if len(words) > 2 and words[1] == COMPRESSED else ""
    return CompressedFormat(encoding, COMPRESSED, codec, bgr=target.startswith("bgr"))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# JPEG frame headers (SOF0-3, 5-7, 9-11, 13-15); C4 (DHT), C8 (JPG) and CC (DAC) are not
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RST0-7: no length field
_JPEG_MAX_SEGMENTS = 4096  # real files have a few dozen before the frame header
PNG_GREY = 0  # IHDR colour type of a grey PNG


@dataclass(frozen=True)
class EncodedImage:
    """A CompressedImage read as far as its headers, nothing decoded: the encoded file (`payload`,
    after compressedDepth's ConfigHeader), the size its header claims, and the PNG's bit depth and
    colour type (None for a JPEG)."""

    fmt: CompressedFormat
    payload: np.ndarray
    width: int
    height: int
    png_type: tuple[int, int] | None  # (bit depth, colour type)
    depth_params: tuple[float, float] = (0.0, 0.0)  # compressedDepth ConfigHeader.depthParam


def _png_header(data: memoryview, what: str) -> tuple[int, int, tuple[int, int]]:
    """(width, height, (bit depth, colour type)) from a PNG's IHDR chunk, which must come first."""
    if len(data) < 26 or bytes(data[12:16]) != b"IHDR":
        raise FrameError("corrupt_compressed", f"{what}: the PNG has no IHDR header ({len(data)} bytes)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height, (data[24], data[25])


def _jpeg_header(data: memoryview, what: str) -> tuple[int, int]:
    """(width, height) from the first frame header (SOF) of a JPEG, walking the segments before it."""
    position, size = 2, len(data)
    for _ in range(_JPEG_MAX_SEGMENTS):
        if position >= size or data[position] != 0xFF:
            break
        while position < size and data[position] == 0xFF:  # fill bytes before a marker
            position += 1
        if position >= size:
            break
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA) or position + 2 > size:  # EOI, or image data before any frame header
            break
        length = (data[position] << 8) | data[position + 1]
        if marker in _JPEG_SOF:
            if length < 8 or position + 7 > size:
                break
            height = (data[position + 3] << 8) | data[position + 4]
            width = (data[position + 5] << 8) | data[position + 6]
            return width, height
        if length < 2:
            break
        position += length
    raise FrameError("corrupt_compressed", f"{what}: no JPEG frame header (SOF) found; the data is not a "
                     "readable JPEG")


def _encoded_size(payload: np.ndarray, what: str) -> tuple[int, int, tuple[int, int] | None]:
    """The size a PNG or JPEG file claims in its header (and a PNG's type); anything else is refused."""
    data = payload.data  # a memoryview of the contiguous bytes, no copy
    if bytes(data[:8]) == PNG_SIGNATURE:
        return _png_header(data, what)
    if bytes(data[:2]) == JPEG_SOI:
        return (*_jpeg_header(data, what), None)
    raise FrameError("corrupt_compressed", f"{what}: {len(data)} bytes that are neither a PNG nor a JPEG")


def read_header(msg: Any) -> EncodedImage:
    """Parse a CompressedImage's `format` and its image header, decoding nothing; FrameError
    ("unsupported_encoding", "corrupt_compressed") when it cannot be one this module decodes."""
    fmt = parse_format(msg.format)
    data = as_byte_array(msg.data)
    if fmt.transport != COMPRESSED_DEPTH:
        what = f"CompressedImage ({msg.format!r})"
        if fmt.codec not in _CODECS:
            raise FrameError("unsupported_encoding", f"CompressedImage format {msg.format!r}: codec {fmt.codec!r} "
                             f"is not supported; expected {' or '.join(_CODECS)}")
        return EncodedImage(fmt, data, *_encoded_size(data, what))
    what = f"compressedDepth image ({msg.format!r})"
    if fmt.codec != "png":
        raise FrameError("unsupported_encoding", f"{what}: codec {fmt.codec!r} is not supported; expected png")
    if fmt.encoding not in ("16UC1", "mono16", "32FC1"):
        raise FrameError("unsupported_encoding", f"{what}: encoding {fmt.encoding!r} is not a depth encoding")
    if data.size <= CONFIG_HEADER.size:
        raise FrameError("corrupt_compressed", f"{what}: {data.size} bytes, no room for the "
                         f"{CONFIG_HEADER.size}-byte header and a PNG")
    _, quant_a, quant_b = CONFIG_HEADER.unpack(data[: CONFIG_HEADER.size].tobytes())
    payload = data[CONFIG_HEADER.size:]
    width, height, png_type = _encoded_size(payload, what)
    if png_type != (16, PNG_GREY):
        kind = "a JPEG" if png_type is None else f"a PNG of bit depth {png_type[0]}, colour type {png_type[1]}"
        raise FrameError("corrupt_compressed", f"{what}: the image is {kind}; expected a 16-bit grey PNG")
    return EncodedImage(fmt, payload, width, height, png_type, (quant_a, quant_b))


def _imdecode(encoded: EncodedImage, what: str) -> np.ndarray:
    """The decoded pixels; libjpeg and libpng allocate for the size the header claims, which
    `decompress` has checked."""
    data = encoded.payload
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise FrameError("corrupt_compressed", f"{what}: cannot be decoded ({err})") from None
    if image is None:
        raise FrameError("corrupt_compressed", f"{what}: {data.size} bytes are not a readable image")
    return image


def _fields(pixels: np.ndarray, encoding: str) -> ImageFields:
    """Image fields of a decoded HxW or HxWxC array (little-endian, no padding)."""
    pixels = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<"), copy=False))
    height, width = pixels.shape[:2]
    return ImageFields(height, width, encoding, 0, pixels.nbytes // height, pixels.reshape(-1).view(np.uint8))


def _decompress_image(msg: Any, encoded: EncodedImage) -> ImageFields:
    """compressed_image_transport: a JPEG/PNG, colour in BGR (or the encoding's) order."""
    fmt = encoded.fmt
    if encoded.png_type is not None and encoded.png_type[0] == 16 and encoded.png_type[1] != PNG_GREY:
        raise FrameError("unsupported_encoding", f"CompressedImage ({msg.format!r}) is a 16-bit colour PNG; "
                         "expected 8-bit colour (refused before decoding)")
    image = _imdecode(encoded, f"CompressedImage ({msg.format!r})")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        bits = 8 * image.dtype.itemsize
        expected = _SINGLE_CHANNEL_BITS.get(fmt.encoding)
        if expected is not None and expected != bits:
            raise FrameError("corrupt_compressed", f"CompressedImage ({msg.format!r}) decodes to {bits}-bit "
                             f"pixels; {fmt.encoding} has {expected}")
        return _fields(image, fmt.encoding if expected else f"mono{bits}")
    if image.dtype != np.uint8 or channels not in (3, 4):
        raise FrameError("unsupported_encoding", f"CompressedImage ({msg.format!r}) decodes to {channels} "
                         f"channels of {image.dtype}; expected 8-bit colour")
    order = "bgr" if fmt.bgr or not fmt.encoding.startswith("rgb") else "rgb"
    return _fields(image, f"{order}{'a' if channels == 4 else ''}8")


def _decompress_depth(msg: Any, encoded: EncodedImage) -> ImageFields:
    """compressed_depth_image_transport: ConfigHeader + PNG (millimetres, or inverse depth)."""
    image = _imdecode(encoded, f"compressedDepth image ({msg.format!r})")
    if encoded.fmt.encoding != "32FC1":
        return _fields(image, encoded.fmt.encoding)
    quant_a, quant_b = encoded.depth_params
    with np.errstate(divide="ignore", invalid="ignore"):  # as the C++ decoder: float32 arithmetic
        depth = np.float32(quant_a) / (image.astype(np.float32) - np.float32(quant_b))
    depth[image == 0] = np.nan
    return _fields(depth, "32FC1")


def decompress(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFields:
    """The raw Image fields of a CompressedImage (either transport), as image_transport decodes it.

    The size in the data's header is checked against `max_pixels` before anything is decoded
    (FrameError "oversize").
    """
    encoded = read_header(msg)
    check_pixels(encoded.width, encoded.height, f"CompressedImage ({msg.format!r})", max_pixels)
    if encoded.fmt.transport == COMPRESSED_DEPTH:
        return _decompress_depth(msg, encoded)
    return _decompress_image(msg, encoded)


def _imencode(extension: str, image: np.ndarray, params: list[int]) -> np.ndarray:
    ok, encoded = cv2.imencode(extension, image, params)
    if not ok:
        raise ValueError(f"cv2.imencode({extension!r}) failed for a {image.dtype} image of shape {image.shape}")
    return np.asarray(encoded, dtype=np.uint8).reshape(-1)


def compressed_rgb_fields(rgb: np.ndarray, fmt: str = "jpeg", jpeg_quality: int = DEFAULT_JPEG_QUALITY,
                          png_level: int = DEFAULT_PNG_LEVEL) -> CompressedImageFields:
    """CompressedImage fields of an `HxWx3 uint8` RGB image, as compressed_image_transport
    publishes an `rgb8` Image: BGR data, format `rgb8; jpeg compressed bgr8` (or `png`)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be HxWx3 uint8; got {rgb.dtype} with shape {rgb.shape}")
    if fmt not in _CODECS:
        raise ValueError(f"unknown format {fmt!r}; expected {' or '.join(_CODECS)}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, png_level]
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    data = _imencode(".jpg" if fmt == "jpeg" else ".png", bgr, params)
    return CompressedImageFields(f"rgb8; {fmt} compressed bgr8", data)


def compressed_depth_fields(depth_m: np.ndarray, encoding: str = "16UC1", depth_max: float = DEFAULT_DEPTH_MAX_M,
                            depth_quantization: float = DEFAULT_DEPTH_QUANTIZATION,
                            png_level: int = DEFAULT_PNG_LEVEL) -> CompressedImageFields:
    """CompressedImage fields of an `HxW` depth in metres (NaN invalid), as
    compressed_depth_image_transport publishes a `16UC1` (millimetres) or `32FC1` Image.

    `16UC1`: millimetres rounded as `depth_to_image_fields` does (`millimetres_from_metres`); beyond `depth_max` -> 0.
    `32FC1`: inverse depth as in the module docstring. The C++ publisher leaves depths <= 0 and
    depths so close that `q` overflows uint16 (d < A / (65535 - B), 0.154 m with the defaults)
    undefined; here they are written as 0 = invalid.
    """
    if encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"compressedDepth encodes 16UC1 or 32FC1; got {encoding!r}")
    depth = depth_array(depth_m)
    if encoding == "16UC1":
        millimetres = millimetres_from_metres(depth)
        millimetres[millimetres > np.uint16(int(depth_max * 1000.0))] = 0
        header = CONFIG_HEADER.pack(INV_DEPTH, 0.0, 0.0)
        png = _imencode(".png", millimetres, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
    else:
        z0, d_max = np.float32(depth_quantization), np.float32(depth_max)
        quant_a = z0 * (z0 + np.float32(1.0))
        quant_b = np.float32(1.0) - quant_a / d_max
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = quant_a / depth + quant_b
            keep = (depth > 0) & (depth < d_max) & (inverse < 65536)
        inverse_depth = np.where(keep, inverse, 0).astype(np.uint16)  # truncation, as the C++ cast
        header = CONFIG_HEADER.pack(INV_DEPTH, float(quant_a), float(quant_b))
        png = _imencode(".png", inverse_depth, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
    data = np.concatenate([np.frombuffer(header, dtype=np.uint8), png])
    return CompressedImageFields(f"{encoding}; {COMPRESSED_DEPTH} png", data)
