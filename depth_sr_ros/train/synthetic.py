"""Procedural RGB-D scenes for pretraining: unlimited data with no download.

A scene is a slanted background plane and a few layered objects (ellipses, rectangles, polygons,
each a slanted plane nearer than what lies behind it), all textured. Two kinds of element make
guided SR hard, and every scene holds both:

- *painted* patterns: colour edges with no depth edge (the guide must not be copied into depth);
- *camouflaged* objects: depth edges with weak colour contrast (the depth must not be blurred
  where the guide shows nothing).

`make_scene(config, seed)` returns a `Frame` (rgb HxWx3 uint8, depth HxW float32 metres, no
holes) whose `extra` holds the boolean masks `painted` and `camouflaged`. The same seed gives
the same scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from depth_sr_ros.train.datasets import Frame


@dataclass(frozen=True)
class SyntheticConfig:
    """Scene size (pixels) and content. Depths in metres, within [near_m, far_m]."""

    height: int = 240
    width: int = 320
    near_m: float = 0.5
    far_m: float = 5.0
    objects: tuple[int, int] = (3, 7)
    painted: tuple[int, int] = (2, 5)
    camouflaged: int = 1
    noise_rgb: float = 2.0


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random cells x cells grid, bicubic-upsampled."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _texture(rng: np.random.Generator, h: int, w: int, colour: np.ndarray) -> np.ndarray:
    """A textured colour field (float32 HxWx3 in [0, 255]) around `colour`."""
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # smooth blotches
        pattern: np.ndarray = _smooth_noise(rng, h, w, int(rng.integers(3, 12))) - 0.5
    elif kind == 1:  # stripes at a random angle
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
        pattern = 0.5 * np.sign(np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)) * 0.5
    else:  # fine grain
        pattern = rng.random((h, w)).astype(np.float32) - 0.5
    amplitude = rng.uniform(10, 50)
    tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
    return np.clip(colour[None, None, :] + amplitude * pattern[..., None] * tint, 0, 255)


def _shape_mask(rng: np.random.Generator, h: int, w: int, min_size: float, max_size: float) -> np.ndarray:
    """A random filled ellipse, rotated rectangle or polygon (bool HxW)."""
    mask = np.zeros((h, w), dtype=np.uint8)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    size = rng.uniform(min_size, max_size) * min(h, w)
    kind = rng.integers(0, 3)
    if kind == 0:
        axes = (max(2, int(size * rng.uniform(0.4, 1.0))), max(2, int(size * rng.uniform(0.4, 1.0))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == 1:
        rect = ((cx, cy), (size * rng.uniform(0.5, 2.0), size * rng.uniform(0.5, 2.0)), rng.uniform(0, 90))
        cv2.fillPoly(mask, [cv2.boxPoints(rect).astype(np.int32)], 1)
    else:
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = size * rng.uniform(0.4, 1.0, n)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    return mask.astype(bool)


def _plane(rng: np.random.Generator, h: int, w: int, depth: float, tilt: float) -> np.ndarray:
    """A slanted plane around `depth` metres: depth + tilt * depth * (a x + b y), x, y in [-1, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(-1, 1, 2)
    return depth * (1.0 + tilt * (a * (2 * xx / w - 1) + b * (2 * yy / h - 1)))


def make_scene(config: SyntheticConfig, seed: int) -> Frame:
    """One deterministic procedural scene (see module docstring)."""
    rng = np.random.default_rng(seed)
    h, w = config.height, config.width
    near, far = config.near_m, config.far_m
    background = float(rng.uniform(0.5 * far, 0.75 * far))
    depth = _plane(rng, h, w, background, 0.3)
    rgb = _texture(rng, h, w, rng.uniform(30, 225, 3).astype(np.float32))
    camouflaged = np.zeros((h, w), dtype=bool)

    n_objects = int(rng.integers(config.objects[0], config.objects[1] + 1))
    # Objects are drawn back to front; each is nearer than everything drawn so far where it lands;
    # the nearest `camouflaged` ones are the weak-contrast ones, so nothing hides them.
    for i, d in enumerate(np.sort(rng.uniform(near * 1.2, 0.8 * background, n_objects))[::-1]):
        mask = _shape_mask(rng, h, w, 0.1, 0.4)
        if not mask.any():
            continue
        plane = np.minimum(_plane(rng, h, w, float(d), 0.15), depth[mask].min() * 0.9)
        depth[mask] = plane[mask]
        if i >= n_objects - config.camouflaged:
            # Weak colour contrast: the object takes the mean colour of what it covers, nearly flat.
            mean = rgb[mask].mean(axis=0)
            rgb[mask] = np.clip(mean + rng.normal(0, 2.0, 3), 0, 255)
            camouflaged |= mask
        else:
            camouflaged &= ~mask
            rgb[mask] = _texture(rng, h, w, rng.uniform(30, 225, 3).astype(np.float32))[mask]

    painted = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(config.painted[0], config.painted[1] + 1))):
        mask = _shape_mask(rng, h, w, 0.08, 0.25) & ~camouflaged
        rgb[mask] = np.clip(rng.uniform(0, 255, 3), 0, 255)  # a flat decal: colour edge, no depth edge
        painted |= mask

    shading = 0.75 + 0.25 * _smooth_noise(rng, h, w, 3)
    rgb = rgb * shading[..., None] + rng.normal(0, config.noise_rgb, rgb.shape)
    depth = np.clip(depth, near, far).astype(np.float32)
    return Frame(f"synthetic_{seed}", np.clip(rgb, 0, 255).astype(np.uint8), depth, 1.0, "nyu",
                 extra={"painted": painted, "camouflaged": camouflaged})
