"""Per-pixel confidence in [0, 1] beside the super-resolved depth: which output pixels to trust.

Each cue predicts part of the output's error, in metres, at every output pixel (RGB optical frame,
the output's size); their sum `sigma` is the predicted error, and

    confidence = exp(-sigma / error_scale_m)        (0 where the output depth is invalid)

so confidence is 1 for a pixel predicted exact, exp(-1) = 0.37 at a predicted error of
`error_scale_m`, and falls toward 0 as the predicted error grows. The cues:

- **model disagreement**: `|depth - bicubic|`, the output against bicubic upsampling (OpenCV's)
  of the same filled input. Where the network departs from the smooth baseline it decided
  something (an edge, a fine structure) that it may have decided wrongly.
- **depth edges**: `range_weight * (max - min)` of the output depth in a disc of radius
  `range_radius_lr * scale` output pixels (`range_radius_lr` input pixels). Near a depth
  discontinuity a misplaced edge costs the whole jump; far from one this is small.
- **sensor noise**: `noise_m_per_m2 * depth**2`, the depth-squared noise of a ToF or
  structured-light camera, left in the output where the network smooths it incompletely.
- **input validity**: `invalid_rel * depth * exp(-distance / invalid_decay_px)`, with `distance`
  the output pixels from the pixel's input footprint to the nearest input pixel that was invalid
  (and filled by the pipeline), 0 over it: depth over and beside a filled hole is extrapolated.

The weights are tuned on the training split of `rgbdd_dev` with the shipped `lite` x4 weights
(docs/confidence.md: the sweep, the held-out sparsification figures and the command). The
ordering of pixels (what the sparsification curve scores) depends on the weights only; the
mapping to [0, 1] (what a `min_confidence` threshold means) on `error_scale_m` as well.

Cost: `ConfidenceEstimator` keeps its H x W float32 working arrays from one frame to the next
(a fresh multi-megabyte array costs a page fault per 4 KiB page on its first write) and
computes each full-size stage as one OpenCV pass into them, the weights
and the `-1 / error_scale_m` of the exponent folded into the sums (BENCHMARKS.md, "The
confidence map's cost"). The module functions build a fresh estimator per call.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from depth_sr_ros.core.resample import disc_kernel, fill_holes, resample_to_grid

# Largest radius whose disc max/min is one morphology pass by the disc kernel; larger discs go by
# rectangles (`_disc_corners`), whose cost grows with the radius instead of its square
# (one dilation of 640x480 float32, ms: radius 3 disc 0.32 / rectangles 0.38; 6: 1.13 / 0.76;
# 12: 4.17 / 1.50; identical results).
DISC_KERNEL_MAX_RADIUS = 4


@dataclass(frozen=True)
class ConfidenceConfig:
    """Weights of the predicted-error cues (see the module docstring) and the confidence scale.

    range_weight: metres of predicted error per metre of local depth range.
    range_radius_lr: radius of the local-range disc in input (grid) pixels; output pixels =
        round(range_radius_lr * scale), at least 1.
    noise_m_per_m2: predicted noise, metres per squared metre of depth.
    invalid_rel: predicted error at an invalid input pixel, as a fraction of the depth.
    invalid_decay_px: output pixels over which that error decays (e-fold) away from the pixel.
    error_scale_m: predicted error (metres) at which confidence is exp(-1).
    """

    range_weight: float = 2.0
    range_radius_lr: float = 0.75
    noise_m_per_m2: float = 0.01
    invalid_rel: float = 0.01
    invalid_decay_px: float = 4.0
    error_scale_m: float = 0.05

    def __post_init__(self) -> None:
        for name in ("range_weight", "range_radius_lr", "noise_m_per_m2", "invalid_rel"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.invalid_decay_px <= 0 or self.error_scale_m <= 0:
            raise ValueError("invalid_decay_px and error_scale_m must be > 0")


class ConfidenceEstimator:
    """Predicted error and confidence maps of a stream's frames (the module docstring's), reusing
    six float32 working arrays of the output's size (the padded one: grid x scale) between calls.

    One estimator per stream: a lock serialises calls from several threads. Arguments of every
    method: `depth_hr` H x W output depth in metres (RGB optical frame), NaN invalid, covering at
    most `filled_lr`'s grid times `scale` (the pipeline crops the padded grid back to the RGB
    size); `filled_lr` h x w input depth on the model grid, metres, holes filled (NaN-free);
    `valid_lr` h x w bool, False where the input was invalid (filled).
    """

    def __init__(self, config: ConfidenceConfig | None = None) -> None:
        self.config = config if config is not None else ConfidenceConfig()
        self._scratch: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def confidence(self, depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray,
                   scale: int) -> np.ndarray:
        """Confidence in [0, 1] (a new H x W float32 array): `exp(-sigma / error_scale_m)`, 0 where
        the depth is invalid."""
        with self._lock:
            exponent, finite = self._scaled_error(depth_hr, filled_lr, valid_lr, scale,
                                                  -1.0 / self.config.error_scale_m)
            confidence = cv2.exp(exponent)
            if not finite:
                confidence = cv2.patchNaNs(confidence, 0.0)  # NaN depth, and so NaN sigma
            return confidence

    def predicted_error(self, depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray,
                        scale: int) -> np.ndarray:
        """Predicted absolute error `sigma` (metres, a new H x W float32 array); NaN where the
        depth is not finite."""
        with self._lock:
            return self._scaled_error(depth_hr, filled_lr, valid_lr, scale, 1.0)[0].copy()

    def input_confidence(self, depth_hr: np.ndarray, depth_in: np.ndarray, scale: int, min_depth: float,
                         max_depth: float) -> np.ndarray:
        """`confidence` from the pipeline's own input: `depth_in` (metres, NaN invalid, registered
        to the RGB camera, any size of its aspect ratio) is brought to the model grid of the output
        and its holes filled as `DepthSR.process` does (`core/resample.py`); valid input is depth in
        [`min_depth`, `max_depth`] (`SRConfig`'s). All zeros when no input pixel is valid. (The
        pipeline's result carries its own filled grid and mask: `SRResult.filled_lr`, `valid_lr`.)
        """
        grid = resample_to_grid(np.asarray(depth_in, dtype=np.float32), depth_hr.shape, scale)
        with np.errstate(invalid="ignore"):
            valid = (grid >= min_depth) & (grid <= max_depth)  # False for NaN and inf
        if not valid.any():
            return np.zeros(depth_hr.shape, dtype=np.float32)
        return self.confidence(depth_hr, fill_holes(grid, valid), valid, scale)

    def _scaled_error(self, depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray, scale: int,
                      factor: float) -> tuple[np.ndarray, bool]:
        """`factor * sigma` in a working array (valid until the next call), and whether the depth
        was all finite. Each cue is added by one OpenCV pass, its weight times `factor` folded in:
        `factor * (|depth - smooth| + range_weight * range) + depth * (factor * noise * depth +
        factor * invalid_rel * nearness)`."""
        height, width = depth_hr.shape
        grid_h, grid_w = filled_lr.shape
        if filled_lr.shape != valid_lr.shape or height > grid_h * scale or width > grid_w * scale:
            raise ValueError(
                f"output {depth_hr.shape} does not fit the input grid {filled_lr.shape} x{scale} "
                f"(validity {valid_lr.shape})"
            )
        config = self.config
        depth = np.ascontiguousarray(depth_hr, dtype=np.float32)
        finite = _all_finite(depth)
        if not finite and _has_inf(depth):  # +-inf: invalid like NaN, to every cue
            depth = np.where(np.isinf(depth), np.float32(np.nan), depth)
        sigma = self._buffer("sigma", (height, width))
        smooth = self._upsampled(filled_lr, scale, cv2.INTER_CUBIC, (height, width))
        sigma = cv2.absdiff(depth, smooth, dst=sigma)
        if config.range_weight:
            spread = self._local_range(depth, _range_radius(config, scale), finite)
            sigma = cv2.addWeighted(sigma, factor, spread, factor * config.range_weight, 0.0, dst=sigma)
        elif factor != 1.0:
            np.multiply(sigma, np.float32(factor), out=sigma)
        per_metre = self._per_metre(depth, valid_lr, scale, factor)
        if per_metre is not None:
            cv2.accumulateProduct(depth, per_metre, sigma)
        return sigma, finite

    def _local_range(self, depth: np.ndarray, radius: int, finite: bool) -> np.ndarray:
        """max - min of the valid depth within a disc of `radius` pixels, in a working array; -inf
        where the disc holds no valid depth (only over invalid depth, where sigma is NaN anyway)."""
        # Invalid pixels are -inf to the max and +inf to the min, so they widen no window's range.
        high = self._disc_extreme(depth if finite else self._nan_as(depth, -np.inf), radius, "high")
        low = self._disc_extreme(depth if finite else self._nan_as(depth, np.inf), radius, "low")
        return cv2.subtract(high, low, dst=high)

    def _disc_extreme(self, values: np.ndarray, radius: int, name: str) -> np.ndarray:
        """Max ("high") or min ("low") of `values` within a disc of `radius` pixels (edge pixels
        replicated beyond the border), into the working array `name`. Beyond
        `DISC_KERNEL_MAX_RADIUS`, as the extreme over the disc's rectangles (`_disc_corners`),
        taken together: walking the corners from the tallest to the widest, the rows' extreme
        widens step by step while the running result grows taller by the step in height
        (extremes over a window compose: `|dy| <= a` then `|dy| <= b` is `|dy| <= a + b`)."""
        morph, combine = (cv2.dilate, cv2.max) if name == "high" else (cv2.erode, cv2.min)
        out = self._buffer(name, values.shape)
        if radius <= DISC_KERNEL_MAX_RADIUS:
            return morph(values, disc_kernel(radius), dst=out, borderType=cv2.BORDER_REPLICATE)
        rows = self._buffer("rows", values.shape)
        corners = _disc_corners(radius)
        widened, result = values, values
        height, width = corners[0]
        for next_height, next_width in corners[1:]:
            widened = morph(widened, _line_kernel(1, 2 * (next_width - width) + 1), dst=rows,
                            borderType=cv2.BORDER_REPLICATE)
            result = morph(result, _line_kernel(2 * (height - next_height) + 1, 1), dst=out,
                           borderType=cv2.BORDER_REPLICATE)
            result = combine(result, widened, dst=out)
            height, width = next_height, next_width
        return result  # the last corner is (0, radius): nothing left to grow

    def _per_metre(self, depth: np.ndarray, valid_lr: np.ndarray, scale: int, factor: float) -> np.ndarray | None:
        """`factor * (noise_m_per_m2 * depth + invalid_rel * nearness)`: the noise and input
        validity cues divided by the depth, in a working array; None when both are 0."""
        config = self.config
        noise = factor * config.noise_m_per_m2
        out = self._buffer("low", depth.shape)  # the range's minimum is spent by now
        if config.invalid_rel and not valid_lr.all():
            near = _nearness_grid(valid_lr, scale, config.invalid_decay_px)
            near_hr = self._upsampled(near, scale, cv2.INTER_NEAREST, depth.shape)
            return cv2.addWeighted(depth, noise, near_hr, factor * config.invalid_rel, 0.0, dst=out)
        if noise:
            return np.multiply(depth, np.float32(noise), out=out)
        return None

    def _upsampled(self, grid: np.ndarray, scale: int, interpolation: int, size: tuple[int, ...]) -> np.ndarray:
        """`grid` resized by `scale` with `interpolation` into the padded working array, cropped to
        `size` (a view)."""
        padded = self._buffer("padded", (grid.shape[0] * scale, grid.shape[1] * scale))
        padded = cv2.resize(np.ascontiguousarray(grid, dtype=np.float32), (padded.shape[1], padded.shape[0]),
                            dst=padded, interpolation=interpolation)
        return padded[: size[0], : size[1]]

    def _nan_as(self, depth: np.ndarray, value: float) -> np.ndarray:
        """`depth` with NaN replaced by `value`, in a working array."""
        work = self._buffer("work", depth.shape)
        np.copyto(work, depth)
        return cv2.patchNaNs(work, value)

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The working array `name` of `shape` (float32), reallocated when the shape changes."""
        buffer = self._scratch.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._scratch[name] = np.empty(shape, dtype=np.float32)
        return buffer


def predicted_error(depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray, scale: int,
                    config: ConfidenceConfig) -> np.ndarray:
    """Predicted absolute error (metres, H x W float32) of the output depth; NaN where it is NaN.
    Arguments as `ConfidenceEstimator`'s (one made for this call)."""
    return ConfidenceEstimator(config).predicted_error(depth_hr, filled_lr, valid_lr, scale)


def confidence_map(depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray, scale: int,
                   config: ConfidenceConfig | None = None) -> np.ndarray:
    """Confidence in [0, 1] (H x W float32) of the output depth: `exp(-sigma / error_scale_m)`
    with `sigma` from `predicted_error` (same arguments), and 0 where the depth is invalid."""
    return ConfidenceEstimator(config).confidence(depth_hr, filled_lr, valid_lr, scale)


def input_confidence(depth_hr: np.ndarray, depth_in: np.ndarray, scale: int, min_depth: float, max_depth: float,
                     config: ConfidenceConfig | None = None) -> np.ndarray:
    """`ConfidenceEstimator.input_confidence` with an estimator made for this call."""
    return ConfidenceEstimator(config).input_confidence(depth_hr, depth_in, scale, min_depth, max_depth)


def _range_radius(config: ConfidenceConfig, scale: int) -> int:
    return max(1, round(config.range_radius_lr * scale))


def _all_finite(values: np.ndarray) -> bool:
    """No NaN or inf, by two reductions (a NaN makes `min` NaN)."""
    return bool(np.isfinite(values.min()) and np.isfinite(values.max()))


@lru_cache(maxsize=16)
def _disc_corners(radius: int) -> tuple[tuple[int, int], ...]:
    """The disc of `disc_kernel(radius)` as a union of centred rectangles `|dy| <= k, |dx| <= w`:
    `(k, w)` for every row offset `k` whose half-width `w = isqrt(radius**2 - k**2)` exceeds the
    next row's (the others lie inside the next one), from `(radius, 0)` to `(0, radius)`."""
    half = [math.isqrt(radius * radius - k * k) for k in range(radius + 1)]
    return tuple((k, half[k]) for k in range(radius, -1, -1) if k == radius or half[k] > half[k + 1])


@lru_cache(maxsize=32)
def _line_kernel(height: int, width: int) -> np.ndarray:
    return np.ones((height, width), dtype=np.uint8)


def _has_inf(values: np.ndarray) -> bool:
    """Any +-inf, by two NaN-skipping reductions (no mask)."""
    return bool(np.isinf(np.fmax.reduce(values, axis=None)) or np.isinf(np.fmin.reduce(values, axis=None)))


def _nearness_grid(valid_lr: np.ndarray, scale: int, decay_px: float) -> np.ndarray:
    """`exp(-distance / decay_px)` at every input (grid) pixel, h x w float32, with `distance` the
    output pixels from it to the nearest invalid input pixel, `(grid distance - 0.5) * scale`
    (0 over an invalid pixel itself); upsampled by nearest, constant over each pixel's footprint."""
    grid = cv2.distanceTransform(valid_lr.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.exp(np.maximum(grid - np.float32(0.5), 0) * np.float32(-scale / decay_px))
