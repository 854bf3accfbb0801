"""Organised sensor_msgs/PointCloud2 fields from a depth image and pinhole intrinsics.

Points are in the camera optical frame (x right, y down, z forward), metres:
`x = (u - cx) * z / fx`, `y = (v - cy) * z / fy`, `z = depth[v, u]`, with (u, v) the integer
pixel column and row, as depth_image_proc's point_cloud_xyz computes them.

Layout (little-endian, `is_bigendian = False`; readers locate fields by their offsets):
- XYZ: x, y, z float32 at offsets 0, 4, 8; `point_step = 12` (the compact layout of
  sensor_msgs_py's `create_cloud_xyz32`; depth_image_proc pads to 16 bytes, we do not).
- XYZRGB: the same plus a float32 field named "rgb" at offset 12, `point_step = 16`, whose
  bits are the uint32 `0x00RRGGBB` (how PCL, RViz and sensor_msgs_py read packed colour).
- with a per-pixel confidence (`core/confidence.py`), a float32 field named "confidence" after
  the others (offset 12 for XYZ, 16 for XYZRGB; `point_step` 16 or 20), the value in [0, 1]
  of the point's pixel (RViz can colour the points by it, as by intensity).

The cloud is organised: `height x width` = the depth image sampled every `stride` pixels in
both axes (rows and columns 0, stride, 2*stride, ...). Invalid depth (NaN, inf, <= 0) gives a
point with NaN x, y, z and `is_dense = False`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.msg_buffer import message_bytes, nan_is_the_only_invalid

# sensor_msgs/PointField datatypes
INT8 = 1
UINT8 = 2
INT16 = 3
UINT16 = 4
INT32 = 5
UINT32 = 6
FLOAT32 = 7
FLOAT64 = 8

ASPECT_TOLERANCE = 0.01  # relative aspect-ratio difference allowed when intrinsics are rescaled


@dataclass
class PointFieldSpec:
    """sensor_msgs/PointField fields: a named channel at a byte offset inside each point."""

    name: str
    offset: int
    datatype: int
    count: int = 1


@dataclass
class PointCloudFields:
    """sensor_msgs/PointCloud2 fields (header excluded); `data` is 1-D uint8 of row_step*height."""

    height: int
    width: int
    fields: list[PointFieldSpec]
    is_bigendian: bool
    point_step: int
    row_step: int
    data: np.ndarray
    is_dense: bool


XYZ_FIELDS = (
    PointFieldSpec("x", 0, FLOAT32),
    PointFieldSpec("y", 4, FLOAT32),
    PointFieldSpec("z", 8, FLOAT32),
)
RGB_FIELD = PointFieldSpec("rgb", 12, FLOAT32)
CONFIDENCE = "confidence"  # the name of the optional per-point confidence field


@lru_cache(maxsize=4)  # 2.4 MB per 640x480 entry
def _ray_grid(intrinsics: Intrinsics, height: int, width: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """`(u - cx) / fx` and `(v - cy) / fy` at every sampled pixel, as two read-only float32 grids
    (a full grid multiplies faster than a broadcast row or column)."""
    columns = ((np.arange(0, width, stride) - intrinsics.cx) / intrinsics.fx).astype(np.float32)
    rows = ((np.arange(0, height, stride) - intrinsics.cy) / intrinsics.fy).astype(np.float32)
    shape = (rows.size, columns.size)
    grids = (np.ascontiguousarray(np.broadcast_to(columns, shape)),
             np.ascontiguousarray(np.broadcast_to(rows[:, None], shape)))
    for grid in grids:
        grid.flags.writeable = False
    return grids


def _intrinsics_for(intrinsics: Intrinsics, height: int, width: int) -> Intrinsics:
    """`intrinsics` for an image of `width x height`, rescaled if the size differs."""
    if (intrinsics.width, intrinsics.height) == (width, height):
        return intrinsics
    aspect_in = intrinsics.width / intrinsics.height
    aspect_out = width / height
    if abs(aspect_out / aspect_in - 1.0) > ASPECT_TOLERANCE:
        raise FrameError(
            "size_mismatch",
            f"depth is {width}x{height} but the intrinsics are for {intrinsics.width}x{intrinsics.height}; "
            "expected the same aspect ratio",
        )
    return intrinsics.scaled(width, height)


def point_cloud_fields(
    depth_m: np.ndarray, intrinsics: Intrinsics, rgb: np.ndarray | None = None, stride: int = 1,
    confidence: np.ndarray | None = None,
) -> PointCloudFields:
    """Organised XYZ (or XYZRGB when `rgb` is given) cloud fields from `HxW` depth in metres.

    `intrinsics` are rescaled to the depth size when they describe another resolution of the
    same aspect ratio (FrameError "size_mismatch" otherwise). `rgb` must be `HxWx3 uint8` of
    the depth's size, `confidence` `HxW` (float, [0, 1]; adds the "confidence" field) of the
    depth's size (FrameError "size_mismatch" otherwise). A point is invalid (NaN x, y, z) by its
    depth alone: pixels a confidence threshold rejects are NaN in the depth already.

    No Python loop and no full-size copy beyond the channels themselves: x and y are the depth
    times the cached per-pixel rays, and one `cv2.merge` interleaves x, y, z (and the
    packed colour, the confidence) straight into the message buffer (`core/msg_buffer.message_bytes`), so
    the node's message builder takes it without a copy. The bytes are written in the host's
    order, little-endian on every ROS 2 platform, as `is_bigendian = False` declares.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2 or depth.size == 0:
        raise FrameError("size_mismatch", f"depth must be a non-empty HxW array; got shape {depth.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1; got {stride}")
    height, width = depth.shape
    for name, extra, shape in (("rgb", rgb, (height, width, 3)), (CONFIDENCE, confidence, (height, width))):
        if extra is not None and extra.shape != shape:
            raise FrameError(
                "size_mismatch", f"{name} has shape {extra.shape}; expected {shape} to match the depth"
            )
    rays_x, rays_y = _ray_grid(_intrinsics_for(intrinsics, height, width), height, width, stride)

    z = np.ascontiguousarray(depth[::stride, ::stride], dtype=np.float32)  # no copy at stride 1
    if not nan_is_the_only_invalid(z):
        with np.errstate(invalid="ignore"):
            valid = (z > 0) & (z < np.inf)  # False for NaN and -inf
        z = np.where(valid, z, np.float32(np.nan))
    channels = [np.multiply(z, rays_x), np.multiply(z, rays_y), z]  # invalid (NaN) z gives NaN x, y
    if rgb is not None:
        channels.append(_packed_colour(rgb[::stride, ::stride]))
    if confidence is not None:
        channels.append(np.ascontiguousarray(confidence[::stride, ::stride], dtype=np.float32))

    point_step = 4 * len(channels)
    data = message_bytes(point_step * z.size)
    points = data.view(np.float32).reshape(*z.shape, len(channels))
    cv2.merge(channels, dst=points)
    return PointCloudFields(
        height=z.shape[0],
        width=z.shape[1],
        fields=_field_specs(rgb is not None, confidence is not None),
        is_bigendian=False,
        point_step=point_step,
        row_step=point_step * z.shape[1],
        data=data,
        is_dense=not np.isnan(z.min()),  # min is NaN exactly when some point is
    )


def _field_specs(coloured: bool, confident: bool) -> list[PointFieldSpec]:
    """x, y, z, then "rgb" and "confidence" when present, each float32 right after the one before."""
    specs = list(XYZ_FIELDS) + ([RGB_FIELD] if coloured else [])
    if confident:
        specs.append(PointFieldSpec(CONFIDENCE, 4 * len(specs), FLOAT32))
    return specs


def _packed_colour(rgb: np.ndarray) -> np.ndarray:
    """`HxW` float32 whose bits are the little-endian uint32 `0x00RRGGBB` of each RGB pixel.

    That uint32 is the byte sequence B, G, R, 0: BGRA with alpha 0, read as one float32.
    """
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
    packed = bgra.view(np.uint32).reshape(bgra.shape[:2])
    np.bitwise_and(packed, np.uint32(0x00FFFFFF), out=packed)  # alpha, the high byte, to 0
    return packed.view(np.float32)
