"""The signal for registration without ground truth: depth discontinuities against colour edges.

A depth image's occluding contours (neighbours whose depths differ by more than a relative jump)
are the outlines of objects, and those outlines are edges in the colour image too. Each contour
point is kept as a 3-D point on the foreground (the occluder) with the direction of the
discontinuity in the image (its normal); moved by a candidate extrinsic and projected into the
colour image, it should land on a colour edge running the same way. `EdgeMap.along` samples
`|grad I . n|`, the colour gradient across the contour.

Frames and units: contour points are in metres in the depth image's optical frame; they are
described in the *colour* camera's pixel grid (the depth image is taken to cover the colour image,
pixel centres aligned, as the pipeline's resampling does); `intrinsics` are the colour camera's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from depth_sr_ros.core.projection import distort, undistort


@dataclass(frozen=True)
class ContourConfig:
    """jump_rel: a discontinuity is a neighbour pair whose depths differ by more than this fraction
    of the nearer one; reach_px: how far either side (depth pixels) the plateau depths are read
    (the input may be blurred, e.g. bicubic-downsampled); depth_level: the contour point's depth,
    as a fraction of the way from the near plateau to the far one (0 = the occluder's own depth,
    right for a sharp edge; real silhouettes ramp through mixed and grazing depths, which move
    with their own, smaller parallax: 0.35 brings the estimate within 1 % on the training frames
    of rgbdd_dev and on nyu_train, docs/registration.md); max_points: contour points kept per
    frame (evenly subsampled, to bound the cost)."""

    jump_rel: float = 0.06
    reach_px: int = 2
    depth_level: float = 0.35
    max_points: int = 4000


@dataclass
class Contours:
    """Occluding-contour points of one depth image.

    points: N x 3 metres (foreground side, depth camera's optical frame); normals: N x 2 unit
    vectors in the image (from the near to the far side, colour pixel units); weight: N, the
    relative depth jump (bigger jumps are surer)."""

    points: np.ndarray
    normals: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])


def _plateaus(depth: np.ndarray, axis: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """For each neighbour pair (i, i + 1) along `axis`: the depths at i - reach and i + 1 + reach,
    the plateaus either side of a blurred step (NaN beyond the image). Shaped like the pairs."""
    n = depth.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (reach, reach)
    padded = np.pad(depth, pad, mode="constant", constant_values=np.nan)
    before = np.take(padded, np.arange(0, n - 1), axis=axis)
    after = np.take(padded, np.arange(2 * reach + 1, n + 2 * reach), axis=axis)
    return before, after


def find_contours(depth: np.ndarray, intrinsics: Any, config: ContourConfig = ContourConfig()) -> Contours:
    """Occluding contours of `depth` (h x w metres, NaN invalid), which covers the colour image
    of `intrinsics` (colour camera, its own width x height): sub-pixel positions where the depth
    crosses half way between the near and far plateaus (read `reach_px` either side, clear of a
    blurred step's ringing), back-projected at the depth `config.depth_level` of the way from the
    near plateau to the far one."""
    depth = np.asarray(depth, dtype=np.float32)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan))  # 0 and inf: invalid
    h, w = depth.shape
    sx, sy = intrinsics.width / w, intrinsics.height / h
    log_depth = np.log(depth)
    grad_x = cv2.Sobel(np.nan_to_num(log_depth), cv2.CV_32F, 1, 0, ksize=3)
    grad_y = cv2.Sobel(np.nan_to_num(log_depth), cv2.CV_32F, 0, 1, ksize=3)
    rows, cols, near, step_x, step_y, jump = [], [], [], [], [], []
    for axis in (1, 0):
        a = depth[:, :-1] if axis == 1 else depth[:-1, :]
        b = depth[:, 1:] if axis == 1 else depth[1:, :]
        before, after = _plateaus(depth, axis, config.reach_px)
        with np.errstate(invalid="ignore", divide="ignore"):
            lo, hi = np.minimum(before, after), np.maximum(before, after)
            fraction = (0.5 * (lo + hi) - a) / (b - a)
            pair = (np.abs(b - a) > 0.25 * config.jump_rel * np.minimum(a, b)) & (hi - lo > config.jump_rel * lo)
            crossing = pair & (fraction >= 0) & (fraction <= 1) & np.isfinite(hi) & np.isfinite(lo)
        r, c = np.nonzero(crossing)
        f = fraction[r, c]
        rows.append(r + (f if axis == 0 else 0.0))
        cols.append(c + (f if axis == 1 else 0.0))
        near.append(lo[r, c] + config.depth_level * (hi[r, c] - lo[r, c]))
        jump.append((hi[r, c] - lo[r, c]) / lo[r, c])
        # The log-depth gradient across the pair (both pixels) is the contour's normal.
        r2, c2 = (r, c + 1) if axis == 1 else (r + 1, c)
        step_x.append(grad_x[r, c] + grad_x[r2, c2])
        step_y.append(grad_y[r, c] + grad_y[r2, c2])
    row, col, z = np.concatenate(rows), np.concatenate(cols), np.concatenate(near).astype(np.float64)
    normal = np.stack([np.concatenate(step_x) / sx, np.concatenate(step_y) / sy], axis=1).astype(np.float64)
    length = np.linalg.norm(normal, axis=1)
    keep = length > 1e-9
    if keep.sum() > config.max_points:
        keep &= np.cumsum(keep) % int(np.ceil(keep.sum() / config.max_points)) == 0
    # Depth-image coordinates -> colour pixel coordinates (pixel centres aligned), then normalised rays.
    u = (col[keep] + 0.5) * sx - 0.5
    v = (row[keep] + 0.5) * sy - 0.5
    x, y = undistort((u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, _coefficients(intrinsics))
    points = np.stack([x * z[keep], y * z[keep], z[keep]], axis=1)
    return Contours(points, normal[keep] / length[keep, None], np.concatenate(jump)[keep].astype(np.float64))


def _coefficients(intrinsics: Any) -> tuple[float, ...]:
    raw = getattr(intrinsics, "d", None)
    d = tuple(float(c) for c in np.asarray(() if raw is None else raw, dtype=np.float64).reshape(-1))
    return d if any(d) else ()


def project(points: np.ndarray, intrinsics: Any) -> tuple[np.ndarray, np.ndarray]:
    """Colour pixel coordinates (u, v) of N x 3 points in the colour optical frame (z > 0 assumed;
    points behind get NaN)."""
    z = np.where(points[:, 2] > 1e-6, points[:, 2], np.nan)
    xd, yd = distort(points[:, 0] / z, points[:, 1] / z, _coefficients(intrinsics))
    return intrinsics.fx * xd + intrinsics.cx, intrinsics.fy * yd + intrinsics.cy


@dataclass
class EdgeMap:
    """Colour gradients of one image (gray, Gaussian-smoothed), normalised so that the frame's
    strong edges are about 1: `gx`, `gy` are H x W float32 per colour pixel."""

    gx: np.ndarray
    gy: np.ndarray

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, sigma_px: float = 1.0) -> EdgeMap:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
        gray = cv2.GaussianBlur(grey, (0, 0), sigma_px)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        scale = float(np.percentile(np.hypot(gx, gy), 98)) or 1.0
        return cls(gx / scale, gy / scale)

    def along(self, u: np.ndarray, v: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """`|grad I . n|` at sub-pixel (u, v) (bilinear), 0 outside the image or at NaN."""
        h, w = self.gx.shape
        ok = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (v >= 0) & (u <= w - 1) & (v <= h - 1)
        u0 = np.clip(np.floor(np.where(ok, u, 0)), 0, w - 2).astype(np.int64)
        v0 = np.clip(np.floor(np.where(ok, v, 0)), 0, h - 2).astype(np.int64)
        fu, fv = np.where(ok, u, 0) - u0, np.where(ok, v, 0) - v0
        out = np.zeros(np.shape(u), dtype=np.float64)
        for grid, n in ((self.gx, normals[..., 0]), (self.gy, normals[..., 1])):
            top = grid[v0, u0] * (1 - fu) + grid[v0, u0 + 1] * fu
            bottom = grid[v0 + 1, u0] * (1 - fu) + grid[v0 + 1, u0 + 1] * fu
            out += (top * (1 - fv) + bottom * fv) * n
        return np.where(ok, np.abs(out), 0.0)
