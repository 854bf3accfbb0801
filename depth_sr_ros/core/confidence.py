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
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_sr_ros.core.resample import disc_kernel, fill_holes, resample_to_grid


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


def predicted_error(depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray, scale: int,
                    config: ConfidenceConfig) -> np.ndarray:
    """Predicted absolute error (metres, H x W float32) of the output depth; NaN where it is NaN.

    depth_hr: H x W output depth in metres, NaN invalid, covering at most `filled_lr`'s grid
    times `scale` (the pipeline crops the padded grid back to the RGB size).
    filled_lr: h x w input depth on the model grid, metres, holes filled (NaN-free).
    valid_lr: h x w bool, False where the input was invalid (filled).
    """
    height, width = depth_hr.shape
    grid_h, grid_w = filled_lr.shape
    if filled_lr.shape != valid_lr.shape or height > grid_h * scale or width > grid_w * scale:
        raise ValueError(
            f"output {depth_hr.shape} does not fit the input grid {filled_lr.shape} x{scale} "
            f"(validity {valid_lr.shape})"
        )
    depth = depth_hr.astype(np.float32, copy=False)
    smooth = cv2.resize(np.ascontiguousarray(filled_lr, dtype=np.float32), (grid_w * scale, grid_h * scale),
                        interpolation=cv2.INTER_CUBIC)[:height, :width]
    sigma = np.subtract(depth, smooth)
    np.abs(sigma, out=sigma)
    if config.range_weight:
        spread = _local_range(depth, _range_radius(config, scale))
        spread *= np.float32(config.range_weight)
        sigma += spread
    if config.noise_m_per_m2:
        noise = np.square(depth)
        noise *= np.float32(config.noise_m_per_m2)
        sigma += noise
    if config.invalid_rel and not valid_lr.all():
        near = _nearness_to_invalid(valid_lr, scale, config.invalid_decay_px, (height, width))
        near *= depth
        near *= np.float32(config.invalid_rel)
        sigma += near
    return sigma


def confidence_map(depth_hr: np.ndarray, filled_lr: np.ndarray, valid_lr: np.ndarray, scale: int,
                   config: ConfidenceConfig | None = None) -> np.ndarray:
    """Confidence in [0, 1] (H x W float32) of the output depth: `exp(-sigma / error_scale_m)`
    with `sigma` from `predicted_error` (same arguments), and 0 where the depth is invalid."""
    config = config if config is not None else ConfidenceConfig()
    sigma = predicted_error(depth_hr, filled_lr, valid_lr, scale, config)
    sigma *= np.float32(-1.0 / config.error_scale_m)
    confidence = cv2.exp(sigma, dst=sigma)
    if not _all_finite(confidence):
        confidence[~np.isfinite(confidence)] = 0.0  # NaN depth (and so NaN sigma)
    return confidence


def input_confidence(depth_hr: np.ndarray, depth_in: np.ndarray, scale: int, min_depth: float, max_depth: float,
                     config: ConfidenceConfig | None = None) -> np.ndarray:
    """`confidence_map` from the pipeline's own input: `depth_in` (metres, NaN invalid, registered
    to the RGB camera, any size of its aspect ratio) is brought to the model grid of the output
    and its holes filled as `DepthSR.process` does (`core/resample.py`); valid input is depth in
    [`min_depth`, `max_depth`] (`SRConfig`'s). All zeros when no input pixel is valid.
    """
    grid = resample_to_grid(np.asarray(depth_in, dtype=np.float32), depth_hr.shape, scale)
    with np.errstate(invalid="ignore"):
        valid = (grid >= min_depth) & (grid <= max_depth)  # False for NaN and inf
    if not valid.any():
        return np.zeros(depth_hr.shape, dtype=np.float32)
    return confidence_map(depth_hr, fill_holes(grid, valid), valid, scale, config)


def _range_radius(config: ConfidenceConfig, scale: int) -> int:
    return max(1, round(config.range_radius_lr * scale))


def _local_range(depth: np.ndarray, radius: int) -> np.ndarray:
    """max - min of the valid depth within a disc of `radius` pixels (0 where there is none)."""
    kernel = disc_kernel(radius)
    if _all_finite(depth):
        spread = cv2.dilate(depth, kernel, borderType=cv2.BORDER_REPLICATE)
        return np.subtract(spread, cv2.erode(depth, kernel, borderType=cv2.BORDER_REPLICATE), out=spread)
    finite = np.isfinite(depth)
    # Invalid pixels are -inf to the max and +inf to the min, so they widen no window's range.
    high = cv2.dilate(np.where(finite, depth, np.float32(-np.inf)), kernel, borderType=cv2.BORDER_REPLICATE)
    low = cv2.erode(np.where(finite, depth, np.float32(np.inf)), kernel, borderType=cv2.BORDER_REPLICATE)
    spread = high - low
    spread[~np.isfinite(spread)] = 0.0  # no valid depth in the window
    return spread


def _all_finite(values: np.ndarray) -> bool:
    """No NaN or inf, by two reductions (a NaN makes `min` NaN)."""
    return bool(np.isfinite(values.min()) and np.isfinite(values.max()))


def _nearness_to_invalid(valid_lr: np.ndarray, scale: int, decay_px: float, size: tuple[int, int]) -> np.ndarray:
    """`exp(-distance / decay_px)` at every output pixel (H x W float32), with `distance` the output
    pixels from its input pixel to the nearest invalid input pixel, `(grid distance - 0.5) * scale`
    (0 over an invalid pixel itself), constant over each input pixel's footprint."""
    grid = cv2.distanceTransform(valid_lr.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near = np.exp(np.maximum(grid - np.float32(0.5), 0) * np.float32(-scale / decay_px))
    upsampled = cv2.resize(near, (valid_lr.shape[1] * scale, valid_lr.shape[0] * scale),
                           interpolation=cv2.INTER_NEAREST)
    return upsampled[: size[0], : size[1]]
