"""Procedural RGB-D scenes: ranges, determinism, and both hard cases of guided SR."""

import cv2
import numpy as np
import pytest

from depth_sr_ros.train.synthetic import SyntheticConfig, make_scene

CONFIG = SyntheticConfig(height=96, width=128)


def depth_edges(depth):
    gy, gx = np.gradient(depth.astype(np.float64))
    return np.hypot(gx, gy) > 0.02 * depth


def colour_edges(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    colour = rgb.astype(np.float64)
    gy, gx = np.gradient(colour, axis=(0, 1))
    return np.hypot(gx, gy).max(axis=2) > 20, grey


def boundary(mask):
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return mask & ~eroded


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_valid_ranges_and_types(seed):
    frame = make_scene(CONFIG, seed)
    assert frame.rgb.shape == (96, 128, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (96, 128) and frame.depth.dtype == np.float32
    assert np.isfinite(frame.depth).all()
    assert CONFIG.near_m <= frame.depth.min() and frame.depth.max() <= CONFIG.far_m
    assert frame.rgb.std() > 5  # textured, not blank


def test_deterministic_under_a_seed():
    a, b, c = make_scene(CONFIG, 7), make_scene(CONFIG, 7), make_scene(CONFIG, 8)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert not np.array_equal(a.depth, c.depth)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_edges_present_in_depth_and_colour(seed):
    frame = make_scene(CONFIG, seed)
    assert depth_edges(frame.depth).mean() > 0.005
    assert colour_edges(frame.rgb)[0].mean() > 0.005


def test_painted_patterns_are_colour_edges_without_depth_edges():
    hits = 0
    for seed in range(6):
        frame = make_scene(CONFIG, seed)
        rim = boundary(frame.extra["painted"]) & ~cv2.dilate(depth_edges(frame.depth).astype(np.uint8),
                                                             np.ones((3, 3), np.uint8)).astype(bool)
        if rim.sum() < 20:
            continue
        hits += 1
        assert colour_edges(frame.rgb)[0][rim].mean() > 0.3  # the decal's outline is a colour edge
        # ...and the depth there is smooth: the decal changes no depth.
        gy, gx = np.gradient(frame.depth.astype(np.float64))
        assert np.percentile(np.hypot(gx, gy)[rim] / frame.depth[rim], 90) < 0.02
    assert hits >= 3


def test_camouflaged_objects_are_depth_edges_with_weak_colour_contrast():
    contrasts = []
    for seed in range(8):
        frame = make_scene(CONFIG, seed)
        mask = frame.extra["camouflaged"]
        if mask.sum() < 50:
            continue
        rim = boundary(mask)
        assert depth_edges(frame.depth)[rim].mean() > 0.5  # a real depth step around the object
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
        inside = frame.rgb[mask].astype(np.float64).mean(axis=0)
        outside = frame.rgb[ring].astype(np.float64).mean(axis=0)
        contrasts.append(np.abs(inside - outside).max())
    assert len(contrasts) >= 4
    assert np.median(contrasts) < 15  # grey levels, of 255
