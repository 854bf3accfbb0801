"""Depth reprojection between cameras (core/reprojection.py): z-buffer, holes, sub-pixel parallax."""

from __future__ import annotations

import numpy as np
import pytest

from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.reprojection import (
    assumed_intrinsics,
    extrinsic_from_params,
    extrinsic_params,
    fill_disocclusions,
    register_residual,
    reproject_depth,
    rotation_from_vector,
    rotation_vector,
)

H, W = 96, 128
CAMERA = assumed_intrinsics(W, H)


def _scene() -> np.ndarray:
    """A wall at 3 m with a box at 1 m in front of it (metres)."""
    depth = np.full((H, W), 3.0, np.float32)
    depth[30:60, 50:80] = 1.0
    return depth


def test_rotation_vector_round_trip() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        w = rng.normal(size=3) * 0.3
        assert np.allclose(rotation_vector(rotation_from_vector(w)), w, atol=1e-9)
    params = np.array([0.03, -0.01, 0.002, 0.01, -0.02, 0.005])
    assert np.allclose(extrinsic_params(extrinsic_from_params(params)), params, atol=1e-12)


@pytest.mark.parametrize("supersample", [1, 3])
def test_identity_keeps_the_image(supersample: int) -> None:
    depth = _scene()
    depth[5:9, 5:9] = np.nan
    out = reproject_depth(depth, CAMERA, Extrinsic.identity(), CAMERA, depth.shape, supersample).depth
    assert np.array_equal(np.isnan(out), np.isnan(depth))
    assert np.allclose(out[np.isfinite(out)], depth[np.isfinite(depth)], atol=1e-6)


def test_nearest_surface_wins_and_disocclusions_stay_holes() -> None:
    depth = _scene()
    # The sensor 10 cm to the right: the box (1 m) moves f*0.1/1 px, the wall (3 m) a third of that.
    moved = Extrinsic(np.eye(3), np.array([-0.1, 0.0, 0.0]))
    out = reproject_depth(depth, CAMERA, moved, CAMERA, depth.shape).depth
    shift_box = CAMERA.fx * 0.1 / 1.0
    shift_wall = CAMERA.fx * 0.1 / 3.0
    # Where box and wall overlap in the new view, the box (nearer) is what is seen.
    box_cols = np.arange(50, 80) - shift_box
    assert np.all(out[45, np.round(box_cols[2:-2]).astype(int)] == 1.0)
    # Behind the box's right edge the wall there was hidden: no value is invented.
    gap = slice(int(np.ceil(80 - shift_box)) + 1, int(np.floor(80 - shift_wall)) - 1)
    assert np.isnan(out[45, gap]).all()
    assert set(np.unique(out[np.isfinite(out)])) <= {1.0, 3.0}


def test_supersampling_keeps_sub_pixel_parallax() -> None:
    """A residual that moves a plane by 0.5 px: whole-pixel rounding loses it, supersampling keeps it."""
    ramp = np.tile(np.linspace(2.0, 2.5, W, dtype=np.float32), (H, 1))
    shift_px = 0.5
    residual = Extrinsic(np.eye(3), np.array([shift_px * 2.0 / CAMERA.fx, 0.0, 0.0]))
    fine = register_residual(ramp, CAMERA, residual, supersample=4)
    coarse = register_residual(ramp, CAMERA, residual, supersample=1)
    expected = np.interp(np.arange(W) - shift_px, np.arange(W), ramp[0])
    inner = slice(8, W - 8)
    assert np.abs(fine[40, inner] - expected[inner]).max() < np.abs(coarse[40, inner] - expected[inner]).max()
    assert np.abs(fine[40, inner] - expected[inner]).max() < 0.002


def test_round_trip_restores_the_colour_view() -> None:
    depth = _scene()
    pose = extrinsic_from_params([0.03, 0.01, 0.0, 0.0, 0.0, 0.0])
    seen = fill_disocclusions(reproject_depth(depth, CAMERA, pose.inverse(), CAMERA, depth.shape).depth)
    back = register_residual(seen, CAMERA, pose, supersample=1)
    interior = np.zeros_like(depth, bool)
    interior[35:55, 55:75] = True  # inside the box, away from every edge
    assert np.allclose(back[interior], 1.0)
    assert np.nanmean(np.abs(back - depth) < 1e-3) > 0.95


def test_fill_disocclusions_takes_the_background() -> None:
    depth = _scene()
    depth[40:50, 80:86] = np.nan  # a hole between the box (1 m) and the wall (3 m)
    filled = fill_disocclusions(depth)
    assert np.isfinite(filled).all()
    assert np.all(filled[40:50, 80:86] == 3.0)


@pytest.mark.parametrize("supersample", [1, 2, 4])
def test_register_residual_closed_form_equals_the_general_reprojection(supersample: int) -> None:
    """The undistorted fast path (rays cached, scatter-minimum z-buffer) gives what back-projection,
    transform, projection and the sorted z-buffer give, bit for bit, holes and overlaps included."""
    rng = np.random.default_rng(supersample)
    for height, width in ((120, 160), (37, 53)):
        depth = np.full((height, width), 2.0 + rng.random(), np.float32)
        depth[height // 4 : 3 * height // 4, width // 4 : width // 2] = 0.8 + rng.random()
        depth += rng.random(depth.shape).astype(np.float32) * 0.05
        depth[rng.random(depth.shape) < 0.02] = np.nan
        camera = assumed_intrinsics(width, height)
        residual = extrinsic_from_params(np.r_[rng.normal(0.0, 0.03, 3), rng.normal(0.0, 0.01, 3)])
        fast = register_residual(depth, camera, residual, supersample)
        general = reproject_depth(depth, camera, residual, camera, (height, width), supersample).depth
        assert np.isnan(general).any() and np.array_equal(np.isnan(fast), np.isnan(general))
        assert np.array_equal(fast[np.isfinite(fast)], general[np.isfinite(general)])


def test_register_residual_closed_form_on_hostile_depth_values() -> None:
    """inf, -inf, negative, zero, denormal-small and 1e30 depths: invalid ones dropped as the
    general path drops them, the rest projected alike; an empty image is a clear error."""
    values = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-9, 1e30, 2.0]
    depth = np.array(np.random.default_rng(0).choice(values, (30, 40)), np.float32)
    camera = assumed_intrinsics(40, 30)
    residual = extrinsic_from_params([0.03, 0.01, 0.002, 0.001, 0.002, 0.0])
    for supersample in (1, 4):
        fast = register_residual(depth, camera, residual, supersample)
        general = reproject_depth(depth, camera, residual, camera, depth.shape, supersample).depth
        assert np.isfinite(fast).any() and np.array_equal(fast, general, equal_nan=True)
    with pytest.raises(ValueError, match="shape must be positive"):
        register_residual(np.zeros((0, 0), np.float32), camera, residual)


def test_register_residual_with_a_distorted_camera_takes_the_general_path() -> None:
    import dataclasses

    depth = np.full((30, 40), 1.5, np.float32)
    depth[10:20, 10:20] = 0.7
    camera = dataclasses.replace(assumed_intrinsics(40, 30), distortion_model="plumb_bob", d=(0.1, -0.05, 0.0, 0.0, 0.0))
    residual = extrinsic_from_params([0.02, 0.0, 0.0, 0.0, 0.0, 0.0])
    general = reproject_depth(depth, camera, residual, camera, (30, 40), 2).depth
    assert np.array_equal(register_residual(depth, camera, residual, 2), general, equal_nan=True)
