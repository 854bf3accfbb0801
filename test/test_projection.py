"""Projection of 3-D points into a camera: extrinsics, exact pixels, z-buffer, drops, distortion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.projection import (
    COUNT_KEYS,
    Extrinsic,
    back_project,
    project_points,
    register_depth,
)

# 64 x 48 pinhole camera, no distortion
SMALL = Intrinsics(fx=50.0, fy=50.0, cx=32.0, cy=24.0, width=64, height=48)
# TUM freiburg1 colour camera distortion (plumb_bob)
TUM_D = (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)
# REP 103 body frame (x forward, y left, z up) -> optical frame (x right, y down, z forward);
# the inverse of the usual URDF optical joint rpy (-pi/2, 0, -pi/2) = quaternion (-0.5, 0.5, -0.5, 0.5)
BODY_TO_OPTICAL_Q = (0.5, -0.5, 0.5, 0.5)


def _finite_pixels(depth: np.ndarray) -> dict[tuple[int, int], float]:
    rows, cols = np.nonzero(np.isfinite(depth))
    return {(int(r), int(c)): float(depth[r, c]) for r, c in zip(rows, cols)}


def test_quaternion_gives_the_body_to_optical_rotation() -> None:
    extrinsic = Extrinsic.from_translation_quaternion((0, 0, 0), BODY_TO_OPTICAL_Q)
    expected = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    np.testing.assert_allclose(extrinsic.rotation, expected, atol=1e-12)
    assert extrinsic.as_quaternion() == pytest.approx(BODY_TO_OPTICAL_Q)


def test_inverse_and_compose() -> None:
    a = Extrinsic.from_translation_quaternion((0.3, -0.2, 1.0), (0.1, 0.2, 0.3, 0.9))
    b = Extrinsic.from_translation_quaternion((-1.0, 0.5, 0.25), (0.0, 0.0, 0.7071068, 0.7071068))
    points = np.array([[1.0, 2.0, 3.0], [-0.5, 0.0, 4.0]])
    np.testing.assert_allclose(a.inverse().apply(a.apply(points)), points, atol=1e-12)
    np.testing.assert_allclose(a.compose(b).apply(points), a.apply(b.apply(points)), atol=1e-12)
    identity = a.compose(a.inverse())
    np.testing.assert_allclose(identity.rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(identity.translation, np.zeros(3), atol=1e-12)


def test_extrinsic_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        Extrinsic.from_translation_quaternion((0, 0, 0), (0, 0, 0, 0))
    with pytest.raises(ValueError):
        Extrinsic(np.diag([1.0, 1.0, -1.0]), np.zeros(3))  # a reflection
    with pytest.raises(ValueError):
        Extrinsic(np.eye(3), np.array([0.0, np.nan, 0.0]))


def test_hand_placed_points_land_on_exact_pixels_under_a_known_extrinsic() -> None:
    # LiDAR at (0.1, 0.2, 0) in the optical frame, axes per REP 103.
    lidar_to_cam = Extrinsic.from_translation_quaternion((0.1, 0.2, 0.0), BODY_TO_OPTICAL_Q)
    lidar_points = np.array([[2.0, -0.5, 0.25], [4.0, 1.0, -0.2]])
    # by hand: cam = (-y + 0.1, -z + 0.2, x) -> (0.6, -0.05, 2.0) and (-0.9, 0.4, 4.0)
    # u = 50 x / z + 32, v = 50 y / z + 24 -> (47, 22.75) and (20.75, 29)
    result = project_points(lidar_to_cam.apply(lidar_points), SMALL, (48, 64))
    assert _finite_pixels(result.depth) == {(23, 47): pytest.approx(2.0), (29, 21): pytest.approx(4.0)}
    assert result.counts == {"kept": 2, "nan": 0, "behind": 0, "outside": 0, "occluded": 0}
    assert result.depth.dtype == np.float32
    assert result.mask.sum() == 2


def test_working_resolution_rescales_with_pixel_centres() -> None:
    point = np.array([[0.6, -0.08, 2.0]])  # u = 47, v = 22 at 64 x 48
    full = project_points(point, SMALL, (48, 64))
    assert _finite_pixels(full.depth) == {(22, 47): pytest.approx(2.0)}
    # half resolution: u' = (47 + 0.5) / 2 - 0.5 = 23.25, v' = (22 + 0.5) / 2 - 0.5 = 10.75
    half = project_points(point, SMALL, (24, 32))
    assert _finite_pixels(half.depth) == {(11, 23): pytest.approx(2.0)}


@pytest.mark.parametrize("reverse", [False, True])
def test_z_buffer_keeps_the_nearest_point_per_pixel(reverse: bool) -> None:
    ray = np.array([0.1, -0.06, 1.0])
    points = np.stack([ray * 3.0, ray * 1.5, ray * 2.0, np.array([-0.2, 0.1, 1.0])])
    if reverse:
        points = points[::-1].copy()
    result = project_points(points, SMALL, (48, 64))
    # ray: u = 50 * 0.1 + 32 = 37, v = 50 * -0.06 + 24 = 21; other: u = 22, v = 29
    assert _finite_pixels(result.depth) == {(21, 37): pytest.approx(1.5), (29, 22): pytest.approx(1.0)}
    assert result.counts["occluded"] == 2
    assert result.counts["kept"] == 2


def test_z_buffer_matches_a_per_pixel_minimum_on_random_crowded_points() -> None:
    """Many points per pixel, in no order, with depths from millimetres to kilometres and ties:
    each pixel holds the least depth that lands on it (float32), as a plain loop finds it."""
    rng = np.random.default_rng(7)
    points = rng.normal(0.0, 0.3, (5000, 3))
    points[:, 2] = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), 5000))
    points[:500, 2] = np.round(points[:500, 2], 1) + 0.5  # ties
    points[:, :2] *= points[:, 2:3]
    result = project_points(points, SMALL, (12, 16))
    expected = np.full((12, 16), np.inf, dtype=np.float32)
    camera_u = np.floor(SMALL.fx / 4 * points[:, 0] / points[:, 2] + (SMALL.cx + 0.5) / 4 - 0.5 + 0.5)
    camera_v = np.floor(SMALL.fy / 4 * points[:, 1] / points[:, 2] + (SMALL.cy + 0.5) / 4 - 0.5 + 0.5)
    for u, v, z in zip(camera_u.astype(int), camera_v.astype(int), points[:, 2]):
        if 0 <= u < 16 and 0 <= v < 12:
            expected[v, u] = min(expected[v, u], np.float32(z))
    expected[np.isinf(expected)] = np.nan
    np.testing.assert_array_equal(result.depth, expected)
    assert result.counts["kept"] == int(np.isfinite(expected).sum())


def test_points_behind_outside_and_nan_are_dropped_and_counted() -> None:
    points = np.array(
        [
            [0.0, 0.0, 2.0],  # kept, principal point
            [0.0, 0.0, -2.0],  # behind
            [0.0, 0.0, 0.0],  # on the camera plane: behind
            [5.0, 0.0, 2.0],  # u = 157: outside
            [0.0, -1.0, 2.0],  # v = -1: outside
            [-0.6500001, 0.0, 1.0],  # u = -0.500005 rounds to -1: outside
            [np.nan, 0.0, 1.0],  # nan
            [0.0, np.inf, 1.0],  # nan (non-finite)
        ]
    )
    result = project_points(points, SMALL, (48, 64))
    assert result.counts == {"kept": 1, "nan": 2, "behind": 2, "outside": 3, "occluded": 0}
    assert sum(result.counts.values()) == len(points)
    assert _finite_pixels(result.depth) == {(24, 32): pytest.approx(2.0)}


@pytest.mark.parametrize("points", [np.empty((0, 3)), np.array([])])
def test_empty_cloud_gives_an_all_invalid_image(points: np.ndarray) -> None:
    result = project_points(points, SMALL, (48, 64))
    assert result.depth.shape == (48, 64)
    assert np.isnan(result.depth).all()
    assert result.counts == dict.fromkeys(COUNT_KEYS, 0)


def test_bad_point_shape_is_rejected() -> None:
    with pytest.raises(ValueError):
        project_points(np.zeros((4, 2)), SMALL, (48, 64))


def test_unsupported_distortion_model_is_a_frame_error() -> None:
    fisheye = Intrinsics(fx=50, fy=50, cx=32, cy=24, width=64, height=48,
                         distortion_model="equidistant", d=(0.1, 0.0, 0.0, 0.0))
    with pytest.raises(FrameError) as error:
        project_points(np.array([[0.0, 0.0, 1.0]]), fisheye, (48, 64))
    assert error.value.reason == "unsupported_distortion"


RATIONAL_D = (0.3, -0.2, 0.001, -0.002, 0.05, 0.25, -0.15, 0.04)


@pytest.mark.parametrize(("model", "coefficients"), [("plumb_bob", TUM_D), ("rational_polynomial", RATIONAL_D)])
def test_distortion_matches_cv2_project_points(model: str, coefficients: tuple[float, ...]) -> None:
    camera = Intrinsics(fx=517.3, fy=516.5, cx=318.6, cy=255.3, width=640, height=480,
                        distortion_model=model, d=coefficients)
    rng = np.random.default_rng(0)
    n = 400
    # directions within about the camera's field of view, depths 0.5 .. 6 m
    x = rng.uniform(-0.62, 0.62, n)
    y = rng.uniform(-0.5, 0.5, n)
    z = rng.uniform(0.5, 6.0, n)
    points = np.stack([x * z, y * z, z], axis=1)
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3),
                                  np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]]), np.array(coefficients))
    pixels = pixels.reshape(-1, 2)
    # stay clear of pixel borders, where float rounding may legitimately differ
    frac = np.abs((pixels + 0.5) % 1.0 - 0.5)
    keep = np.all(np.abs(frac - 0.5) > 1e-4, axis=1)
    pixels, points = pixels[keep], points[keep]
    expected: dict[tuple[int, int], float] = {}
    for (u, v), depth in zip(pixels, points[:, 2]):
        col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        if 0 <= col < 640 and 0 <= row < 480:
            expected[(row, col)] = min(expected.get((row, col), np.inf), float(depth))
    assert len(expected) > 300
    result = project_points(points, camera, (480, 640))
    got = _finite_pixels(result.depth)
    assert got.keys() == expected.keys()
    for pixel, depth in expected.items():
        assert got[pixel] == pytest.approx(depth, rel=1e-6)


def test_points_beyond_the_fold_of_the_distortion_are_outside() -> None:
    # With k1 < 0 the radial map r * (1 + k1 r^2) peaks at r^2 = 1 / (3 |k1|) and folds back:
    # a point far off-axis would otherwise land inside the image.
    folding = Intrinsics(fx=50, fy=50, cx=32, cy=24, width=64, height=48,
                         distortion_model="plumb_bob", d=(-0.3, 0.0, 0.0, 0.0, 0.0))
    far_off_axis = np.array([[3.0, 0.0, 1.0]])  # r = 3: distorted x = 3 * (1 - 2.7) = -5.1 -> outside anyway
    folded_in = np.array([[1.85, 0.0, 1.0]])  # distorted x = 1.85 * (1 - 0.3 * 3.4225) = -0.0495 -> u = 29.5
    result = project_points(np.concatenate([far_off_axis, folded_in]), folding, (48, 64))
    assert result.counts["outside"] == 2
    assert result.counts["kept"] == 0


def test_back_project_then_project_is_the_identity_with_distortion() -> None:
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.5, 5.0, (48, 64)).astype(np.float32)
    depth[rng.random((48, 64)) < 0.2] = np.nan
    camera = Intrinsics(fx=50, fy=52, cx=31.2, cy=24.7, width=64, height=48,
                        distortion_model="plumb_bob", d=(0.05, -0.02, 0.001, -0.002, 0.0))
    result = register_depth(depth, camera, Extrinsic.identity(), camera, (48, 64))
    np.testing.assert_array_equal(np.isnan(result.depth), np.isnan(depth))
    np.testing.assert_allclose(result.depth, depth, rtol=1e-6)
    assert result.counts["nan"] == int(np.isnan(depth).sum())
    assert result.counts["kept"] == int(np.isfinite(depth).sum())


def test_register_depth_shifts_by_the_disparity_of_the_baseline() -> None:
    # A 32 x 24 ToF camera 5 cm to the right of a 64 x 48 RGB camera (p_rgb = p_tof - 0.05 x)
    # looks at a wall 2 m away. By hand: x_rgb = (c - 15.5) / 40 * 2 - 0.05, so
    # u = 80 * x_rgb / 2 + 31.3 = 2c - 1.7 -> col 2c - 2; v = 2 (r - 11.5) + 23.3 = 2r + 0.3 -> row 2r.
    tof = Intrinsics(fx=40.0, fy=40.0, cx=15.5, cy=11.5, width=32, height=24)
    rgb = Intrinsics(fx=80.0, fy=80.0, cx=31.3, cy=23.3, width=64, height=48)
    depth = np.full((24, 32), 2.0, dtype=np.float32)
    tof_to_rgb = Extrinsic(np.eye(3), np.array([-0.05, 0.0, 0.0]))
    result = register_depth(depth, tof, tof_to_rgb, rgb, (48, 64))
    expected = np.zeros((48, 64), dtype=bool)
    expected[0::2, 0:61:2] = True  # ToF columns 1..31 -> 0..60; column 0 lands on col -2: outside
    np.testing.assert_array_equal(result.mask, expected)
    np.testing.assert_allclose(result.depth[expected], 2.0, rtol=1e-6)
    assert result.counts == {"kept": 24 * 31, "nan": 0, "behind": 0, "outside": 24, "occluded": 0}
    assert back_project(depth, tof).shape == (24 * 32, 3)
