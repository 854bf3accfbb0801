"""Classic RGB-guided upsamplers that need no weights, registered as "classic" backbones.

Each backbone object has `upsample(rgb, depth_lr, valid_lr, scale) -> depth_hr`:
    rgb:      H x W x 3 uint8, the guide
    depth_lr: h x w float32, NaN-free (holes already filled by the pipeline), any unit
    valid_lr: h x w bool, True where the depth was measured (False = filled hole)
    returns:  H x W float32 in the unit of `depth_lr`
The pipeline passes `H = h * scale`, `W = w * scale`; bicubic and guided_filter resize to any
`H x W`, joint_bilateral needs exactly that.
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
_MIN_RANGE_EXPONENT = np.float32(-50.0)


def grey_guide(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's RGB2GRAY luma (ITU-R BT.601 weights, 8-bit) of an RGB uint8 image, float32 in [0, 1]."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1.0 / 255.0)


def _window_count(shape: tuple[int, ...], radius: int, dtype: type) -> np.ndarray:
    """Number of in-image pixels in each pixel's (2r+1)^2 window, truncated at the border."""

    def counts(n: int) -> np.ndarray:
        i = np.arange(n)
        return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(dtype)

    return np.outer(counts(shape[0]), counts(shape[1]))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (ECCV 2010 / TPAMI 2013), O(N) with box filters.

    guide: H x W (grey) or H x W x 3 (colour) in [0, 1]; src: H x W. Window means are truncated at
    the border (box sum / pixel count), as in the authors' reference code. The grey filter runs in
    float32 (ample for eps >= 1e-6 on [0, 1] data), the colour one in float64 because it inverts a
    3x3 covariance per pixel. Returns H x W in that dtype.
    """
    dtype = np.float32 if guide.ndim == 2 else np.float64
    guide = guide.astype(dtype, copy=False)
    src = src.astype(dtype, copy=False)
    count = _window_count(src.shape, radius, dtype)
    window = (2 * radius + 1, 2 * radius + 1)

    def mean(image: np.ndarray) -> np.ndarray:
        total = cv2.boxFilter(image, -1, window, normalize=False, borderType=cv2.BORDER_CONSTANT)
        return total / (count[..., None] if total.ndim == 3 else count)

    mean_p = mean(src)
    mean_i = mean(guide)
    if guide.ndim == 2:
        a = (mean(guide * src) - mean_i * mean_p) / (mean(guide * guide) - mean_i * mean_i + dtype(eps))
        b = mean_p - a * mean_i
        return mean(a) * guide + mean(b)
    cov_ip = mean(guide * src[..., None]) - mean_i * mean_p[..., None]
    outer = (guide[..., :, None] * guide[..., None, :]).reshape(*src.shape, 9)
    sigma = mean(outer).reshape(*src.shape, 3, 3) - mean_i[..., :, None] * mean_i[..., None, :]
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - np.einsum("...c,...c->...", a, mean_i)
    return np.einsum("...c,...c->...", mean(a), guide) + mean(b)


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
        guide = rgb * (1.0 / 255.0) if self.colour_guide else grey_guide(rgb)
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
    around the one it lies in, weighted by a Gaussian of the distance between p's centre and q on
    the low-res grid (sigma_spatial, low-res pixels) times a Gaussian of the RGB distance between
    p's colour and q's colour (sigma_range, on RGB in [0, 1]; q's colour is the mean colour of its
    high-res footprint). Beyond the border, q repeats the edge pixel. Filled holes (valid_lr
    False) weigh `hole_weight` times less than measured depth. The range weight is floored at
    exp(-50), so that a pixel unlike all its neighbours falls back to the spatial weights instead
    of 0 / 0 in float32. Needs H = h * scale and W = w * scale exactly (the pipeline pads to it).
    Vectorised: the loop runs over the window offsets only.

    Defaults: sigma_spatial 0.5 low-res pixels as in Kopf et al. (whose 5x5 window adds nothing
    at that sigma over the 3x3 one here, radius 1, on Middlebury scenes 01-14 at x4 and x8), and
    sigma_range 0.1, the best of 0.05 / 0.1 / 0.2 / 0.5 on those scenes at x4 (docs/pipeline.md).
    """

    radius: int = 1
    sigma_spatial: float = 0.5
    sigma_range: float = 0.1
    hole_weight: float = 1e-6

    def upsample(self, rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        height, width = _check_scale(rgb, depth_lr)
        h, w = depth_lr.shape
        s, r = scale, self.radius
        if (height, width) != (h * s, w * s):
            raise ValueError(f"joint_bilateral needs RGB of {h * s}x{w * s} for {h}x{w} depth at x{s}")
        guide = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
        guide_lr = cv2.resize(guide, (w, h), interpolation=cv2.INTER_AREA)  # footprint means
        guide_planes = [np.ascontiguousarray(guide[..., c]) for c in range(3)]
        confidence = np.where(valid_lr, np.float32(1.0), np.float32(self.hole_weight))
        # Low-res planes padded by edge repetition, so every window offset is a plain slice:
        # the guide's three channels, the confidence, and confidence * depth.
        lr_planes = [guide_lr[..., c] for c in range(3)] + [confidence, confidence * depth_lr.astype(np.float32)]
        lr_planes = [np.pad(plane, r, mode="edge") for plane in lr_planes]
        # Offset of each high-res pixel centre from the centre of its low-res pixel, in low-res pixels.
        sub = (np.arange(s, dtype=np.float32) + 0.5) / s - 0.5
        sub_y, sub_x = np.tile(sub, h), np.tile(sub, w)
        range_scale = np.float32(-0.5 / self.sigma_range**2)
        total = np.zeros((height, width), dtype=np.float32)
        weight_sum = np.zeros((height, width), dtype=np.float32)
        for dy in range(-r, r + 1):
            wy = np.exp(-0.5 * ((dy - sub_y) / self.sigma_spatial) ** 2)
            for dx in range(-r, r + 1):
                wx = np.exp(-0.5 * ((dx - sub_x) / self.sigma_spatial) ** 2)
                # Neighbour (dy, dx) of every high-res pixel's low-res pixel, repeated to full size.
                up = [
                    cv2.resize(plane[r + dy : r + dy + h, r + dx : r + dx + w], (width, height),
                               interpolation=cv2.INTER_NEAREST)
                    for plane in lr_planes
                ]
                exponent = np.zeros((height, width), dtype=np.float32)
                for channel, neighbour in zip(guide_planes, up[:3]):
                    diff = channel - neighbour
                    exponent += diff * diff
                exponent *= range_scale
                weight = np.exp(np.maximum(exponent, _MIN_RANGE_EXPONENT, out=exponent), out=exponent)
                weight *= wy[:, None] * wx[None, :]
                total += weight * up[4]
                weight_sum += weight * up[3]
        return total / weight_sum
