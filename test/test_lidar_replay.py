"""LiDAR input: FrameProcessor.process_lidar on hand-made clouds."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.frame_processor import FrameProcessor
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.pointcloud import FLOAT32, PointCloudFields, PointFieldSpec
from depth_sr_ros.core.projection import Extrinsic, back_project

# REP 103 body (x forward, y left, z up) -> optical (x right, y down, z forward)
BODY_TO_OPTICAL_Q = (0.5, -0.5, 0.5, 0.5)
LIDAR_FIELDS = [PointFieldSpec("x", 0, FLOAT32), PointFieldSpec("y", 4, FLOAT32), PointFieldSpec("z", 8, FLOAT32),
                PointFieldSpec("intensity", 12, FLOAT32)]


def lidar_cloud_fields(points: np.ndarray) -> PointCloudFields:
    """An unorganised x, y, z, intensity float32 cloud (16-byte points, as Velodyne/Ouster drivers)."""
    packed = np.zeros((len(points), 4), dtype="<f4")
    packed[:, :3] = points
    packed[:, 3] = 100.0
    data = packed.reshape(-1).view(np.uint8)
    return PointCloudFields(height=1, width=len(points), fields=LIDAR_FIELDS, is_bigendian=False, point_step=16,
                            row_step=16 * len(points), data=data, is_dense=False)


def _namespace_cloud(points: np.ndarray) -> SimpleNamespace:
    fields = lidar_cloud_fields(points)
    return SimpleNamespace(**{**vars(fields), "data": fields.data.tobytes()})


def _image_msg(rgb: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", is_bigendian=0,
                           step=rgb.shape[1] * 3, data=rgb.tobytes())


def _info_msg(camera: Intrinsics) -> SimpleNamespace:
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    return SimpleNamespace(width=camera.width, height=camera.height, distortion_model=camera.distortion_model,
                           d=list(camera.d), k=[fx, 0, cx, 0, fy, cy, 0, 0, 1], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0])


SMALL = Intrinsics(fx=60.0, fy=60.0, cx=31.5, cy=23.5, width=64, height=48, distortion_model="plumb_bob",
                   d=(0.02, -0.01, 0.0, 0.0, 0.0))
LIDAR_TO_CAMERA = Extrinsic.from_translation_quaternion((0.02, -0.1, -0.05), BODY_TO_OPTICAL_Q)


def _box_scene() -> tuple[np.ndarray, np.ndarray]:
    """RGB and depth (metres) of a bright box at 1.2 m before a dark wall at 2.5 m, 64 x 48."""
    rgb = np.full((48, 64, 3), 40, np.uint8)
    depth = np.full((48, 64), 2.5, np.float32)
    rgb[14:34, 20:44] = 210
    depth[14:34, 20:44] = 1.2
    return rgb, depth


def _every_other_row_cloud(depth: np.ndarray, camera: Intrinsics) -> np.ndarray:
    """The scene's points on every other image row, in the LiDAR frame."""
    sparse = np.full_like(depth, np.nan)
    sparse[::2] = depth[::2]
    return LIDAR_TO_CAMERA.inverse().apply(back_project(sparse, camera))


@pytest.fixture(scope="module")
def processor() -> FrameProcessor:
    return FrameProcessor(DepthSR(SRConfig(scale=2, backbone="normalized_conv", max_hole_radius=2)))


def test_process_lidar_recovers_the_scene_with_counts_and_the_usual_outputs(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    lidar_points = _every_other_row_cloud(depth, SMALL)
    extra = np.array([[np.nan, 0, 0], [-3.0, 0.0, 0.0], [1.0, 5.0, 0.0]])  # NaN, behind, far out to the left
    cloud = _namespace_cloud(np.concatenate([lidar_points, extra]))
    out = processor.process_lidar(_image_msg(rgb), _info_msg(SMALL), cloud, LIDAR_TO_CAMERA, want_points=True)
    assert out.depth.shape == (48, 64)
    assert (out.image.width, out.image.height, out.image.encoding) == (64, 48, "32FC1")
    assert (out.camera_info.width, out.camera_info.height) == (64, 48)
    assert out.points is not None and (out.points.width, out.points.height) == (64, 48)
    counts = out.input_counts
    assert sum(counts.values()) == len(lidar_points) + 3
    assert (counts["nan"], counts["behind"], counts["outside"]) == (1, 1, 1)
    # 24 x 32 grid: each grid row gets one LiDAR row; two points per grid pixel, the nearer kept
    assert counts["kept"] == 24 * 32 and counts["occluded"] == len(lidar_points) - 24 * 32
    assert "project" in out.timings_ms
    finite = np.isfinite(out.depth)
    assert finite.mean() > 0.95
    error = np.abs(out.depth - depth)[finite]
    assert np.median(error) < 0.01 and np.mean(error > 0.3) < 0.03


def test_process_lidar_without_points_in_view_is_a_frame_error(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    behind_the_camera = Extrinsic.from_translation_quaternion((0, 0, 0), (0.0, 1.0, 0.0, 0.0)).compose(
        LIDAR_TO_CAMERA)
    cloud = _namespace_cloud(_every_other_row_cloud(depth, SMALL))
    with pytest.raises(FrameError) as error:
        processor.process_lidar(_image_msg(rgb), _info_msg(SMALL), cloud, behind_the_camera, want_points=False)
    assert error.value.reason == "no_points_in_view"


def test_process_lidar_bad_cloud_and_missing_info_are_frame_errors(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    cloud = _namespace_cloud(_every_other_row_cloud(depth, SMALL))
    cloud.data = cloud.data[:-3]
    with pytest.raises(FrameError) as error:
        processor.process_lidar(_image_msg(rgb), _info_msg(SMALL), cloud, LIDAR_TO_CAMERA, want_points=False)
    assert error.value.reason == "truncated_data"
    with pytest.raises(FrameError) as error:
        processor.process_lidar(_image_msg(rgb), None, cloud, LIDAR_TO_CAMERA, want_points=False)
    assert error.value.reason == "missing_camera_info"
