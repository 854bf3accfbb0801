"""Sparse depth (LiDAR or registered ToF points) -> dense depth by normalised convolution.

Normalised convolution (Knutsson & Westin, CVPR 1993) estimates a signal from samples with a
certainty: with applicability `a` (here a Gaussian), signal `d` and certainty `c` (1 where a
point landed, 0 elsewhere),

    d_hat = (a * (c d)) / (a * c),        c_hat = a * c

where `*` is convolution. `c_hat` is the local density of samples and says how far the estimate
can be trusted. Two additions make it fit depth behind an RGB camera:

- RGB guidance ("joint bilateral" applicability): the weight of a sample also falls with the
  difference between its guide intensity and the output pixel's, so depth does not bleed across
  colour edges. It is computed the bilateral-grid way (Durand & Dorsey 2002; Chen et al. 2007):
  the guide range is cut into `levels` intensities; per level the certainty is weighted by a
  Gaussian of the guide's distance to that level, both sums are blurred (on a grid coarsened to
  about two pixels per sigma), and each output pixel interpolates the two levels around its own
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


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, zero outside the image; coarsened to ~2 px per sigma for wide kernels."""
    factor = max(1, int(sigma // 2))
    if factor == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    h, w = image.shape[:2]
    small_size = (max(1, -(-w // factor)), max(1, -(-h // factor)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_CONSTANT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class _Layers:
    """The sums normalised convolution blurs: (certainty * depth, certainty), one pair per guide
    level (each weighted by the level's range Gaussian), with each pixel's share of each level.
    Built once per frame and blurred at every scale."""

    def __init__(self, depth: np.ndarray, certainty: np.ndarray, guide: np.ndarray | None,
                 sigma_range: float, levels: int) -> None:
        certainty = certainty.astype(np.float32)
        weighted = certainty * np.where(certainty > 0, depth, 0).astype(np.float32)
        if guide is None:
            self.pairs = [(weighted, certainty)]
            self.shares: list[np.ndarray | None] = [None]
            return
        guide = np.clip(guide.astype(np.float32), 0.0, 1.0)
        position = guide * (levels - 1)  # each pixel's place between the levels
        lower = np.minimum(np.floor(position).astype(np.int32), levels - 2)
        upper_weight = position - lower
        self.pairs, self.shares = [], []
        for level in range(levels):
            range_weight = np.exp(-0.5 * ((guide - level / (levels - 1)) / sigma_range) ** 2).astype(np.float32)
            self.pairs.append((weighted * range_weight, certainty * range_weight))
            # hat interpolation between the two levels around the pixel's own intensity
            share = np.where(lower == level, 1 - upper_weight, 0) + np.where(lower + 1 == level, upper_weight, 0)
            self.shares.append(share.astype(np.float32))

    def convolve(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """(estimate, output certainty) at applicability `sigma`; estimate NaN where certainty is 0."""
        numerator = np.zeros(self.pairs[0][0].shape, dtype=np.float32)
        denominator = np.zeros_like(numerator)
        for (weighted, certainty), share in zip(self.pairs, self.shares):
            level_num, level_den = _blur(weighted, sigma), _blur(certainty, sigma)
            numerator += level_num if share is None else share * level_num
            denominator += level_den if share is None else share * level_den
        with np.errstate(invalid="ignore", divide="ignore"):
            estimate = np.where(denominator > 1e-12, numerator / denominator, np.nan)
        return estimate.astype(np.float32), denominator


def normalized_convolution(
    depth: np.ndarray,
    certainty: np.ndarray,
    sigmas: tuple[float, ...],
    min_certainty: float,
    guide: np.ndarray | None = None,
    sigma_range: float = 0.2,
    levels: int = 8,
) -> np.ndarray:
    """Multi-scale, optionally guided, normalised convolution.

    depth: h x w float32 (ignored where certainty is 0); certainty: h x w in [0, 1]; sigmas:
    Gaussian applicabilities in pixels; guide: h x w intensity in [0, 1], or None for the plain
    (unguided) form; sigma_range: guide-intensity Gaussian; levels: guide levels of the
    bilateral grid. Each pixel takes the finest scale whose output certainty reaches
    `min_certainty`, else the coarsest scale's estimate. Returns h x w float32, NaN only where
    no sample has any weight.
    """
    layers = _Layers(depth, certainty, guide, sigma_range, levels)
    result = np.full(depth.shape, np.nan, dtype=np.float32)
    pending = np.ones(depth.shape, dtype=bool)
    ordered = sorted(sigmas)
    for i, sigma in enumerate(ordered):
        estimate, confidence = layers.convolve(sigma)
        take = pending & np.isfinite(estimate)
        if i < len(ordered) - 1:
            take &= confidence >= min_certainty
        result[take] = estimate[take]
        pending &= ~take
        if not pending.any():
            break
    return result


@dataclass
class NormalizedConvConfig:
    """Parameters of the sparse fill; spatial sigmas are in *working-resolution* pixels.

    sigmas: applicability scales (1 px keeps dense ToF sharp; 4-8 px bridge the ring gaps of a
        32-beam LiDAR seen by a 640 x 480 camera at scale 4, about 4 working pixels apart).
    min_certainty: the local sample density (0..1, weighted by guide similarity) a scale needs.
    guided: weight samples by RGB (grey) similarity; False gives plain normalised convolution.
    sigma_range: grey-level Gaussian (grey in [0, 1]); levels: bilateral-grid grey levels.
    The defaults were picked on simulated 32-ring scans of the 7 TUM/NYU frames in
    ../shared/data at scale 4 (docs/lidar.md); they are not tuned per scene.
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

    Each measured low-res pixel becomes a `scale x scale` block of certainty on the RGB grid
    (its footprint), then multi-scale normalised convolution runs at the RGB resolution with the
    grey RGB image as guide. Parameters are `NormalizedConvConfig`'s; sigmas are in low-res
    pixels and multiplied by `scale`. Where no sample reaches, the pipeline's filled low-res
    depth is returned (its hole policy then decides). Needs H = h * scale, W = w * scale.
    """

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        h, w = depth_lr.shape
        if rgb.shape[:2] != (h * scale, w * scale):
            raise ValueError(f"normalized_conv needs RGB of {h * scale}x{w * scale} for {h}x{w} depth at x{scale}")
        block = np.ones((scale, scale), dtype=np.float32)
        certainty = np.kron(valid_lr.astype(np.float32), block)
        depth = np.kron(np.where(valid_lr, depth_lr, 0).astype(np.float32), block)
        guide = grey_guide(rgb) if self.guided else None
        sigmas = tuple(s * scale for s in self.sigmas)
        dense = normalized_convolution(
            depth, certainty, sigmas, self.min_certainty, guide, self.sigma_range, self.levels
        )
        unreached = ~np.isfinite(dense)
        if unreached.any():
            dense[unreached] = np.kron(depth_lr.astype(np.float32), block)[unreached]
        return dense
