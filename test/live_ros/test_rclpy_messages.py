"""The node's rclpy message builder with rclpy's real sensor_msgs classes: the data array goes into
the message as it is (the generated constructor would copy 4.9 MB per XYZRGB cloud once more), and
the messages serialise to what the field sets hold."""

from __future__ import annotations

import numpy as np

from . import harness

harness.require_ros()

from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.image_msg import depth_from_image, depth_to_image_fields
from depth_sr_ros.core.pointcloud import point_cloud_fields
from depth_sr_ros.ros.rclpy_messages import rclpy_builder, uint8_array


def test_data_arrays_go_into_the_messages_uncopied_and_serialise_intact():
    builder = rclpy_builder()
    made = []

    def adapter(data):
        made.append(uint8_array(data))
        return made[-1]

    builder.data_adapter = adapter
    depth = np.linspace(0.5, 4.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    depth[5, 7] = np.nan
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    camera = Intrinsics(fx=50.0, fy=50.0, cx=32.0, cy=24.0, width=64, height=48)
    header = Header(frame_id="camera_color_optical_frame")

    cloud_fields = point_cloud_fields(depth, camera, rgb)
    cloud = builder.point_cloud(header, cloud_fields)
    assert cloud.data is made[-1]
    image = builder.image(header, depth_to_image_fields(depth, "32FC1"))
    assert image.data is made[-1]

    cloud_back = deserialize_message(serialize_message(cloud), PointCloud2)
    assert bytes(cloud_back.data) == cloud_fields.data.tobytes()
    assert [f.name for f in cloud_back.fields] == [f.name for f in cloud_fields.fields]
    np.testing.assert_array_equal(depth_from_image(deserialize_message(serialize_message(image), Image)), depth)
