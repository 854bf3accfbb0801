"""The sensor_msgs/Image field set and the byte-level helpers that raw and compressed images share.

`image_msg` (raw Image <-> arrays) and `compressed` (CompressedImage <-> Image fields) both build
on this module and on nothing of each other's but `image_msg` calling `compressed.decompress`,
so the two import in one direction only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from depth_sr_ros.core.errors import FrameError


@dataclass
class ImageFields:
    """The fields of a sensor_msgs/Image (header excluded); `data` is 1-D uint8 of step*height."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray


def as_byte_array(data: Any) -> np.ndarray:
    """A contiguous 1-D uint8 view of a message's `data` (buffer protocol, no copy; lists are
    converted; a non-contiguous numpy array, e.g. a slice with a step, is copied once)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def depth_array(depth_m: np.ndarray) -> np.ndarray:
    """`depth_m` (metres) as an `HxW float32` array; ValueError when it is not 2-D, FrameError
    ("empty_image") when it has no pixels."""
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D HxW array; got shape {depth.shape}")
    if depth.size == 0:
        raise FrameError("empty_image", f"depth is {depth.shape[1]}x{depth.shape[0]}; expected a non-empty image")
    return depth


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Where a depth in metres is valid: finite and > 0."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > 0)


def millimetres_from_metres(depth: np.ndarray) -> np.ndarray:
    """`HxW uint16` millimetres (REP 118 `16UC1`) of an `HxW float32` depth in metres.

    Rounded to the nearest millimetre; NaN, inf, depths <= 0, depths that round to 0 mm and depths
    beyond 65.535 m (which do not fit in uint16) all become 0 = invalid.
    """
    millimetres = np.rint(np.where(valid_depth(depth), depth, 0.0).astype(np.float64) * 1000.0)
    millimetres[millimetres > np.iinfo(np.uint16).max] = 0
    return millimetres.astype(np.uint16)
