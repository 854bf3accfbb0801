"""Sensor models that turn ground-truth depth into a low-resolution input, chosen per run by name.

Every step is a small dataclass with `__call__(lr, gt, scale, rng) -> lr`, where `gt` is the
high-resolution ground truth and `lr` the low-resolution image built so far (both `float32`
metres, NaN = invalid, `[row, col]` in the depth camera's optical frame). The first step of a
pipeline is a downsampling (it ignores `lr`); the others corrupt `lr`. `Degradation` chains
them; `DEGRADATIONS` holds the named presets (`get_degradation(name)`).

`protocol_bicubic_downsample` is the gdsr benchmark's step 2 exactly (`../shared/data/PROTOCOL.md`):
PIL's antialiased bicubic resize of the float32 image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from depth_sr_ros.core.resample import fill_holes, pil_resize


def protocol_bicubic_downsample(gt: np.ndarray, scale: int) -> np.ndarray:
    """PIL bicubic (antialiased) resize of float32 `gt` to `(H // scale, W // scale)`.

    `gt` must have no NaN (the benchmark's ground truth is hole-filled); crop it to a multiple
    of `scale` first, as the protocol does.
    """
    h, w = gt.shape
    return pil_resize(gt, (w // scale, h // scale), "bicubic")


class Step(Protocol):
    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        ...


@dataclass(frozen=True)
class Downsample:
    """Ground truth -> low resolution. bicubic: the protocol's PIL resize (holes are filled with
    the nearest valid value first and put back as NaN where a whole block was invalid); area: the
    mean of the valid pixels of each `scale x scale` block (a ToF pixel's footprint); nearest:
    the block's centre pixel (a sparse sampler)."""

    method: Literal["bicubic", "area", "nearest"] = "bicubic"

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        h, w = (gt.shape[0] // scale) * scale, (gt.shape[1] // scale) * scale
        gt = gt[:h, :w]
        blocks = gt.reshape(h // scale, scale, w // scale, scale)
        valid = np.isfinite(blocks)
        any_valid = valid.any(axis=(1, 3))
        if self.method == "nearest":
            return np.ascontiguousarray(gt[scale // 2 :: scale, scale // 2 :: scale])
        if self.method == "area":
            total = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
            count = valid.sum(axis=(1, 3))
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(any_valid, total / np.maximum(count, 1), np.nan).astype(np.float32)
        if np.isfinite(gt).all():
            return protocol_bicubic_downsample(gt, scale)
        valid_hr = np.isfinite(gt)
        if not valid_hr.any():
            return np.full((h // scale, w // scale), np.nan, dtype=np.float32)
        filled = fill_holes(gt, valid_hr)
        return np.where(any_valid, protocol_bicubic_downsample(filled, scale), np.nan).astype(np.float32)


@dataclass(frozen=True)
class GaussianNoise:
    """Additive zero-mean noise of standard deviation `sigma_m` metres."""

    sigma_m: float = 0.005

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return (lr + rng.normal(0.0, self.sigma_m, lr.shape)).astype(np.float32)


@dataclass(frozen=True)
class ProportionalNoise:
    """Depth-dependent noise: sigma = `rel` * depth ** `power` (metres); ToF ~ power 1,
    structured light ~ power 2."""

    rel: float = 0.01
    power: float = 1.0

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        sigma = self.rel * np.abs(np.nan_to_num(lr)) ** self.power
        return (lr + rng.standard_normal(lr.shape) * sigma).astype(np.float32)


@dataclass(frozen=True)
class RandomHoles:
    """Drop each pixel independently with probability `fraction` (speckle dropouts)."""

    fraction: float = 0.02

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return np.where(rng.random(lr.shape) < self.fraction, np.nan, lr).astype(np.float32)


@dataclass(frozen=True)
class StructuredHoles:
    """Drop `count` random ellipses (dark or specular patches) covering about `area_fraction`
    of the image in total."""

    count: int = 3
    area_fraction: float = 0.05

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        h, w = lr.shape
        rows, cols = np.mgrid[0:h, 0:w]
        out = lr.copy()
        each = self.area_fraction * h * w / max(self.count, 1)
        for _ in range(self.count):
            aspect = rng.uniform(0.4, 2.5)
            ry = np.sqrt(each * aspect / np.pi)
            rx = each / (np.pi * ry)
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            out[((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0] = np.nan
        return out


@dataclass(frozen=True)
class FlyingPixels:
    """At depth discontinuities larger than `jump_m`, replace a pixel with probability
    `probability` by a random mix of its foreground and background depth (mixed returns)."""

    jump_m: float = 0.05
    probability: float = 0.5

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        padded = np.pad(np.nan_to_num(lr, nan=np.nanmedian(lr) if np.isfinite(lr).any() else 0.0), 1, "edge")
        h, w = lr.shape
        neigh = np.stack([padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        lo, hi = neigh.min(axis=0), neigh.max(axis=0)
        edge = (hi - lo > self.jump_m) & np.isfinite(lr) & (rng.random(lr.shape) < self.probability)
        mix = lo + rng.random(lr.shape) * (hi - lo)
        return np.where(edge, mix, lr).astype(np.float32)


@dataclass(frozen=True)
class Quantize:
    """Round to multiples of `step_m` metres (1 mm: a 16UC1 millimetre image)."""

    step_m: float = 0.001

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return (np.round(lr / self.step_m) * self.step_m).astype(np.float32)


@dataclass(frozen=True)
class RandomPoints:
    """LiDAR-like sparsity: keep each pixel with probability `density`, the rest invalid."""

    density: float = 0.1

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return np.where(rng.random(lr.shape) < self.density, lr, np.nan).astype(np.float32)


@dataclass(frozen=True)
class ScanRings:
    """Spinning-LiDAR-like rings: keep `rings` gently curved scan lines across the image, each
    sampled every `column_step` pixels; everything else invalid."""

    rings: int = 16
    column_step: int = 1
    curvature: float = 0.05

    def __call__(self, lr: np.ndarray, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        h, w = lr.shape
        keep = np.zeros((h, w), dtype=bool)
        cols = np.arange(0, w, self.column_step)
        bend = self.curvature * h * ((cols - w / 2) / (w / 2)) ** 2
        offset = rng.uniform(0, h / max(self.rings, 1))
        for ring in range(self.rings):
            row = np.round(offset + ring * h / self.rings + bend).astype(int)
            inside = (row >= 0) & (row < h)
            keep[row[inside], cols[inside]] = True
        return np.where(keep, lr, np.nan).astype(np.float32)


@dataclass(frozen=True)
class Degradation:
    """A named chain of steps, the first of which downsamples the ground truth."""

    name: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def __call__(self, gt: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        """Low-resolution input (float32 metres, NaN invalid) of shape `gt.shape // scale`."""
        if not self.steps or not isinstance(self.steps[0], Downsample):
            raise ValueError(f"degradation {self.name!r} must start with a Downsample step")
        lr = np.empty(0, dtype=np.float32)
        for step in self.steps:
            lr = step(lr, gt, scale, rng)
        return lr


DEGRADATIONS: dict[str, Callable[[], Degradation]] = {
    "bicubic": lambda: Degradation("bicubic", (Downsample("bicubic"),)),
    "area": lambda: Degradation("area", (Downsample("area"),)),
    "nearest": lambda: Degradation("nearest", (Downsample("nearest"),)),
    # A ToF camera: footprint averaging, 1 % depth noise + 2 mm floor, speckle and patch dropouts,
    # mixed returns at edges, 1 mm quantisation (16UC1).
    "tof": lambda: Degradation("tof", (
        Downsample("area"), ProportionalNoise(rel=0.01, power=1.0), GaussianNoise(sigma_m=0.002),
        FlyingPixels(jump_m=0.05, probability=0.5), RandomHoles(fraction=0.02),
        StructuredHoles(count=3, area_fraction=0.04), Quantize(step_m=0.001),
    )),
    "structured_light": lambda: Degradation("structured_light", (
        Downsample("nearest"), ProportionalNoise(rel=0.003, power=2.0), RandomHoles(fraction=0.05),
        StructuredHoles(count=4, area_fraction=0.08), Quantize(step_m=0.001),
    )),
    "lidar_points": lambda: Degradation("lidar_points", (
        Downsample("nearest"), GaussianNoise(sigma_m=0.01), RandomPoints(density=0.1),
    )),
    "lidar_rings": lambda: Degradation("lidar_rings", (
        Downsample("nearest"), GaussianNoise(sigma_m=0.01), ScanRings(rings=16),
    )),
}


def get_degradation(name: str) -> Degradation:
    """The preset `name`; unknown names raise a `KeyError` that lists the known ones."""
    try:
        return DEGRADATIONS[name]()
    except KeyError:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(sorted(DEGRADATIONS))}") from None
