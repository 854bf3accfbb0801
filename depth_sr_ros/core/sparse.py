"""Sparse depth (LiDAR or registered ToF points) -> dense depth by normalised convolution.

Normalised convolution (Knutsson & Westin, CVPR 1993) estimates a signal from samples with a
certainty: with applicability `a` (here a Gaussian), signal `d` and certainty `c` (1 where a
point landed, 0 elsewhere),

    d_hat = (a * (c d)) / (a * c),        c_hat = a * c

where `*` is convolution. `c_hat` is the local density of samples and says how far the estimate
can be trusted. Two additions make it fit depth behind an RGB camera:

- RGB guidance ("joint bilateral" applicability): the weight of a sample also falls with the
  difference between the guide intensity of its footprint and the output pixel's, so depth does
  not bleed across colour edges. It is computed the bilateral-grid way (Durand & Dorsey 2002;
  Chen et al. 2007): the guide range is cut into `levels` intensities; per level the samples'
  certainty is weighted by a Gaussian of their guide's distance to that level, both sums are
  blurred on the samples' own grid, and each output pixel (at the guide's resolution, which may
  be finer) interpolates bilinearly in space and linearly between the two levels around its own
  intensity. No loop over pixels or points.
- Several spatial scales: an output pixel takes the finest scale whose certainty reaches
  `min_certainty`, so dense areas stay sharp while ring gaps are bridged by wider kernels.

`densify(depth, valid, guide)` fills holes at the working resolution (the densify step before
any backbone, see docs/lidar.md); the "normalized_conv" classic backbone upsamples sparse depth
to the RGB resolution with the full-resolution RGB as guide, using only measured pixels
(`valid_lr`), never the pipeline's nearest-filled values.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_sr_ros.core.backbones import register_backbone
from depth_sr_ros.core.classic import grey_guide


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """cv2.resize to `size = (h, w)` keeping a trailing channel axis of any length."""
    if image.shape[:2] == size:
        return image
    out = cv2.resize(image, (size[1], size[0]), interpolation=interpolation)
    return out.reshape(*size, *image.shape[2:])


class _BilateralGrid:
    """The sums normalised convolution blurs, on the samples' grid, one pair per guide level.

    Channels `[0, L)` hold certainty * depth, `[L, 2L)` certainty, each weighted by the range
    Gaussian of its level (L = 1 without a guide). The range weight of a sample is the mean over
    its footprint in the guide (the guide may be an integer factor finer than the samples): the
    guide pixels are splatted linearly onto the two nearest levels, averaged per footprint and
    blurred across levels by `sigma_range`. `slice` reads the blurred grid back at any
    resolution: bilinear in space, linear between the two levels around each pixel's own guide
    intensity (the bilateral grid's trilinear slice).
    """

    def __init__(self, depth: np.ndarray, certainty: np.ndarray, guide: np.ndarray | None,
                 sigma_range: float, levels: int) -> None:
        certainty = certainty.astype(np.float32)
        weighted = certainty * np.where(certainty > 0, depth, 0).astype(np.float32)
        self.guide = None if guide is None else np.clip(guide.astype(np.float32), 0.0, 1.0)
        if self.guide is None:
            self.levels = 1
            self.sums = np.stack([weighted, certainty], axis=-1)
            return
        self.levels = levels
        range_weight = self._range_weights(self.guide, depth.shape, sigma_range)
        self.sums = np.concatenate([range_weight * weighted[..., None], range_weight * certainty[..., None]], axis=-1)

    def _level_coordinates(self, guide: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: the level just below its intensity, and its fraction of the way up."""
        position = guide * np.float32(self.levels - 1)
        lower = np.minimum(position.astype(np.int64), self.levels - 2)
        return lower, position - lower

    def _range_weights(self, guide: np.ndarray, shape: tuple[int, int], sigma_range: float) -> np.ndarray:
        (height, width), (h, w) = guide.shape, shape
        if height % h or width % w:
            raise ValueError(f"guide {width}x{height} is not an integer multiple of the samples' {w}x{h}")
        lower, upper = self._level_coordinates(guide)
        cell = (np.arange(height) // (height // h))[:, None] * w + (np.arange(width) // (width // w))[None, :]
        index = (cell * self.levels + lower).ravel()
        size = h * w * self.levels
        splat = np.bincount(index, weights=(1 - upper).ravel(), minlength=size)
        splat += np.bincount(index + 1, weights=upper.ravel(), minlength=size)
        splat = splat.reshape(h, w, self.levels) / ((height // h) * (width // w))
        steps = np.arange(self.levels)
        spread = sigma_range * (self.levels - 1)
        across_levels = np.exp(-0.5 * ((steps[:, None] - steps[None, :]) / spread) ** 2)
        return (splat @ across_levels).astype(np.float32)

    def blur(self, sigma: float) -> np.ndarray:
        """The sums convolved with a Gaussian applicability of `sigma` grid pixels (zero outside);
        wide kernels run on a grid coarsened to about two pixels per sigma."""
        factor = max(1, int(sigma // 2))
        h, w = self.sums.shape[:2]
        small = _resize(self.sums, (-(-h // factor), -(-w // factor)), cv2.INTER_AREA)
        blurred = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_CONSTANT)
        return _resize(blurred.reshape(small.shape), (h, w), cv2.INTER_LINEAR)

    def slice(self, sums: np.ndarray, guide: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(numerator, denominator) at the resolution of `guide` (or of the grid, unguided)."""
        if guide is None:
            return sums[..., 0], sums[..., 1]
        up = _resize(sums, guide.shape, cv2.INTER_LINEAR).reshape(-1)
        lower, upper = self._level_coordinates(guide)
        below = np.arange(guide.size) * (2 * self.levels) + lower.ravel()
        upper = upper.ravel()
        numerator = up[below] + upper * (up[below + 1] - up[below])
        below += self.levels
        denominator = up[below] + upper * (up[below + 1] - up[below])
        return numerator.reshape(guide.shape), denominator.reshape(guide.shape)


def normalized_convolution(
    depth: np.ndarray,
    certainty: np.ndarray,
    sigmas: tuple[float, ...],
    min_certainty: float,
    guide: np.ndarray | None = None,
    sigma_range: float = 0.2,
    levels: int = 8,
) -> np.ndarray:
    """Multi-scale, optionally guided, normalised convolution; output at the guide's resolution.

    depth, certainty: h x w samples and their certainty in [0, 1] (depth ignored where it is 0);
    sigmas: Gaussian applicabilities in sample pixels; guide: H x W intensity in [0, 1] (H, W
    multiples of h, w: the guide may be finer than the samples), or None for the plain form
    (output h x w); sigma_range: guide-intensity Gaussian; levels: guide levels of the bilateral
    grid. The scale is chosen per sample pixel: the finest whose certainty (sliced with the
    guide's mean over the pixel) reaches `min_certainty`, else the coarsest. Returns float32,
    NaN only where no sample has any weight.
    """
    grid = _BilateralGrid(depth, certainty, guide, sigma_range, levels)
    coarse_guide = None if grid.guide is None else _resize(grid.guide, depth.shape, cv2.INTER_AREA)
    chosen = np.zeros_like(grid.sums)
    pending = np.ones(depth.shape, dtype=bool)
    ordered = sorted(sigmas)
    for i, sigma in enumerate(ordered):
        sums = grid.blur(sigma)
        take = pending
        if i < len(ordered) - 1:
            take = pending & (grid.slice(sums, coarse_guide)[1] >= min_certainty)
        chosen[take] = sums[take]
        pending = pending & ~take
        if not pending.any():
            break
    numerator, denominator = grid.slice(chosen, grid.guide)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(denominator > 1e-12, numerator / denominator, np.nan)
    return estimate.astype(np.float32)


@dataclass
class NormalizedConvConfig:
    """Parameters of the sparse fill; spatial sigmas are in *working-resolution* pixels.

    sigmas: applicability scales (1 px keeps dense ToF sharp; 4-8 px bridge the ring gaps of a
        32-beam LiDAR seen by a 640 x 480 camera at scale 4, about 4 working pixels apart).
    min_certainty: the local sample density (0..1, weighted by guide similarity) a scale needs.
    guided: weight samples by RGB (grey) similarity; False gives plain normalised convolution.
    sigma_range: grey-level Gaussian (grey in [0, 1]); levels: bilateral-grid grey levels.
    The defaults were picked by a small grid search on simulated 32-ring scans of 6 real frames
    (TUM fr1 00-02, NYU 1000-1002 in ../shared/data) at scale 4 (docs/lidar.md), not per scene.
    """

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    min_certainty: float = 0.02
    guided: bool = True
    sigma_range: float = 0.2
    levels: int = 8


def densify(depth: np.ndarray, valid: np.ndarray, rgb: np.ndarray | None = None,
            config: NormalizedConvConfig | None = None) -> np.ndarray:
    """Fill the holes of sparse depth at its own (working) resolution; measured pixels are kept.

    depth: h x w float32 metres (values where `valid` is False are ignored); valid: h x w bool;
    rgb: the guide, H x W x 3 uint8 of any size (area-resized to h x w), or None for the plain
    form. Returns h x w float32 metres, NaN only where no sample has any weight.
    """
    config = config or NormalizedConvConfig()
    guide = None
    if rgb is not None and config.guided:
        small = cv2.resize(np.ascontiguousarray(rgb), (depth.shape[1], depth.shape[0]), interpolation=cv2.INTER_AREA)
        guide = grey_guide(small)
    filled = normalized_convolution(
        depth, valid.astype(np.float32), config.sigmas, config.min_certainty, guide, config.sigma_range,
        config.levels,
    )
    filled[valid] = depth[valid]
    return filled


@register_backbone(
    "normalized_conv",
    kind="classic",
    description="RGB-guided multi-scale normalised convolution (Knutsson & Westin), sparse-aware (LiDAR)",
)
@dataclass
class NormalizedConvUpsampler(NormalizedConvConfig):
    """Sparse-aware upsampler: only measured low-res pixels (`valid_lr`) are samples.

    Multi-scale normalised convolution of the low-res samples, sliced at the RGB resolution
    with the grey RGB image as guide: each output pixel weighs the samples by distance (sigmas
    in low-res pixels, `NormalizedConvConfig`) and by how close the grey level of the sample's
    footprint is to its own, so edges follow the image. Where no sample reaches, the pipeline's
    filled low-res depth is returned (its hole policy then decides). Needs H = h * scale,
    W = w * scale.
    """

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        h, w = depth_lr.shape
        if rgb.shape[:2] != (h * scale, w * scale):
            raise ValueError(f"normalized_conv needs RGB of {h * scale}x{w * scale} for {h}x{w} depth at x{scale}")
        guide = grey_guide(rgb) if self.guided else None
        dense = normalized_convolution(depth_lr, valid_lr.astype(np.float32), self.sigmas, self.min_certainty,
                                       guide, self.sigma_range, self.levels)
        if guide is None:  # the plain form answers on the samples' grid
            dense = _resize(dense, rgb.shape[:2], cv2.INTER_LINEAR)
        unreached = ~np.isfinite(dense)
        if unreached.any():
            dense[unreached] = _resize(depth_lr.astype(np.float32), rgb.shape[:2], cv2.INTER_NEAREST)[unreached]
        return dense
