"""launch_testing: sr.launch.py starts depth_sr_node; real RGB + depth pairs in, SR depth and cloud out.

Runs where ROS 2 (Humble or Jazzy) is sourced and the package is built (`colcon test` or
`launch_test test/test_launch_node.py`); skipped elsewhere. The inputs are the bundled TUM fr1
frames: RGB 640x480 `rgb8` and depth decimated x4 to 160x120 `16UC1`, the way a ToF camera
publishes; the node runs the `bicubic` backbone on the CPU so no weights or GPU are needed.
"""

import os
import time
import unittest

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")

import cv2
import launch_testing.actions
import launch_testing.asserts
import numpy as np
from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Time
from launch.actions import IncludeLaunchDescription
from launch.launch_description import LaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from depth_sr_ros.core.camera_info import scaled_camera_info_fields
from depth_sr_ros.core.image_msg import ImageFields
from depth_sr_ros.replay.sample_bag import (
    FRAME_ID,
    SAMPLE_DIR,
    decimate_depth,
    rgb_camera_info,
    tum_depth_to_millimetres,
)
from depth_sr_ros.ros.rclpy_messages import rclpy_builder

NAMESPACE = "sr_test"
RGB_TOPIC = "/sr_test_camera/color/image_raw"
RGB_INFO_TOPIC = "/sr_test_camera/color/camera_info"
DEPTH_TOPIC = "/sr_test_camera/depth/image_raw"
DEPTH_INFO_TOPIC = "/sr_test_camera/depth/camera_info"
TIMEOUT_S = 90.0  # configure imports torch and builds the pipeline; slow CI machines


@pytest.mark.launch_test
def generate_test_description():
    launch_file = os.path.join(get_package_share_directory("depth_sr_ros"), "launch", "sr.launch.py")
    sr = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(launch_file),
        launch_arguments={
            "namespace": NAMESPACE,
            "backbone": "bicubic",
            "scale": "4",
            "device": "cpu",
            "rgb_image": RGB_TOPIC,
            "rgb_info": RGB_INFO_TOPIC,
            "depth_image": DEPTH_TOPIC,
            "depth_info": DEPTH_INFO_TOPIC,
        }.items(),
    )
    return LaunchDescription([sr, launch_testing.actions.ReadyToTest()])


def _image_fields(array, encoding):
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return ImageFields(array.shape[0], array.shape[1], encoding, 0, data.size // array.shape[0], data)


def _header(stamp_ns):
    return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=FRAME_ID)


class TestDepthSRNode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("depth_sr_launch_test")
        builder = rclpy_builder()
        rgb = cv2.cvtColor(
            cv2.imread(str(SAMPLE_DIR / "rgb" / "00.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
        )
        raw = cv2.imread(str(SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
        depth_mm = decimate_depth(tum_depth_to_millimetres(raw))
        rgb_info = rgb_camera_info(SAMPLE_DIR / "intrinsics.json")
        cls.builder = builder
        cls.rgb_fields = _image_fields(rgb, "rgb8")
        cls.rgb_info_fields = rgb_info
        cls.depth_fields = _image_fields(depth_mm, "16UC1")
        cls.depth_info_fields = scaled_camera_info_fields(rgb_info, depth_mm.shape[1], depth_mm.shape[0])

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_sr_depth_and_points_arrive_with_size_encoding_and_stamp(self):
        node, builder = self.node, self.builder
        qos = qos_profile_sensor_data
        publishers = {
            "rgb": node.create_publisher(Image, RGB_TOPIC, qos),
            "rgb_info": node.create_publisher(CameraInfo, RGB_INFO_TOPIC, qos),
            "depth": node.create_publisher(Image, DEPTH_TOPIC, qos),
            "depth_info": node.create_publisher(CameraInfo, DEPTH_INFO_TOPIC, qos),
        }
        received = {"image": [], "info": [], "points": []}
        node.create_subscription(Image, f"/{NAMESPACE}/depth_sr/image", received["image"].append, qos)
        node.create_subscription(
            CameraInfo, f"/{NAMESPACE}/depth_sr/camera_info", received["info"].append, qos
        )
        node.create_subscription(PointCloud2, f"/{NAMESPACE}/depth_sr/points", received["points"].append, qos)

        sent_stamps = set()
        stamp_ns = 1_700_000_000 * 10**9
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not (
            received["image"] and received["points"] and received["info"]
        ):
            stamp_ns += 100_000_000
            depth_stamp = stamp_ns + 4_000_000  # within the default 0.05 s slop
            publishers["rgb"].publish(builder.image(_header(stamp_ns), self.rgb_fields))
            publishers["rgb_info"].publish(builder.camera_info(_header(stamp_ns), self.rgb_info_fields))
            publishers["depth"].publish(builder.image(_header(depth_stamp), self.depth_fields))
            publishers["depth_info"].publish(
                builder.camera_info(_header(depth_stamp), self.depth_info_fields)
            )
            sent_stamps.add((stamp_ns // 10**9, stamp_ns % 10**9))
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.05)

        self.assertTrue(received["image"], "no depth_sr/image within the timeout")
        self.assertTrue(received["points"], "no depth_sr/points within the timeout")
        self.assertTrue(received["info"], "no depth_sr/camera_info within the timeout")

        image = received["image"][0]
        self.assertEqual((image.width, image.height, image.encoding), (640, 480, "32FC1"))
        self.assertEqual(image.step, 640 * 4)
        self.assertEqual(len(image.data), 640 * 4 * 480)
        self.assertIn((image.header.stamp.sec, image.header.stamp.nanosec), sent_stamps)
        self.assertEqual(image.header.frame_id, FRAME_ID)
        depth = np.frombuffer(bytes(image.data), dtype="<f4").reshape(480, 640)
        self.assertGreater(np.isfinite(depth).mean(), 0.5)
        self.assertTrue(0.3 < np.nanmedian(depth) < 6.0)

        info = received["info"][0]
        self.assertEqual((info.width, info.height), (640, 480))

        points = received["points"][0]
        self.assertEqual(points.width * points.height, 640 * 480)
        self.assertTrue({"x", "y", "z"} <= {f.name for f in points.fields})
        self.assertEqual(len(points.data), points.row_step * points.height)
        self.assertIn((points.header.stamp.sec, points.header.stamp.nanosec), sent_stamps)
        self.assertEqual(points.header.frame_id, FRAME_ID)


@launch_testing.post_shutdown_test()
class TestDepthSRNodeShutdown(unittest.TestCase):
    def test_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
