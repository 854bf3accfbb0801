"""Super-resolution in the depth sensor's own view, for depth labelled as registered to the colour
camera but off by a residual pose (the self-registration estimate, or TF's).

    view = SensorView(intrinsics, residual)
    result = pipeline.process(view.colour(rgb, depth), depth)     # both in the sensor's view
    seen = view.to_colour(result.depth)                            # back in the colour camera
    final = pipeline.process(rgb, bicubic_downsample(seen.depth, scale))  # second pass, x2-x8

Registering the low-resolution depth before super-resolution (`reprojection.register_residual`)
moves each input pixel with its own depth: at a depth edge that pixel mixes the near and the far
surface and moves with the mixed depth, and the warp resamples an already coarse image once more
(docs/registration.md, "The gap to registered input"). Here the depth stays as the sensor gave it.
The colour image is resampled into the sensor's view instead (`colour`: every output pixel, at
the upsampled input depth, moved by the residual into the colour camera and sampled there,
bilinear), the pipeline runs on that aligned pair, and its full-resolution output is reprojected
into the colour camera (`to_colour`: z-buffer, the nearest surface wins), so each output pixel
moves with its own, sharp depth.

Back in the colour camera the output's soft depth edges have been through the z-buffer (where an
edge is soft, a pixel of the other side can land nearer and win) and the pixels the sensor did not
see are filled by geometry alone. So, up to `SECOND_PASS_MAX_SCALE`, the pipeline runs once more:
on the reprojected output brought to the input grid (`resample.bicubic_downsample`, the kind of
input the networks are trained on) beside the colour image itself, which puts the edges where the
colour image has them (`core/frame_processor.py`; docs/registration.md measures both passes).

What the colour camera sees and the sensor does not gets filled, and counts in `SeenDepth.unseen`:
a gap behind a foreground edge takes the farther of the two surfaces met along the epipolar
direction (the background, which the edge uncovered), a strip along the image border the nearest
reprojected pixel; beyond the hole policy's reach (`fill_limit_px`) they stay NaN. Pixels the
pipeline left invalid (NaN) stay invalid and are not filled.

Frames and units: depth in metres along the optical axis, NaN invalid; both views share the colour
intrinsics (depth labelled as registered has them); `residual` maps the sensor's optical frame
into the colour optical frame (`p_colour = R p_sensor + t`), as in core/reprojection.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from depth_sr_ros.core.projection import Extrinsic, Pinhole, distort, max_monotonic_r2, pinhole_at
from depth_sr_ros.core.reprojection import turned_rays
from depth_sr_ros.core.resample import fill_holes, hole_mask

# The largest scale at which a network runs a second pass in the colour camera: with the true pose
# it gained 6-19 % at x2-x8 and lost 8 % at x16 (docs/registration.md, "A second pass in the
# colour camera").
SECOND_PASS_MAX_SCALE = 8


def runs_second_pass(scale: int, enabled: bool = True) -> bool:
    """Whether a network in the sensor's view runs its second pass in the colour camera at `scale`
    (`enabled`: `OutputConfig.second_pass`, the node's `registration_second_pass`)."""
    return enabled and scale <= SECOND_PASS_MAX_SCALE


@dataclass
class SeenDepth:
    """The output in the colour camera. depth: H x W float32 metres, NaN invalid; source: H x W
    flat index of the sensor-view pixel each pixel shows (-1 where none: unseen or invalid);
    unseen: H x W bool, the pixels the sensor does not see, filled (module docstring)."""

    depth: np.ndarray
    source: np.ndarray
    unseen: np.ndarray

    def carry(self, values: np.ndarray, unseen_value: float = 0.0) -> np.ndarray:
        """A per-pixel map of the sensor's view (H x W) taken along into the colour camera:
        `unseen_value` where the sensor saw nothing (and where the depth is invalid)."""
        out = np.full(self.source.shape, unseen_value, dtype=values.dtype)
        shown = self.source >= 0
        out[shown] = values.reshape(-1)[self.source[shown]]
        return out


class SensorView:
    """The depth sensor's view of one colour camera (`intrinsics`, any distortion model the
    projection supports) at a residual pose (`residual`, sensor -> colour optical frame)."""

    def __init__(self, intrinsics: Any, residual: Extrinsic) -> None:
        self.intrinsics = intrinsics
        self.residual = residual

    def colour(self, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """The colour image (H x W x 3 uint8) resampled into the sensor's view, using `depth` (the
        sensor's image at any size covering the view, metres, NaN holes) upsampled to H x W as
        each pixel's distance; pixels that project outside take the nearest border colour."""
        height, width = rgb.shape[:2]
        depth = np.asarray(depth, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(depth) & (depth > 0)
        if not valid.any():
            return rgb  # nothing to move by; the pipeline rejects such a frame
        filled = fill_holes(depth, valid)  # reads only the valid pixels
        guess = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
        col, row, _ = self._in_colour((height, width), guess)
        outside = ~np.isfinite(col)
        col[outside], row[outside] = -1.0, -1.0
        return cv2.remap(rgb, col.reshape(height, width), row.reshape(height, width), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def to_colour(self, depth: np.ndarray, fill_limit_px: int | None = None) -> SeenDepth:
        """`depth` (H x W metres in the sensor's view, NaN invalid) as the colour camera sees it.
        `fill_limit_px`: unseen pixels farther than this from every seen pixel stay NaN (the
        pipeline's hole policy at output resolution); None fills them all."""
        depth = np.asarray(depth, dtype=np.float32)
        height, width = depth.shape
        valid = (depth > 0) & (depth < np.inf)  # False for NaN
        # Invalid pixels are projected too, at the nearest valid depth, so that they stay invalid
        # where they land instead of reading as unseen and being filled.
        where = fill_holes(depth, valid) if valid.any() else depth
        col, row, z = self._in_colour((height, width), where)
        with np.errstate(invalid="ignore"):
            lands = np.flatnonzero((col > -0.5) & (col < width - 0.5) & (row > -0.5) & (row < height - 0.5))
        # Coordinates above -0.5: truncation after +0.5 rounds to the nearest pixel centre.
        target = (row[lands] + 0.5).astype(np.int64) * width + (col[lands] + 0.5).astype(np.int64)
        # One scatter-minimum of (depth, source) keys: positive float32 depths order as their bits,
        # so the high word picks the nearest point and the low word says which one it was.
        keys = z[lands].view(np.uint32).astype(np.uint64) << np.uint64(32)
        keys |= lands.astype(np.uint64)
        nearest_key = np.full(height * width, np.iinfo(np.uint64).max, dtype=np.uint64)
        np.minimum.at(nearest_key, target, keys)
        reached = nearest_key != np.iinfo(np.uint64).max
        source = (nearest_key & np.uint64(0xFFFFFFFF)).view(np.int64)
        shown = reached.copy()
        shown[reached] = valid.reshape(-1)[source[reached]]
        seen = np.where(shown, (nearest_key >> np.uint64(32)).astype(np.uint32).view(np.float32), np.float32(np.nan))
        source[~shown] = -1
        unseen = ~reached.reshape(height, width)
        out = seen.reshape(height, width)
        self._fill_unseen(out, unseen)
        if fill_limit_px is not None:
            out[hole_mask(~unseen, fill_limit_px)] = np.nan
        return SeenDepth(out, source.reshape(height, width), unseen)

    def _in_colour(self, shape: tuple[int, int], depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Colour-camera pixel coordinates (column, row; float32, flat) and depth of every pixel of
        a sensor-view grid at `depth`; NaN where the point is invalid, behind the camera or beyond
        the distortion model's valid range."""
        camera = pinhole_at(self.intrinsics, shape)
        a, b, c = _turned_rays32(camera, shape, self.residual.rotation.tobytes())
        z = depth.reshape(-1)
        tx, ty, tz = (np.float32(v) for v in self.residual.translation)
        with np.errstate(invalid="ignore", divide="ignore"):
            z_out = c * z
            z_out += tz
            inverse = np.reciprocal(z_out)
            x, y = a * z, b * z
            x += tx
            x *= inverse
            y += ty
            y *= inverse
            bad = ~(z > 0) | ~(z_out > 0)
            if camera.distortion:
                bad |= x * x + y * y > max_monotonic_r2(camera.distortion)
                x, y = distort(x, y, camera.distortion)  # float32 arrays, Python-float coefficients: float32
        x *= np.float32(camera.fx)
        x += np.float32(camera.cx)
        y *= np.float32(camera.fy)
        y += np.float32(camera.cy)
        x[bad], y[bad], z_out[bad] = np.nan, np.nan, np.nan
        return x, y, z_out

    def _fill_unseen(self, depth: np.ndarray, unseen: np.ndarray) -> None:
        """Fill the unseen pixels of `depth` in place (module docstring)."""
        if not unseen.any() or not np.isfinite(depth).any():
            return
        camera = pinhole_at(self.intrinsics, (depth.shape[0], depth.shape[1]))
        shift = np.array([camera.fy * self.residual.translation[1], camera.fx * self.residual.translation[0]])
        reach = float(np.hypot(*shift))
        if reach > 1e-9:
            nearest_z = float(np.nanmin(depth))
            steps = min(int(np.ceil(reach / nearest_z)) + 2, max(depth.shape))
            background_between(depth, unseen, shift / reach, steps)
        left = unseen & ~np.isfinite(depth)
        if left.any():
            known = np.isfinite(depth)
            depth[left] = fill_holes(depth, known)[left]


@functools.lru_cache(maxsize=4)
def _turned_rays32(camera: Pinhole, shape: tuple[int, int], rotation: bytes) -> tuple[np.ndarray, ...]:
    """`reprojection.turned_rays` in float32 (a pixel's position to 1e-4 px at 4000 px)."""
    return tuple(ray.astype(np.float32) for ray in turned_rays(camera, shape, rotation))


def background_between(depth: np.ndarray, holes: np.ndarray, direction: np.ndarray, steps: int) -> None:
    """Each hole pixel (`holes`, H x W bool) with a valid pixel of `depth` within `steps` pixels
    both ways along `direction` (a unit (row, column) vector) takes the farther of the two, in
    place; the others are left as they are."""
    height, width = depth.shape
    flat = np.flatnonzero(holes)
    rows, cols = np.divmod(flat, width)
    ends = []
    for sign in (1.0, -1.0):
        found = np.full(flat.size, np.nan, dtype=np.float32)
        pending = np.arange(flat.size)
        for k in range(1, steps + 1):
            r = np.rint(rows[pending] + sign * k * direction[0]).astype(np.intp)
            c = np.rint(cols[pending] + sign * k * direction[1]).astype(np.intp)
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            pending, r, c = pending[inside], r[inside], c[inside]
            values = depth[r, c]
            hit = np.isfinite(values)
            found[pending[hit]] = values[hit]
            pending = pending[~hit]
            if not pending.size:
                break
        ends.append(found)
    both = np.isfinite(ends[0]) & np.isfinite(ends[1])
    depth.reshape(-1)[flat[both]] = np.maximum(ends[0][both], ends[1][both])
