"""core/sensor_view.py: the colour image in the depth sensor's view, and the sensor's output back in the
colour camera (z-buffer, unseen pixels filled, invalid pixels kept invalid)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.reprojection import fill_disocclusions, reproject_depth
from depth_sr_ros.core.sensor_view import SensorView, background_between

H, W = 96, 128
CAMERA = Intrinsics(fx=110.0, fy=110.0, cx=63.5, cy=47.5, width=W, height=H)
IDENTITY = Extrinsic(np.eye(3), np.zeros(3))
FAR_M, NEAR_M = 3.0, 1.5


def _pose(tx: float, ty: float) -> Extrinsic:
    """The depth sensor at (tx, ty) metres in the colour optical frame."""
    return Extrinsic(np.eye(3), np.array([tx, ty, 0.0]))


def _scene() -> np.ndarray:
    """Colour-view depth: a 3 m wall, a 1.5 m box in the middle (metres)."""
    depth = np.full((H, W), FAR_M, np.float32)
    depth[30:60, 50:80] = NEAR_M
    return depth


def _as_sensor_sees(depth: np.ndarray, pose: Extrinsic) -> np.ndarray:
    """The colour-view depth rendered from the sensor at `pose`, dense (what the sensor sees and
    the colour camera does not filled with the background, as the pipeline's output would be)."""
    return fill_disocclusions(reproject_depth(depth, CAMERA, pose.inverse(), CAMERA, depth.shape).depth)


def _texture() -> np.ndarray:
    """Colour that encodes its own pixel position: red = column, green = row."""
    rows, cols = np.indices((H, W))
    return np.stack([cols * 2, rows * 2, np.full_like(rows, 77)], axis=-1).astype(np.uint8)


def test_with_no_residual_both_warps_leave_the_images_as_they_are() -> None:
    view = SensorView(CAMERA, IDENTITY)
    rgb, depth = _texture(), _scene()
    np.testing.assert_array_equal(view.colour(rgb, depth[::4, ::4]), rgb)
    seen = view.to_colour(depth)
    np.testing.assert_array_equal(seen.depth, depth)
    np.testing.assert_array_equal(seen.source.reshape(-1), np.arange(H * W))
    assert not seen.unseen.any()


def test_the_colour_in_the_sensor_view_is_sampled_where_each_point_lands_in_the_colour_camera() -> None:
    tx, ty = 0.04, 0.02  # at 3 m: 1.47 px right, 0.73 px down in the colour camera
    wall = np.full((H // 4, W // 4), FAR_M, np.float32)
    guide = SensorView(CAMERA, _pose(tx, ty)).colour(_texture(), wall)
    inner = (slice(4, -4), slice(4, -4))
    expected_red = (np.arange(W) + CAMERA.fx * tx / FAR_M) * 2
    expected_green = (np.arange(H) + CAMERA.fy * ty / FAR_M) * 2
    np.testing.assert_allclose(guide[..., 0][inner], np.broadcast_to(expected_red, (H, W))[inner], atol=1.0)
    np.testing.assert_allclose(guide[..., 1][inner], np.broadcast_to(expected_green[:, None], (H, W))[inner], atol=1.0)


def test_the_sensors_depth_comes_back_where_the_colour_camera_sees_it() -> None:
    pose = _pose(0.05, 0.0)  # box: 3.7 px shift at 1.5 m, wall 1.8 px
    truth = _scene()
    seen = SensorView(CAMERA, pose).to_colour(_as_sensor_sees(truth, pose))
    shown = ~seen.unseen & np.isfinite(seen.depth)
    agree = np.abs(seen.depth - truth)[shown] < 1e-3
    assert agree.mean() > 0.99
    assert np.isfinite(seen.depth).all()  # the unseen pixels are filled


def test_a_gap_behind_an_edge_takes_the_background_and_a_border_strip_the_nearest_pixel() -> None:
    pose = _pose(0.1, 0.0)  # the sensor 10 cm right: it cannot see the wall just left of the box
    truth = _scene()
    seen = SensorView(CAMERA, pose).to_colour(_as_sensor_sees(truth, pose))
    gap = seen.unseen[40, 40:50]
    assert gap[-3:].all(), "the wall just left of the box is hidden from a sensor to the right"
    np.testing.assert_allclose(seen.depth[35:55, 40:50][seen.unseen[35:55, 40:50]], FAR_M, atol=1e-3)
    assert seen.unseen[:, 0].all(), "the colour camera's left border lies outside the sensor's view"
    np.testing.assert_allclose(seen.depth[:, :2], FAR_M, atol=1e-3)


def test_a_border_strip_from_a_vertical_baseline_is_filled_from_above_not_across() -> None:
    pose = _pose(0.05, -0.04)  # above the camera: the bottom rows are out of the sensor's view
    truth = _scene()
    truth[70:, 20:40] = NEAR_M  # a near object reaching the bottom border
    seen = SensorView(CAMERA, pose).to_colour(_as_sensor_sees(truth, pose))
    bottom = seen.unseen[-1]
    assert bottom[30:100].all()
    np.testing.assert_allclose(seen.depth[-1, 25:35], NEAR_M, atol=1e-3)
    np.testing.assert_allclose(seen.depth[-1, 60:100], FAR_M, atol=1e-3)


def test_pixels_the_pipeline_left_invalid_stay_invalid_and_are_not_filled() -> None:
    pose = _pose(0.03, 0.0)
    sensor = _as_sensor_sees(_scene(), pose)
    sensor[70:90, 10:30] = np.nan  # a hole too large for the hole policy
    seen = SensorView(CAMERA, pose).to_colour(sensor)
    hole = ~np.isfinite(seen.depth)
    assert 300 <= hole.sum() <= 420  # the 20 x 20 block, shifted by 1.1 px (its edge columns may split)
    assert not (hole & seen.unseen).any()
    assert (seen.source[hole] == -1).all()


def test_carry_takes_a_sensor_view_map_along_and_zero_where_unseen() -> None:
    pose = _pose(0.1, 0.0)
    sensor = _as_sensor_sees(_scene(), pose)
    seen = SensorView(CAMERA, pose).to_colour(sensor)
    index = np.arange(H * W, dtype=np.float32).reshape(H, W)
    carried = seen.carry(index)
    np.testing.assert_array_equal(carried[~seen.unseen], seen.source[~seen.unseen].astype(np.float32))
    assert (carried[seen.unseen] == 0).all() and seen.unseen.any()


def test_hostile_depth_values_give_no_warning_and_no_crash() -> None:
    view = SensorView(CAMERA, _pose(0.03, 0.01))
    hostile = np.full((H, W), FAR_M, np.float32)
    hostile[::7, ::5] = np.inf
    hostile[1::7, ::5] = -np.inf
    hostile[2::7, ::5] = -1.0
    hostile[3::7, ::5] = 0.0
    hostile[4::7, ::5] = 1e30
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guide = view.colour(_texture(), hostile[::4, ::4])
        seen = view.to_colour(hostile)
        empty = view.to_colour(np.full((H, W), np.nan, np.float32))
        unchanged = view.colour(_texture(), np.full((H // 4, W // 4), np.nan, np.float32))
    assert guide.shape == (H, W, 3) and guide.dtype == np.uint8
    assert not np.isinf(seen.depth).any() and (seen.depth[np.isfinite(seen.depth)] > 0).all()
    invalid = (~np.isfinite(hostile) | (hostile <= 0)).sum()  # 1e30 m is a depth; inf, -1 and 0 are not
    assert abs(int(np.isnan(seen.depth).sum()) - int(invalid)) <= invalid // 10  # they stay invalid, moved
    assert np.isnan(empty.depth).all()
    np.testing.assert_array_equal(unchanged, _texture())


def test_a_distorted_camera_with_no_residual_maps_each_pixel_to_itself() -> None:
    distorted = Intrinsics(fx=110.0, fy=110.0, cx=63.5, cy=47.5, width=W, height=H, distortion_model="plumb_bob",
                           d=(-0.2, 0.05, 0.001, -0.001, 0.0))
    seen = SensorView(distorted, IDENTITY).to_colour(_scene())
    assert (seen.source.reshape(-1) == np.arange(H * W)).mean() > 0.999


@pytest.mark.parametrize("direction", [(0.0, 1.0), (1.0, 0.0), (0.6, 0.8)])
def test_background_between_takes_the_farther_end_and_leaves_runs_open_at_one_end(direction) -> None:
    depth = np.full((20, 20), 2.0, np.float32)
    depth[:, 12:] = 1.0
    holes = np.zeros((20, 20), bool)
    holes[5:15, 8:12] = True
    holes[:, 0] = True  # open towards the border along a row
    depth[holes] = np.nan
    background_between(depth, holes, np.array(direction), steps=30)
    np.testing.assert_allclose(depth[5:15, 8:12], 2.0)  # the farther end (2 m), or both ends at 2 m
    assert np.isnan(depth[:, 0]).all()  # open at the border, one end at most: left to the nearest-pixel fill
