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
from depth_sr_ros.core.image_msg import ImageFields, as_byte_array, depth_to_image_fields

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


def _imdecode(data: np.ndarray, what: str) -> np.ndarray:
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
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


def _decompress_image(msg: Any, fmt: CompressedFormat) -> ImageFields:
    """compressed_image_transport: a JPEG/PNG, colour in BGR (or the encoding's) order."""
    if fmt.codec not in _CODECS:
        raise FrameError("unsupported_encoding", f"CompressedImage format {msg.format!r}: codec {fmt.codec!r} "
                         f"is not supported; expected {' or '.join(_CODECS)}")
    image = _imdecode(as_byte_array(msg.data), f"CompressedImage ({msg.format!r})")
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


def _decompress_depth(msg: Any, fmt: CompressedFormat) -> ImageFields:
    """compressed_depth_image_transport: ConfigHeader + PNG (millimetres, or inverse depth)."""
    what = f"compressedDepth image ({msg.format!r})"
    if fmt.codec != "png":
        raise FrameError("unsupported_encoding", f"{what}: codec {fmt.codec!r} is not supported; expected png")
    if fmt.encoding not in ("16UC1", "mono16", "32FC1"):
        raise FrameError("unsupported_encoding", f"{what}: encoding {fmt.encoding!r} is not a depth encoding")
    data = as_byte_array(msg.data)
    if data.size <= CONFIG_HEADER.size:
        raise FrameError("corrupt_compressed", f"{what}: {data.size} bytes, no room for the "
                         f"{CONFIG_HEADER.size}-byte header and a PNG")
    _, quant_a, quant_b = CONFIG_HEADER.unpack(data[: CONFIG_HEADER.size].tobytes())
    image = _imdecode(data[CONFIG_HEADER.size:], what)
    if image.ndim != 2 or image.dtype != np.uint16:
        raise FrameError("corrupt_compressed", f"{what}: the PNG is {image.dtype} with shape {image.shape}; "
                         "expected one 16-bit channel")
    if fmt.encoding != "32FC1":
        return _fields(image, fmt.encoding)
    with np.errstate(divide="ignore", invalid="ignore"):  # as the C++ decoder: float32 arithmetic
        depth = np.float32(quant_a) / (image.astype(np.float32) - np.float32(quant_b))
    depth[image == 0] = np.nan
    return _fields(depth, "32FC1")


def decompress(msg: Any) -> ImageFields:
    """The raw Image fields of a CompressedImage (either transport), as image_transport decodes it."""
    fmt = parse_format(msg.format)
    if fmt.transport == COMPRESSED_DEPTH:
        return _decompress_depth(msg, fmt)
    return _decompress_image(msg, fmt)


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

    `16UC1`: millimetres rounded as `depth_to_image_fields` does; beyond `depth_max` -> 0.
    `32FC1`: inverse depth as in the module docstring. The C++ publisher leaves depths <= 0 and
    depths so close that `q` overflows uint16 (d < A / (65535 - B), 0.154 m with the defaults)
    undefined; here they are written as 0 = invalid.
    """
    if encoding == "16UC1":
        raw = depth_to_image_fields(depth_m, "16UC1")
        millimetres = raw.data.view("<u2").reshape(raw.height, raw.width).copy()
        millimetres[millimetres > np.uint16(int(depth_max * 1000.0))] = 0
        header = CONFIG_HEADER.pack(INV_DEPTH, 0.0, 0.0)
        png = _imencode(".png", millimetres, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
    elif encoding == "32FC1":
        depth = np.asarray(depth_m, dtype=np.float32)
        if depth.ndim != 2:
            raise ValueError(f"depth must be a 2-D HxW array; got shape {depth.shape}")
        z0, d_max = np.float32(depth_quantization), np.float32(depth_max)
        quant_a = z0 * (z0 + np.float32(1.0))
        quant_b = np.float32(1.0) - quant_a / d_max
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = quant_a / depth + quant_b
            keep = (depth > 0) & (depth < d_max) & (inverse < 65536)
        inverse_depth = np.where(keep, inverse, 0).astype(np.uint16)  # truncation, as the C++ cast
        header = CONFIG_HEADER.pack(INV_DEPTH, float(quant_a), float(quant_b))
        png = _imencode(".png", inverse_depth, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
    else:
        raise ValueError(f"compressedDepth encodes 16UC1 or 32FC1; got {encoding!r}")
    data = np.concatenate([np.frombuffer(header, dtype=np.uint8), png])
    return CompressedImageFields(f"{encoding}; {COMPRESSED_DEPTH} png", data)
