"""Depth on the model grid: nearest resampling, hole fill, hole policy, normalisation, PIL resize
and the antialiased bicubic downsampling.

The model grid of an `H x W` RGB image at scale `s` is `(ceil(H / s), ceil(W / s))`: grid pixel
`(i, j)` covers RGB pixels `[i*s, (i+1)*s) x [j*s, (j+1)*s)`. When `H` or `W` is not a multiple of
`s`, the last grid row/column covers the RGB image's border plus padding (see `pad_to_multiple`).

Depth of another size (registered to the RGB camera, covering the same field of view) is brought
to the grid by nearest-neighbour sampling on pixel centres: each grid pixel takes the one input
pixel whose footprint holds its centre. Depths are never averaged, so no value appears that lies
between a foreground and a background surface, and NaN (invalid) is carried as is.
See docs/pipeline.md for the whole policy.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from depth_sr_ros.core.errors import FrameError

# Largest max_hole_radius that hole_mask computes by an erosion; larger ones use the distance
# transform, cheaper than an erosion by a large disc.
EROSION_MAX_RADIUS = 8

_PIL_METHODS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def pil_resize(array: np.ndarray, size: tuple[int, int], method: str = "bicubic") -> np.ndarray:
    """Resize a 2-D array as a float32 PIL image: `Image.fromarray(a).resize(size, method)`.

    `size` is `(width, height)`, PIL's order. Bicubic is PIL's antialiased bicubic, the one the
    gdsr benchmark protocol (PROTOCOL.md) uses both to make its inputs and as its baseline;
    OpenCV's INTER_CUBIC is a different filter. Units are kept (the filter is linear).
    """
    if array.ndim != 2:
        raise ValueError(f"pil_resize takes a 2-D array, got shape {array.shape}")
    try:
        resample = _PIL_METHODS[method]
    except KeyError:
        raise ValueError(f"unknown resize method {method!r}; known: {', '.join(_PIL_METHODS)}") from None
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")
    return np.asarray(image.resize(size, resample), dtype=np.float32)


def grid_shape(rgb_shape: tuple[int, ...], scale: int) -> tuple[int, int]:
    """The model input grid `(ceil(H / scale), ceil(W / scale))` of an `H x W (x C)` image."""
    return math.ceil(rgb_shape[0] / scale), math.ceil(rgb_shape[1] / scale)


def check_aspect(depth_shape: tuple[int, ...], rgb_shape: tuple[int, ...], tolerance: float) -> None:
    """Raise FrameError("aspect_mismatch") when the two images' width/height ratios differ by more
    than `tolerance`, relative (0.03 = 3 %). Registered depth must cover the RGB field of view."""
    depth_aspect = depth_shape[1] / depth_shape[0]
    rgb_aspect = rgb_shape[1] / rgb_shape[0]
    mismatch = abs(depth_aspect / rgb_aspect - 1.0)
    if mismatch > tolerance:
        raise FrameError(
            "aspect_mismatch",
            f"depth {depth_shape[1]}x{depth_shape[0]} and RGB {rgb_shape[1]}x{rgb_shape[0]} differ in "
            f"aspect ratio by {mismatch:.1%} (tolerance {tolerance:.1%}); is the depth registered to the RGB camera?",
        )


def _nearest_indices(n_out: int, out_pitch: float, n_in: int, in_pitch: float) -> np.ndarray:
    """Input index whose footprint holds each output pixel centre; pitches in RGB pixels."""
    centres = (np.arange(n_out) + 0.5) * out_pitch
    return np.minimum((centres / in_pitch).astype(np.intp), n_in - 1)


def resample_to_grid(depth: np.ndarray, rgb_shape: tuple[int, ...], scale: int) -> np.ndarray:
    """Bring registered depth of any size to the model grid of an RGB image, nearest on centres.

    The input depth covers the RGB image (its pixel pitch is `H / h` RGB pixels); grid pixels have
    a pitch of `scale` RGB pixels. Returns `depth` itself when it already has the grid's shape.
    Call `check_aspect` first: this function stretches whatever it is given.
    """
    grid = grid_shape(rgb_shape, scale)
    if depth.shape == grid:
        return depth
    rows = _nearest_indices(grid[0], scale, depth.shape[0], rgb_shape[0] / depth.shape[0])
    cols = _nearest_indices(grid[1], scale, depth.shape[1], rgb_shape[1] / depth.shape[1])
    return depth[np.ix_(rows, cols)]


def pad_to_multiple(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Pad `rgb` at the bottom and right by edge replication to a multiple of `scale` (no copy when
    it already is one), so that the grid times `scale` is exactly its size."""
    pad_h = -rgb.shape[0] % scale
    pad_w = -rgb.shape[1] % scale
    if pad_h == 0 and pad_w == 0:
        return rgb
    return np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def fill_holes(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Copy of `depth` with every invalid pixel set to its nearest valid pixel's depth.

    Nearest in the (approximate, 5x5 mask) Euclidean sense of `cv2.distanceTransformWithLabels`.
    `valid` must hold at least one True. Returns `depth` itself when every pixel is valid.
    """
    if valid.all():
        return depth
    _, labels = cv2.distanceTransformWithLabels(
        valid.astype(np.uint8) ^ 1, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # With DIST_LABEL_PIXEL every zero (= valid) pixel gets its own label, 1, 2, ... in raster order,
    # and every other pixel the label of its nearest zero pixel.
    return depth[valid][labels - 1].astype(depth.dtype, copy=False)


def bicubic_downsample(depth: np.ndarray, scale: int) -> np.ndarray:
    """`depth` (H x W, any unit, NaN invalid) on the grid of its image at `scale` (`grid_shape`),
    by PIL's antialiased bicubic: holes take their nearest valid pixel's value first, the image is
    padded at the bottom and right by edge replication to a multiple of `scale`, and grid pixels
    whose whole footprint was invalid are NaN (all of them when no pixel is valid). With no hole
    and a multiple of `scale` this is the benchmark protocol's downsampling (PROTOCOL.md)."""
    valid = np.isfinite(depth)
    if not valid.any():
        return np.full(grid_shape(depth.shape, scale), np.nan, dtype=np.float32)
    filled = fill_holes(depth, valid)  # reads only the valid pixels; `depth` itself when all are
    pad = ((0, -depth.shape[0] % scale), (0, -depth.shape[1] % scale))
    if pad[0][1] or pad[1][1]:
        filled, valid = np.pad(filled, pad, mode="edge"), np.pad(valid, pad, mode="edge")
    height, width = filled.shape[0] // scale, filled.shape[1] // scale
    lr = pil_resize(filled, (width, height), "bicubic")
    if valid.all():
        return lr
    footprint = valid.reshape(height, scale, width, scale).any(axis=(1, 3))
    return np.where(footprint, lr, np.float32(np.nan))


def hole_mask(valid: np.ndarray, max_hole_radius: int) -> np.ndarray:
    """True where an invalid pixel lies farther than `max_hole_radius` pixels (exact Euclidean)
    from the nearest valid pixel: the part of a hole too large to fill, left NaN in the output.

    Up to `EROSION_MAX_RADIUS` this is one erosion of the invalid pixels by the disc of every
    integer offset `(dy, dx)` with `dy**2 + dx**2 <= max_hole_radius**2`: a pixel survives
    exactly when no valid pixel lies within that disc. Beyond it, the exact distance transform.
    """
    if valid.all():
        return np.zeros(valid.shape, dtype=bool)
    invalid = np.logical_not(valid).view(np.uint8)  # 1 = invalid; a fresh bool array, viewed
    if max_hole_radius <= EROSION_MAX_RADIUS:
        # Outside the image counts as invalid (border 1): no valid pixel lies there.
        kept = cv2.erode(invalid, disc_kernel(max_hole_radius), borderType=cv2.BORDER_CONSTANT, borderValue=(1.0,))
        return kept.view(bool)
    distance = cv2.distanceTransform(invalid, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance > max_hole_radius


@lru_cache(maxsize=8)
def disc_kernel(radius: int) -> np.ndarray:
    """uint8 `(2r+1) x (2r+1)` kernel, 1 at the offsets within `radius` (Euclidean) of the centre."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


def normalise(
    depth: np.ndarray, valid: np.ndarray, lo: float | None = None, hi: float | None = None
) -> tuple[np.ndarray, float, float]:
    """`(depth - lo) / (hi - lo)` as float32, with `lo`, `hi` the min and max of the valid depth
    unless given. A flat frame (`hi == lo`) divides by 1 instead, so it maps to 0."""
    if lo is None or hi is None:
        valid_depth = depth[valid]
        lo = float(valid_depth.min()) if lo is None else lo
        hi = float(valid_depth.max()) if hi is None else hi
    norm = (depth - np.float32(lo)) / np.float32(_span(lo, hi))
    return norm.astype(np.float32, copy=False), lo, hi


def denormalise(norm: np.ndarray, lo: float, hi: float, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of `normalise` with the same `lo`, `hi`; float32, written into `out` when given
    (`out=norm` de-normalises in place)."""
    result = np.multiply(norm, np.float32(_span(lo, hi)), out=out, dtype=np.float32)
    result += np.float32(lo)
    return result


def _span(lo: float, hi: float) -> float:
    return hi - lo if hi > lo else 1.0
