"""sensor_msgs/Image fields <-> numpy arrays, written against message *fields*.

Any object with `height`, `width`, `encoding`, `is_bigendian`, `step` and `data` works: rclpy
messages (`data` is an `array.array('B')`), `rosbags` messages (`data` is a uint8 ndarray),
or a plain namespace with `bytes`/`bytearray`/`memoryview`/list data.

Encodings (REP 118):
- colour `rgb8`, `bgr8`, `rgba8`, `bgra8`, `mono8` -> `HxWx3 uint8` in RGB order;
- depth `16UC1`/`mono16` millimetres (0 = invalid), `32FC1` metres (NaN, inf and <= 0 invalid)
  -> `HxW float32` metres with NaN = invalid.

A sensor_msgs/CompressedImage (a message with `format` and `data` and no `encoding`) is first
decoded to the Image fields image_transport's subscriber would give (`core/compressed.py`:
`jpeg`/`png` colour, `compressedDepth` 16UC1 and 32FC1), then converted the same way.

The size an image claims (its `width`/`height`, or its PNG/JPEG header) is checked against a
pixel limit (`max_pixels`, default `core.limits.DEFAULT_MAX_PIXELS`) before anything is decoded
or allocated: FrameError "oversize". `image_size` reads that claim without decoding.

Row padding (`step > width * bytes_per_pixel`) and `is_bigendian` are honoured. Colour arrays
are views of the message buffer where the layout allows (every colour encoding except `mono8`,
whose grey is replicated into three channels by a copy); such views may be read-only and
non-contiguous, so call `np.ascontiguousarray` before handing them to code that needs that.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from depth_sr_ros.core.compressed import decompress, read_header
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_fields import (
    ImageFields,
    as_byte_array,
    depth_array,
    millimetres_from_metres,
    valid_depth,
)
from depth_sr_ros.core.limits import DEFAULT_MAX_PIXELS, Size, check_pixels
from depth_sr_ros.core.msg_buffer import message_bytes, nan_is_the_only_invalid

# encoding -> (bytes per pixel, channel indices that give R, G, B)
_COLOUR_LAYOUTS: dict[str, tuple[int, slice]] = {
    "rgb8": (3, slice(0, 3)),
    "bgr8": (3, slice(2, None, -1)),
    "rgba8": (4, slice(0, 3)),
    "bgra8": (4, slice(2, None, -1)),
}
COLOUR_ENCODINGS = (*_COLOUR_LAYOUTS, "mono8")
MILLIMETRE_DEPTH_ENCODINGS = ("16UC1", "mono16")
DEPTH_ENCODINGS = (*MILLIMETRE_DEPTH_ENCODINGS, "32FC1")
MAX_16UC1_METRES = 65.535  # largest depth a 16UC1 millimetre image can carry


def _pixel_rows(msg: Any, bytes_per_pixel: int) -> np.ndarray:
    """`height x (width * bytes_per_pixel)` uint8 view of the image rows, padding dropped."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)  # checked by `_raw_image`
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise FrameError(
            "bad_step",
            f"{msg.encoding} image step is {step} bytes; expected at least width*{bytes_per_pixel} = {row_bytes}",
        )
    data = as_byte_array(msg.data)
    # The last row needs only its pixels, but ROS publishers always send step*height bytes.
    if data.size < step * height:
        raise FrameError(
            "truncated_data",
            f"{msg.encoding} image {width}x{height} with step {step} needs {step * height} bytes; "
            f"got {data.size}",
        )
    return data[: step * height].reshape(height, step)[:, :row_bytes]


def is_compressed(msg: Any) -> bool:
    """Whether `msg` is a sensor_msgs/CompressedImage (`format` and `data`, no `encoding`)."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def image_size(msg: Any) -> Size:
    """(width, height) an Image or CompressedImage claims, read from its fields or its encoded
    header, decoding nothing (checked with `core/limits.py` before any decoding)."""
    if is_compressed(msg):
        encoded = read_header(msg)
        return encoded.width, encoded.height
    return int(msg.width), int(msg.height)


def _raw_image(msg: Any, max_pixels: int) -> Any:
    """`msg` itself for an Image; the decoded Image fields for a CompressedImage. Either way its
    claimed size is checked against `max_pixels` first (FrameError "oversize", "empty_image")."""
    if is_compressed(msg):
        return decompress(msg, max_pixels)
    check_pixels(msg.width, msg.height, f"{msg.encoding} image", max_pixels)
    return msg


def rgb_from_image(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """`HxWx3 uint8` RGB array from a colour Image (a view of `msg.data` except for mono8) or
    CompressedImage of at most `max_pixels` pixels."""
    msg = _raw_image(msg, max_pixels)
    encoding = msg.encoding
    if encoding == "mono8":
        grey = _pixel_rows(msg, 1)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if encoding not in _COLOUR_LAYOUTS:
        raise FrameError(
            "unsupported_encoding",
            f"colour image encoding {encoding!r} is not supported; expected one of {', '.join(COLOUR_ENCODINGS)}",
        )
    channels, rgb_order = _COLOUR_LAYOUTS[encoding]
    pixels = _pixel_rows(msg, channels).reshape(int(msg.height), int(msg.width), channels)
    return pixels[:, :, rgb_order]


def depth_from_image(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """`HxW float32` depth in metres, NaN = invalid, from a 16UC1/mono16 or 32FC1 Image, or a
    CompressedImage of one (`compressedDepth`, or a 16-bit `png`), of at most `max_pixels` pixels."""
    msg = _raw_image(msg, max_pixels)
    encoding = msg.encoding
    byte_order = ">" if msg.is_bigendian else "<"
    if encoding in MILLIMETRE_DEPTH_ENCODINGS:
        millimetres = _pixel_rows(msg, 2).view(f"{byte_order}u2")
        depth = millimetres.astype(np.float32) / np.float32(1000.0)
        depth[millimetres == 0] = np.nan
        return depth
    if encoding == "32FC1":
        depth = _pixel_rows(msg, 4).view(f"{byte_order}f4").astype(np.float32)
        with np.errstate(invalid="ignore"):
            depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        return depth
    raise FrameError(
        "unsupported_encoding",
        f"depth image encoding {encoding!r} is not supported; expected one of {', '.join(DEPTH_ENCODINGS)}",
    )


def depth_to_image_fields(depth_m: np.ndarray, encoding: str = "32FC1") -> ImageFields:
    """Image fields for an `HxW` depth array in metres (NaN invalid), little-endian, no padding.

    `32FC1`: metres; NaN, inf and values <= 0 are all written as NaN.
    `16UC1`: millimetres rounded to the nearest integer; invalid pixels, depths that round to
    0 mm and depths beyond 65.535 m (which do not fit in uint16) are written as 0 = invalid.

    The pixels are written once, straight into the message buffer (`core/msg_buffer.py`) that
    the node's message builder takes without a copy; a 32FC1 depth whose only invalid value is
    NaN (the pipeline's output) is copied as it is.
    """
    depth = depth_array(depth_m)
    height, width = depth.shape
    if encoding == "32FC1":
        fields = float_image_fields(depth)
        if not nan_is_the_only_invalid(depth):
            fields.data.view("<f4").reshape(height, width)[~valid_depth(depth)] = np.nan
        return fields
    if encoding == "16UC1":
        data = message_bytes(depth.size * 2)
        pixels = data.view("<u2").reshape(height, width)
        pixels[...] = millimetres_from_metres(depth)
        return ImageFields(height=height, width=width, encoding=encoding, is_bigendian=0, step=width * 2, data=data)
    raise FrameError(
        "unsupported_encoding",
        f"output depth encoding {encoding!r} is not supported; expected 32FC1 or 16UC1",
    )


def float_image_fields(values: np.ndarray) -> ImageFields:
    """32FC1 Image fields of an `HxW` float array written as it is, with no validity rule (a
    confidence map in [0, 1], where 0 is a value like any other), little-endian, no padding,
    straight into the message buffer (`core/msg_buffer.py`)."""
    array = depth_array(values)
    height, width = array.shape
    data = message_bytes(array.size * 4)
    data.view("<f4").reshape(height, width)[...] = array
    return ImageFields(height=height, width=width, encoding="32FC1", is_bigendian=0, step=width * 4, data=data)
