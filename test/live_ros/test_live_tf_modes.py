"""`lidar` and `unaligned_depth` input modes on a real TF tree: a static transform from the probe's
tf2_ros StaticTransformBroadcaster, the real TUM depth as a LiDAR-like cloud in a rotated and
shifted frame, a missing transform counted, and the mode switched through deactivate/activate."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest

from . import harness

harness.require_ros()

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import Image, PointCloud2
from tf2_ros import StaticTransformBroadcaster

from depth_sr_ros.core.camera_info import intrinsics_from_camera_info
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.pointcloud import PointCloudFields, PointFieldSpec, point_cloud_fields
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.replay.sample_bag import FRAME_ID, SAMPLE_DIR, read_sample_depth_mm
from depth_sr_ros.ros.live_probe import Frame
from depth_sr_ros.ros.rclpy_messages import rclpy_builder

NS = "/tf_modes"
NODE = f"{NS}/depth_sr_node"
PREFIX = f"{NS}/"
LIDAR_FRAME = "lidar_link"
TOF_FRAME = "tof_optical_frame"
# the LiDAR's pose in the camera optical frame (x forward, z up -> z forward, y down), offset
LIDAR_TRANSLATION, LIDAR_QUATERNION = (0.05, -0.1, 0.02), (0.5, -0.5, 0.5, 0.5)
LIDAR_POSE = Extrinsic.from_translation_quaternion(LIDAR_TRANSLATION, LIDAR_QUATERNION)
FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


@pytest.fixture(scope="module")
def node(installed, tmp_path_factory):
    params = harness.params_file(tmp_path_factory.mktemp("tf_modes"), health_period=1.0, tf_timeout=0.2)
    arguments = ("input_mode:=lidar", "backbone:=guided_filter", "namespace:=tf_modes", f"params_file:={params}")
    with harness.launch(installed, *arguments) as launched:
        yield launched




@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """The full-resolution TUM sensor depth of frame 00 in metres (NaN = hole)."""
    depth = read_sample_depth_mm(SAMPLE_DIR, "00").astype(np.float32) / 1000.0
    depth[depth == 0] = np.nan
    return depth


def _transform(child: str, translation, quaternion) -> TransformStamped:
    """`child`'s pose in the camera optical frame, as `static_transform_publisher` sends it."""
    transform = TransformStamped()
    transform.header.frame_id, transform.child_frame_id = FRAME_ID, child
    t = transform.transform
    t.translation.x, t.translation.y, t.translation.z = (float(v) for v in translation)
    t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w = (float(v) for v in quaternion)
    return transform


def _lidar_cloud(frame: Frame, truth: np.ndarray, stamp_ns: int):
    """Every 4th pixel of the sensor depth as points in the LiDAR frame (a sparse scan)."""
    camera = intrinsics_from_camera_info(frame.rgb_info)
    organised = point_cloud_fields(truth, camera, stride=4)
    xyz = np.frombuffer(organised.data.tobytes(), dtype="<f4").reshape(-1, organised.point_step // 4)[:, :3]
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    in_lidar = (xyz.astype(np.float64) - LIDAR_POSE.translation) @ LIDAR_POSE.rotation  # inverse pose
    data = np.ascontiguousarray(in_lidar, dtype="<f4").reshape(-1).view(np.uint8)
    fields = [PointFieldSpec(axis, 4 * i, FLOAT32) for i, axis in enumerate("xyz")]
    cloud = PointCloudFields(1, len(in_lidar), fields, False, 12, 12 * len(in_lidar), data, True)
    header = copy.deepcopy(frame.rgb.header)
    header.frame_id = LIDAR_FRAME
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns + 5_000_000, 1_000_000_000)  # 5 ms after the RGB
    return rclpy_builder().point_cloud(header, cloud)


def _send_lidar(probe, frame, truth, images, timeout=harness.FRAME_TIMEOUT_S):
    """RGB + CameraInfo + cloud until the output with the RGB stamp arrives."""
    deadline = time.monotonic() + timeout
    stamp = time.time_ns()
    cloud = _lidar_cloud(frame, truth, stamp)
    while True:
        probe.feed(Frame(frame.rgb, frame.rgb_info, None, None), stamp, prefix=PREFIX)
        probe.publisher(PointCloud2, f"{NS}/lidar/points").publish(cloud)
        try:
            return images.with_stamp(stamp, min(5.0, timeout))
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def _close_to_truth(image, truth: np.ndarray) -> None:
    out = depth_from_image(image)
    both = np.isfinite(out) & np.isfinite(truth)
    assert out.shape == (480, 640) and both.mean() > 0.5
    assert np.median(np.abs(out[both] - truth[both])) < 0.05  # metres


def test_lidar_without_a_transform_is_counted_then_projected_once_tf_has_it(node, probe, frame, truth):
    with (
        probe.collect(Image, f"{NS}/depth_sr/image") as images,
        probe.collect(DiagnosticArray, "/diagnostics") as diagnostics,
    ):
        probe.wait_for_subscribers(f"{NS}/lidar/points", 1, 30.0)
        deadline = time.monotonic() + harness.FRAME_TIMEOUT_S
        while not node.count(rf"frame skipped \(no_transform\).*{LIDAR_FRAME}"):  # no TF yet
            assert time.monotonic() < deadline, node.output()[-3000:]
            with pytest.raises(TimeoutError):  # and no output
                _send_lidar(probe, frame, truth, images, timeout=1.0)
        harness.wait_for_status(diagnostics, lambda v: int(v.get("skipped no_transform", 0)) >= 1)

        broadcaster = StaticTransformBroadcaster(probe.node)
        broadcaster.sendTransform(
            [_transform(LIDAR_FRAME, LIDAR_TRANSLATION, LIDAR_QUATERNION), _transform(TOF_FRAME, (0, 0, 0), (0, 0, 0, 1))]
        )
        image = _send_lidar(probe, frame, truth, images)
    assert image.header.frame_id == FRAME_ID
    _close_to_truth(image, truth)


def test_unaligned_depth_after_switching_the_mode_while_inactive(node, probe, frame, truth):
    assert probe.change_state(NODE, "deactivate")
    (result,) = probe.set_parameters(NODE, {"input_mode": "unaligned_depth"})
    assert result.successful, result.reason
    assert probe.change_state(NODE, "activate")
    node.wait_for(r"active: unaligned_depth input", 10.0)
    tof = Frame(frame.rgb, frame.rgb_info, copy.deepcopy(frame.depth), copy.deepcopy(frame.depth_info),
                frame.depth_offset_ns)
    tof.depth.header.frame_id = tof.depth_info.header.frame_id = TOF_FRAME
    with probe.collect(Image, f"{NS}/depth_sr/image") as images:
        probe.wait_for_subscribers(f"{NS}/depth/image", 1, 30.0)
        image = harness.roundtrip(probe, tof, images, time.time_ns(), PREFIX)
    assert image.header.frame_id == FRAME_ID  # outputs live in the RGB optical frame
    _close_to_truth(image, truth)


def test_sigint_to_the_launch_process_ends_everything_cleanly(node):
    harness.stop_cleanly(node, group=False)
