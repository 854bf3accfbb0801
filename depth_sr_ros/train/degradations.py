"""Sensor models that turn ground-truth depth into a low-resolution input, chosen per run by name.

Every step is a small frozen dataclass that acts on a batch, `apply(x, ctx) -> x`, where `x` is a
`B x 1 x H x W` float32 tensor of metres (NaN = invalid, `[row, col]` in the depth camera's optical
frame) on any device, and `ctx` holds the model scale and the `torch.Generator` that every random
draw comes from (one draw per sample: the samples of a batch are degraded independently). The same
code degrades training batches on the GPU and evaluation frames on the CPU; `step(image, scale, rng)`
runs it on one numpy image, seeded from a numpy `Generator`.

`Degradation` chains the steps, starting from the ground truth: steps before its one `Downsample`
act on the high-resolution scene as the low-resolution sensor sees it (misregistration, multipath,
bias), the `Downsample` is the sensor's pixel footprint, and the steps after it corrupt the
low-resolution image (noise, holes, flying pixels, quantisation). The named presets are in
train/sensor_presets.py; a preset is deterministic under the generator it is given.

Real-sensor model (the `real_tof` and `phone_tof` presets): a separate low-resolution ToF camera
registered to the colour camera by calibration. Its residual misregistration (`Misregister`: shift, small rotation
and scale, 0-3 high-resolution pixels), multipath bias near concave corners (`MultipathBias`), a
per-frame depth bias and scale error of a few percent (`BiasScale`), the footprint average at its
own resolution (`Downsample(pitch=...)`: `phone_tof` is a 144x192 sensor for a 384x512 image at x4,
ratio 8/3), its own spatially correlated, depth-dependent noise (`ToFNoise`), missing returns that
its pipeline fills smoothly (`FilledHoles`), flying pixels at edges and 1 mm quantisation (16UC1).

The `bicubic` step uses torch's antialiased bicubic, which equals the gdsr benchmark's PIL resize
(`eval.protocol.protocol_bicubic_downsample`) to float precision (test/test_degradations.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from depth_sr_ros.train.torch_ops import gaussian_blur, max_filter, nearest_fill, smooth_fill

NAN = float("nan")


@dataclass(frozen=True)
class Context:
    """What every step needs besides the image: the model scale (high-resolution pixels per
    model-grid pixel), the generator of all random draws (on the images' device), and whether the
    caller knows the image has no invalid pixel (`dense`: steps then skip their hole filling, which
    on a GPU would cost kernel launches and nothing else)."""

    scale: int
    generator: torch.Generator
    dense: bool = False

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.generator.device)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.generator.device)

    def uniform(self, batch: int, low: float, high: float) -> torch.Tensor:
        """`batch` draws, uniform in [low, high), shaped B x 1 x 1 x 1."""
        return (low + (high - low) * self.rand(batch)).view(batch, 1, 1, 1)


def numpy_generator_context(scale: int, rng: np.random.Generator, x: torch.Tensor) -> Context:
    """A CPU context for the image `x` whose torch generator is seeded from the numpy `rng`."""
    return Context(scale, torch.Generator().manual_seed(int(rng.integers(0, 2**62))), bool(torch.isfinite(x).all()))


class TorchStep:
    """Base of the steps: `apply` on a batch, and the numpy call on one image. `makes_holes`:
    whether the step can turn valid pixels invalid."""

    makes_holes = False

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, image: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        """Apply to one H x W float32 image (metres, NaN invalid), seeded from `rng`."""
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
        return self.apply(x, numpy_generator_context(scale, rng, x))[0, 0].numpy()


def _filled(x: torch.Tensor, ctx: Context, iterations: int = 8) -> torch.Tensor:
    """`x` with its holes filled from their neighbours (`nearest_fill`), or `x` itself when dense."""
    return x if ctx.dense else nearest_fill(x, _valid(x), iterations=iterations)


def _valid(x: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(x)


@dataclass(frozen=True)
class Downsample(TorchStep):
    """The high-resolution image -> the sensor's low resolution.

    method: bicubic = antialiased bicubic (PIL's; holes are filled from their neighbours first and
    put back as NaN where a whole footprint was invalid); area = the mean of the valid pixels of
    each footprint (a ToF pixel); nearest = the footprint's centre pixel (a sparse sampler).
    pitch: the sensor's pixel pitch in model-grid pixels (`scale` high-resolution pixels each): 1
    gives `(H // scale, W // scale)` (the image cropped to a multiple of `scale`); otherwise the
    image has `round(H / (pitch * scale))` rows (2/3 at x4: a 144x192 sensor for a 384x512 image,
    the RGB-D-D phone ToF), footprints of non-integer size (`F.interpolate`'s area), and callers
    bring it to the model grid (`core.resample.resample_to_grid`).
    """

    method: Literal["bicubic", "area", "nearest"] = "bicubic"
    pitch: float = 1.0

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        s = ctx.scale
        if self.pitch == 1.0:
            x = x[..., : (x.shape[-2] // s) * s, : (x.shape[-1] // s) * s]
            size = (x.shape[-2] // s, x.shape[-1] // s)
        else:
            size = (max(1, round(x.shape[-2] / (self.pitch * s))), max(1, round(x.shape[-1] / (self.pitch * s))))
        if self.method == "nearest":
            rows = _centres(size[0], x.shape[-2], x.device)
            cols = _centres(size[1], x.shape[-1], x.device)
            return x.index_select(-2, rows).index_select(-1, cols)
        valid = _valid(x)
        weight = F.interpolate(valid.float(), size=size, mode="area")
        if self.method == "area":
            total = F.interpolate(torch.where(valid, x, torch.zeros_like(x)), size=size, mode="area")
            return torch.where(weight > 0, total / weight.clamp_min(1e-6), NAN)
        out = F.interpolate(_filled(x, ctx), size=size, mode="bicubic", antialias=True, align_corners=False)
        return torch.where(weight > 0, out, NAN)


def _centres(n_out: int, n_in: int, device: torch.device) -> torch.Tensor:
    """Input index whose footprint holds each of `n_out` equal output footprints' centre."""
    return ((torch.arange(n_out, device=device) + 0.5) * (n_in / n_out)).long().clamp_(max=n_in - 1)


@dataclass(frozen=True)
class Misregister(TorchStep):
    """Residual misregistration of a separate sensor: a random similarity transform (shift, small
    rotation and scale about the image centre) whose displacement, averaged over the image, is
    `level` high-resolution pixels, drawn uniformly in [`min_px`, `max_px`] per sample. Apply it
    before the `Downsample`. Resampled bilinearly with replicated borders; holes move along.

    Displacement `d(p) = M (p - c) + t` with `M = [[a, -b], [b, a]]` (scale a, rotation b, small),
    scaled so that the mean of |d| over a 16 x 16 grid of pixel centres is the drawn level.
    """

    min_px: float = 0.0
    max_px: float = 3.0

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        b_, _, h, w = x.shape
        # The same draws at every level, so that the rest of a chain draws the same at every level.
        level = ctx.uniform(b_, self.min_px, self.max_px).view(b_)
        t = ctx.randn(b_, 2)
        radius = 0.5 * math.hypot(h, w)
        rot = ctx.randn(b_, 2) * (0.5 / radius)  # ~0.5 px at the corners per unit of shift
        if self.max_px <= 0:
            return x
        a, b = rot[:, 0], rot[:, 1]
        ys = torch.linspace(0.5, h - 0.5, 16, device=x.device) - h / 2
        xs = torch.linspace(0.5, w - 0.5, 16, device=x.device) - w / 2
        py, px = torch.meshgrid(ys, xs, indexing="ij")
        dx = a[:, None, None] * px - b[:, None, None] * py + t[:, 0, None, None]
        dy = b[:, None, None] * px + a[:, None, None] * py + t[:, 1, None, None]
        k = level / torch.hypot(dx, dy).mean(dim=(1, 2)).clamp_min(1e-9)
        a, b, t = a * k, b * k, t * k[:, None]
        # Output pixel p shows source p + d(p); in grid_sample's [-1, 1] coordinates (align_corners
        # False) p - c = (x_n W/2, y_n H/2).
        theta = torch.stack([
            torch.stack([1 + a, -b * h / w, 2 * t[:, 0] / w], dim=1),
            torch.stack([b * w / h, 1 + a, 2 * t[:, 1] / h], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(_filled(x, ctx), grid, mode="bilinear", padding_mode="border", align_corners=False)
        if ctx.dense:
            return out
        moved = F.grid_sample(_valid(x).float(), grid, mode="nearest", padding_mode="border", align_corners=False)
        return torch.where(moved > 0.5, out, NAN)


@dataclass(frozen=True)
class MultipathBias(TorchStep):
    """ToF multipath interference: light that bounces between two surfaces meeting at a concave
    corner (a room corner, wall-floor seams) comes back late, so depth reads too far there.

    The concavity of a pixel is how far it lies behind the mean depth of its neighbourhood
    (Gaussian of sigma `radius_px` high-resolution pixels, cut at 3 sigma; the image is extended by
    point reflection, so a plane stays a plane up to the border); the bias is `strength` x that,
    capped at `max_bias_m`, and zero within 3 sigma of a depth discontinuity (a jump of more than
    `jump_rel` between neighbours: an occlusion, not a corner). Apply before the `Downsample`."""

    strength: float = 1.0
    radius_px: float = 8.0
    max_bias_m: float = 0.05
    jump_rel: float = 0.05

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        filled = _filled(x, ctx)
        reach = math.ceil(3 * self.radius_px)
        mean = gaussian_blur(filled, self.radius_px, mode="odd", radius=reach)
        excess = (filled - mean).clamp_min(0.0)
        jumps = torch.zeros_like(filled)
        dy = (filled[..., 1:, :] - filled[..., :-1, :]).abs() > self.jump_rel * filled[..., 1:, :]
        dx = (filled[..., :, 1:] - filled[..., :, :-1]).abs() > self.jump_rel * filled[..., :, 1:]
        jumps[..., 1:, :] += dy
        jumps[..., :, 1:] += dx
        near_jump = max_filter(jumps, reach) > 0
        bias = torch.where(near_jump, 0.0, (self.strength * excess).clamp_max(self.max_bias_m))
        return x + bias


@dataclass(frozen=True)
class BiasScale(TorchStep):
    """Calibration error of the whole frame: `depth * (1 + s) + b` with `s` uniform in
    +-`max_scale` and `b` uniform in +-`max_bias_m`, drawn per sample."""

    max_scale: float = 0.02
    max_bias_m: float = 0.02

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        s = ctx.uniform(x.shape[0], -self.max_scale, self.max_scale)
        b = ctx.uniform(x.shape[0], -self.max_bias_m, self.max_bias_m)
        return x * (1.0 + s) + b


@dataclass(frozen=True)
class GaussianNoise(TorchStep):
    """Additive zero-mean noise of standard deviation `sigma_m` metres."""

    sigma_m: float = 0.005

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        return x + ctx.randn(*x.shape) * self.sigma_m


@dataclass(frozen=True)
class ProportionalNoise(TorchStep):
    """Depth-dependent noise: sigma = `rel` * depth ** `power` (metres); ToF ~ power 1,
    structured light ~ power 2."""

    rel: float = 0.01
    power: float = 1.0

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        return x + ctx.randn(*x.shape) * (self.rel * torch.nan_to_num(x).abs() ** self.power)


@dataclass(frozen=True)
class ToFNoise(TorchStep):
    """A ToF camera's own noise: zero-mean, standard deviation `sigma_m + rel2 * depth**2`
    (metres; the returned amplitude falls with the square of the distance), spatially correlated
    over about `correlation_px` pixels (the sensor's own filtering): white noise blurred by a
    Gaussian of that sigma, rescaled to unit variance per sample (0 = white)."""

    sigma_m: float = 0.004
    rel2: float = 0.002
    correlation_px: float = 1.0

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        noise = ctx.randn(*x.shape)
        if self.correlation_px > 0:
            noise = gaussian_blur(noise, self.correlation_px)
            noise = noise / noise.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        return x + noise * (self.sigma_m + self.rel2 * torch.nan_to_num(x) ** 2)


@dataclass(frozen=True)
class RandomHoles(TorchStep):
    """Drop each pixel independently with probability `fraction` (speckle dropouts)."""

    makes_holes = True

    fraction: float = 0.02

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        return torch.where(ctx.rand(*x.shape) < self.fraction, NAN, x)


def ellipse_mask(shape: torch.Size, count: int, area_fraction: float, ctx: Context) -> torch.Tensor:
    """B x 1 x H x W bool: `count` random ellipses per sample (aspect 0.4-2.5, anywhere) covering
    about `area_fraction` of the image in total."""
    b_, _, h, w = shape
    device = ctx.generator.device
    rows = torch.arange(h, device=device, dtype=torch.float32).view(1, 1, h, 1)
    cols = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, 1, w)
    each = area_fraction * h * w / max(count, 1)
    aspect = 0.4 + 2.1 * ctx.rand(b_, count, 1, 1)
    ry = torch.sqrt(each * aspect / math.pi)
    rx = each / (math.pi * ry)
    cy, cx = ctx.rand(b_, count, 1, 1) * h, ctx.rand(b_, count, 1, 1) * w
    inside = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0
    return inside.any(dim=1, keepdim=True)


@dataclass(frozen=True)
class StructuredHoles(TorchStep):
    """Drop `count` random ellipses (dark or specular patches) covering about `area_fraction`
    of the image in total."""

    makes_holes = True

    count: int = 3
    area_fraction: float = 0.05

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        return torch.where(ellipse_mask(x.shape, self.count, self.area_fraction, ctx), NAN, x)


@dataclass(frozen=True)
class FilledHoles(TorchStep):
    """Missing returns (dark, specular or far surfaces) that the sensor's own pipeline fills:
    `count` random ellipses covering about `area_fraction` of the image in total are replaced by a
    smooth interpolation from their rims (`torch_ops.smooth_fill`) and reported as valid; the
    sensor's other holes stay holes."""

    count: int = 2
    area_fraction: float = 0.04

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        valid = _valid(x)
        holes = ellipse_mask(x.shape, self.count, self.area_fraction, ctx) & valid
        known = valid & ~holes
        filled = smooth_fill(torch.where(known, x, torch.zeros_like(x)), known)
        return torch.where(holes, filled, x)


@dataclass(frozen=True)
class FlyingPixels(TorchStep):
    """At depth discontinuities larger than `jump_m`, replace a pixel with probability
    `probability` by a random mix of its foreground and background depth (mixed returns)."""

    jump_m: float = 0.05
    probability: float = 0.5

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        valid = _valid(x)
        filled = _filled(x, ctx, iterations=2)
        hi = max_filter(filled, 1)
        lo = -max_filter(-filled, 1)
        edge = (hi - lo > self.jump_m) & valid & (ctx.rand(*x.shape) < self.probability)
        return torch.where(edge, lo + ctx.rand(*x.shape) * (hi - lo), x)


@dataclass(frozen=True)
class Quantize(TorchStep):
    """Round to multiples of `step_m` metres (1 mm: a 16UC1 millimetre image)."""

    step_m: float = 0.001

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        return torch.round(x / self.step_m) * self.step_m


@dataclass(frozen=True)
class RandomPoints(TorchStep):
    """LiDAR-like sparsity: keep each pixel with probability `density`, the rest invalid."""

    makes_holes = True

    density: float = 0.1

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        return torch.where(ctx.rand(*x.shape) < self.density, x, NAN)


@dataclass(frozen=True)
class ScanRings(TorchStep):
    """Spinning-LiDAR-like rings: keep `rings` gently curved scan lines across the image, each
    sampled every `column_step` pixels; everything else invalid."""

    makes_holes = True

    rings: int = 16
    column_step: int = 1
    curvature: float = 0.05

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        b_, _, h, w = x.shape
        cols = torch.arange(0, w, self.column_step, device=x.device)
        bend = self.curvature * h * ((cols - w / 2) / (w / 2)) ** 2
        offset = ctx.rand(b_) * (h / max(self.rings, 1))
        ring = torch.arange(self.rings, device=x.device) * (h / self.rings)
        rows = torch.round(offset[:, None, None] + ring[None, :, None] + bend[None, None, :]).long()
        inside = (rows >= 0) & (rows < h)
        flat = (rows.clamp(0, h - 1) * w + cols).reshape(b_, -1)
        keep = torch.zeros(b_, h * w, device=x.device)
        keep.scatter_reduce_(1, flat, inside.reshape(b_, -1).float(), reduce="amax")
        return torch.where(keep.view(b_, 1, h, w) > 0, x, NAN)


def tof_camera_steps(pitch: float) -> tuple[TorchStep, ...]:
    """A separate ToF camera's effects around its footprint (module docstring), without its
    calibration misregistration: multipath, depth bias and scale, the area footprint at a pixel
    pitch of `pitch` model-grid pixels, noise, filled holes, flying pixels, dropouts, 1 mm steps.
    `real_tof` and `phone_tof` put a `Misregister` before them; the sensors beside the camera
    (train/parallax.py) their parallax."""
    return (MultipathBias(), BiasScale(max_scale=0.02, max_bias_m=0.02), Downsample("area", pitch=pitch), ToFNoise(),
            FilledHoles(count=2, area_fraction=0.04), FlyingPixels(jump_m=0.05, probability=0.5),
            RandomHoles(fraction=0.005), Quantize(step_m=0.001))


@dataclass(frozen=True)
class Degradation:
    """A named chain of steps with exactly one `Downsample` (see the module docstring)."""

    name: str
    steps: tuple[TorchStep, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if sum(isinstance(step, Downsample) for step in self.steps) != 1:
            raise ValueError(f"degradation {self.name!r} must have exactly one Downsample step")

    @property
    def downsample(self) -> Downsample:
        return next(step for step in self.steps if isinstance(step, Downsample))

    def apply(self, gt: torch.Tensor, ctx: Context) -> torch.Tensor:
        """B x 1 x H x W ground truth -> the low-resolution input (`H // scale` rows, or the
        sensor's own size when its `Downsample` has a pitch other than 1)."""
        x = gt
        for step in self.steps:
            x = step.apply(x, ctx)
            if ctx.dense and step.makes_holes:
                ctx = replace(ctx, dense=False)
        return x

    def __call__(self, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        """One H x W numpy image (metres, NaN invalid), seeded from `rng`."""
        x = torch.from_numpy(np.ascontiguousarray(gt, dtype=np.float32))[None, None]
        return self.apply(x, numpy_generator_context(scale, rng, x))[0, 0].numpy()

    def with_misregistration(self, level_px: float) -> Degradation:
        """This chain with every `Misregister` step fixed at `level_px` high-resolution pixels."""
        if not (level_px >= 0 and math.isfinite(level_px)):
            raise ValueError(f"misregistration must be a finite number of pixels >= 0, got {level_px}")
        if not any(isinstance(step, Misregister) for step in self.steps):
            raise ValueError(f"degradation {self.name!r} has no misregistration step; use real_tof, phone_tof "
                             "or misregistration")
        steps = tuple(Misregister(level_px, level_px) if isinstance(step, Misregister) else step
                      for step in self.steps)
        return Degradation(f"{self.name}@{level_px:g}px", steps)
