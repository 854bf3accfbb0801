"""Classic RGB-guided upsamplers that need no weights, registered as "classic" backbones.

Each backbone object has `upsample(rgb, depth_lr, valid_lr, scale) -> depth_hr`:
    rgb:      H x W x 3 uint8, the guide
    depth_lr: h x w float32, NaN-free (holes already filled by the pipeline), any unit
    valid_lr: h x w bool, True where the depth was measured (False = filled hole)
    returns:  H x W float32 in the unit of `depth_lr`
The pipeline passes `H = h * scale`, `W = w * scale`; other sizes are resized to `H x W` as well.
They are unit-agnostic: where a parameter depends on the depth's magnitude (the guided filter's
eps), depth is normalised internally by the valid input's min and max.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_sr_ros.core.backbones import register_backbone
from depth_sr_ros.core.resample import denormalise, normalise, pil_resize

# (radius in high-res pixels, eps on depth and guide in [0, 1]) per scale. x4, x8 and x16 are the
# values of the gdsr protocol's guided-filter baseline (PROTOCOL.md). x2 is not in the protocol: we
# keep the x4 radius (radius grows about linearly with scale, and 1 is the smallest window) and
# its eps, since at x2 the bicubic input is already sharp and a larger eps would only blur it.
GUIDED_FILTER_DEFAULTS: dict[int, tuple[int, float]] = {2: (1, 3e-5), 4: (1, 3e-5), 8: (2, 1e-4), 16: (5, 1e-4)}

# Floor of the joint bilateral range-kernel exponent (see JointBilateralUpsampler).
_MIN_RANGE_EXPONENT = np.float32(-60.0)


def grey_guide(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB uint8 image as float32 in [0, 1] (OpenCV's RGB2GRAY weights)."""
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) / 255.0


def _box_mean(image: np.ndarray, radius: int, count: np.ndarray) -> np.ndarray:
    """Mean over the (2r+1)^2 window, truncated at the image border (He et al.'s `boxfilter / N`)."""
    window = (2 * radius + 1, 2 * radius + 1)
    total = cv2.boxFilter(image, -1, window, normalize=False, borderType=cv2.BORDER_CONSTANT)
    if total.ndim == 3:
        return total / count[..., None]
    return total / count


def _window_count(shape: tuple[int, ...], radius: int) -> np.ndarray:
    """Number of in-image pixels in each pixel's truncated window."""
    def counts(n: int) -> np.ndarray:
        i = np.arange(n)
        return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(np.float64)

    return np.outer(counts(shape[0]), counts(shape[1]))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (ECCV 2010 / TPAMI 2013), O(N) with box filters, float64.

    guide: H x W (grey) or H x W x 3 (colour) in [0, 1]; src: H x W. Windows are truncated at the
    border, as in the authors' reference code. Returns H x W float64.
    """
    guide = guide.astype(np.float64)
    src = src.astype(np.float64)
    count = _window_count(src.shape, radius)
    mean_p = _box_mean(src, radius, count)
    mean_i = _box_mean(guide, radius, count)
    if guide.ndim == 2:
        cov_ip = _box_mean(guide * src, radius, count) - mean_i * mean_p
        var_i = _box_mean(guide * guide, radius, count) - mean_i * mean_i
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return _box_mean(a, radius, count) * guide + _box_mean(b, radius, count)
    cov_ip = _box_mean(guide * src[..., None], radius, count) - mean_i * mean_p[..., None]
    outer = guide[..., :, None] * guide[..., None, :]
    sigma = _box_mean(outer.reshape(*src.shape, 9), radius, count).reshape(*src.shape, 3, 3)
    sigma -= mean_i[..., :, None] * mean_i[..., None, :]
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - np.einsum("...c,...c->...", a, mean_i)
    return np.einsum("...c,...c->...", _box_mean(a, radius, count), guide) + _box_mean(b, radius, count)


def _check_scale(rgb: np.ndarray, depth_lr: np.ndarray) -> tuple[int, int]:
    if rgb.ndim != 3 or depth_lr.ndim != 2:
        raise ValueError(f"expected H x W x 3 RGB and h x w depth, got {rgb.shape} and {depth_lr.shape}")
    return rgb.shape[0], rgb.shape[1]


@register_backbone("bicubic", kind="classic", description="PIL bicubic upsampling (the gdsr baseline)")
@dataclass
class BicubicUpsampler:
    """PIL's antialiased bicubic resize of the depth to the RGB size; ignores the guide."""

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        height, width = _check_scale(rgb, depth_lr)
        return pil_resize(depth_lr, (width, height), "bicubic")


@register_backbone(
    "guided_filter",
    kind="classic",
    description="He et al. guided filter on the bicubic-upsampled depth, RGB (grey) guide",
)
@dataclass
class GuidedFilterUpsampler:
    """Bicubic upsampling, then He et al.'s guided filter with the RGB image as guide.

    radius (high-res pixels) and eps (on depth normalised to [0, 1] by the valid input's min/max
    and a guide in [0, 1]) default per scale to `GUIDED_FILTER_DEFAULTS`. `colour_guide` uses the
    three RGB channels (He et al.'s colour variant) in place of the grey guide.
    """

    radius: int | None = None
    eps: float | None = None
    colour_guide: bool = False

    def parameters(self, scale: int) -> tuple[int, float]:
        """(radius, eps) for `scale`: the given values, else the nearest tabulated scale's."""
        nearest = min(GUIDED_FILTER_DEFAULTS, key=lambda s: abs(np.log2(s) - np.log2(scale)))
        radius, eps = GUIDED_FILTER_DEFAULTS[nearest]
        return (self.radius if self.radius is not None else radius, self.eps if self.eps is not None else eps)

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        height, width = _check_scale(rgb, depth_lr)
        norm, lo, hi = normalise(depth_lr, valid_lr)
        upsampled = pil_resize(norm, (width, height), "bicubic")
        guide = rgb.astype(np.float64) / 255.0 if self.colour_guide else grey_guide(rgb)
        radius, eps = self.parameters(scale)
        filtered = guided_filter(guide, upsampled, radius, eps).astype(np.float32)
        return denormalise(filtered, lo, hi)


@register_backbone(
    "joint_bilateral",
    kind="classic",
    description="Joint bilateral upsampling (Kopf et al. 2007), spatial + RGB range kernel",
)
@dataclass
class JointBilateralUpsampler:
    """Joint bilateral upsampling (Kopf et al., SIGGRAPH 2007).

    Each high-res pixel p averages the low-res depths D(q) of the (2*radius+1)^2 low-res pixels
    around it, weighted by a Gaussian of the distance between p and q on the low-res grid
    (sigma_spatial, low-res pixels) times a Gaussian of the RGB distance between p's colour and
    q's colour (sigma_range, on RGB in [0, 1]; q's colour is the mean colour of its high-res
    footprint). Filled holes (valid_lr False) weigh `hole_weight` times less than measured depth.
    The range weight is floored at exp(-60) so that a pixel unlike all its neighbours falls back to
    the spatial weights instead of 0 / 0 in float32.
    Vectorised: the loop runs over the window offsets only.
    """

    radius: int = 2
    sigma_spatial: float = 1.0
    sigma_range: float = 0.1
    hole_weight: float = 1e-3

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        height, width = _check_scale(rgb, depth_lr)
        h, w = depth_lr.shape
        guide = rgb.astype(np.float32) / 255.0
        guide_lr = cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA)
        # Each high-res pixel centre on the low-res grid, and its nearest low-res pixel.
        y_lr = (np.arange(height, dtype=np.float32) + 0.5) * (h / height) - 0.5
        x_lr = (np.arange(width, dtype=np.float32) + 0.5) * (w / width) - 0.5
        y_near = np.rint(y_lr).astype(np.intp)
        x_near = np.rint(x_lr).astype(np.intp)
        confidence = np.where(valid_lr, np.float32(1.0), np.float32(self.hole_weight))
        range_scale = np.float32(-0.5 / self.sigma_range**2)
        total = np.zeros((height, width), dtype=np.float32)
        weight_sum = np.zeros((height, width), dtype=np.float32)
        for dy in range(-self.radius, self.radius + 1):
            rows = np.clip(y_near + dy, 0, h - 1)
            wy = np.exp(-0.5 * ((rows - y_lr) / self.sigma_spatial) ** 2).astype(np.float32)
            for dx in range(-self.radius, self.radius + 1):
                cols = np.clip(x_near + dx, 0, w - 1)
                wx = np.exp(-0.5 * ((cols - x_lr) / self.sigma_spatial) ** 2).astype(np.float32)
                index = np.ix_(rows, cols)
                colour_diff = guide - guide_lr[index]
                exponent = range_scale * np.einsum("ijc,ijc->ij", colour_diff, colour_diff)
                weight = np.exp(np.maximum(exponent, _MIN_RANGE_EXPONENT))
                weight *= wy[:, None] * wx[None, :] * confidence[index]
                total += weight * depth_lr[index]
                weight_sum += weight
        return total / weight_sum
