"""The replay tf buffer: static chains, interpolated dynamic transforms, errors, --extrinsic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.transforms import TransformBuffer, parse_extrinsic, slerp

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
T = TYPESTORE.types
SECOND = 1_000_000_000


def _tf(parent: str, child: str, xyz, quat, stamp_ns: int = 0):
    return T["geometry_msgs/msg/TransformStamped"](
        header=T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // SECOND, nanosec=stamp_ns % SECOND),
            frame_id=parent,
        ),
        child_frame_id=child,
        transform=T["geometry_msgs/msg/Transform"](
            translation=T["geometry_msgs/msg/Vector3"](x=xyz[0], y=xyz[1], z=xyz[2]),
            rotation=T["geometry_msgs/msg/Quaternion"](x=quat[0], y=quat[1], z=quat[2], w=quat[3]),
        ),
    )


def _tf_message(*transforms):
    return T["tf2_msgs/msg/TFMessage"](transforms=list(transforms))


def _yaw(angle: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2))


# URDF optical joint rpy (-pi/2, 0, -pi/2): the optical frame's pose in the camera body frame
OPTICAL_IN_BODY = (-0.5, 0.5, -0.5, 0.5)


def _robot() -> TransformBuffer:
    buffer = TransformBuffer()
    buffer.add_message(
        _tf_message(
            _tf("base_link", "camera_link", (0.2, 0.0, 0.5), (0, 0, 0, 1)),
            _tf("camera_link", "camera_optical_frame", (0, 0, 0), OPTICAL_IN_BODY),
            _tf("/base_link", "/lidar", (0.1, 0.0, 0.8), _yaw(math.pi / 2)),  # leading "/" is ignored
        ),
        static=True,
    )
    return buffer


def test_static_chain_through_the_common_ancestor() -> None:
    lidar_to_camera = _robot().lookup("camera_optical_frame", "lidar", 5 * SECOND)
    # By hand: a point 3 m along the LiDAR's x axis (which points along base_link's +y) sits at
    # base (0.1, 3, 0.8), at camera body (-0.1, 3, 0.3): 0.1 m behind, 3 m left, 0.3 m up,
    # so in the optical frame (x right, y down, z forward) at (-3, -0.3, -0.1).
    np.testing.assert_allclose(lidar_to_camera.apply(np.array([[3.0, 0.0, 0.0]])), [[-3.0, -0.3, -0.1]],
                               atol=1e-12)
    back = _robot().lookup("lidar", "camera_optical_frame", 0)
    np.testing.assert_allclose(back.compose(lidar_to_camera).rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(back.compose(lidar_to_camera).translation, np.zeros(3), atol=1e-12)


def test_dynamic_transform_is_interpolated_linearly_and_by_slerp() -> None:
    buffer = _robot()
    buffer.add_message(_tf_message(_tf("odom", "base_link", (0, 0, 0), _yaw(0.0), 1 * SECOND)), static=False)
    buffer.add_message(_tf_message(_tf("odom", "base_link", (2.0, 0, 0), _yaw(math.pi / 2), 2 * SECOND)),
                       static=False)
    base_to_odom = buffer.lookup("odom", "base_link", 1 * SECOND + SECOND // 4)
    np.testing.assert_allclose(base_to_odom.translation, [0.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(base_to_odom.as_quaternion(), _yaw(math.pi / 8), atol=1e-12)
    # chained with the static tree: the camera's origin in odom at t = 2 s
    camera = buffer.lookup("odom", "camera_optical_frame", 2 * SECOND)
    np.testing.assert_allclose(camera.translation, [2.0, 0.2, 0.5], atol=1e-12)
    # stamp 0 is "latest"
    np.testing.assert_allclose(buffer.lookup("odom", "base_link", 0).translation, [2.0, 0, 0])


def test_extrapolation_is_an_error_unless_within_the_limit() -> None:
    buffer = TransformBuffer()
    buffer.add(_tf("odom", "base_link", (1.0, 0, 0), _yaw(0.0), 10 * SECOND), static=False)
    buffer.add(_tf("odom", "base_link", (2.0, 0, 0), _yaw(0.0), 11 * SECOND), static=False)
    with pytest.raises(FrameError) as error:
        buffer.lookup("odom", "base_link", 11 * SECOND + 1000)
    assert error.value.reason == "no_transform"
    lenient = TransformBuffer(max_extrapolation_ns=SECOND // 10)
    lenient.add(_tf("odom", "base_link", (2.0, 0, 0), _yaw(0.0), 11 * SECOND), static=False)
    np.testing.assert_allclose(lenient.lookup("odom", "base_link", 11 * SECOND + 1000).translation, [2, 0, 0])


def test_unknown_and_disconnected_frames_are_no_transform() -> None:
    buffer = _robot()
    buffer.add(_tf("map", "dock", (0, 0, 0), _yaw(0.0)), static=True)
    for target, source in (("camera_optical_frame", "velodyne"), ("camera_optical_frame", "dock")):
        with pytest.raises(FrameError) as error:
            buffer.lookup(target, source, 0)
        assert error.value.reason == "no_transform"


def test_same_frame_is_identity() -> None:
    identity = TransformBuffer().lookup("camera", "/camera", 0)
    np.testing.assert_array_equal(identity.rotation, np.eye(3))


def test_slerp_endpoints_and_midpoint() -> None:
    q0, q1 = np.array(_yaw(0.0)), np.array(_yaw(2.0))
    np.testing.assert_allclose(slerp(q0, q1, 0.0), q0, atol=1e-12)
    np.testing.assert_allclose(slerp(q0, q1, 1.0), q1, atol=1e-12)
    np.testing.assert_allclose(slerp(q0, q1, 0.5), _yaw(1.0), atol=1e-12)
    np.testing.assert_allclose(slerp(q0, -q1, 0.5), _yaw(1.0), atol=1e-12)  # shortest path


def test_parse_extrinsic() -> None:
    extrinsic = parse_extrinsic("0.1, -0.2 0.3  0 0 0.7071068 0.7071068")
    np.testing.assert_allclose(extrinsic.translation, [0.1, -0.2, 0.3])
    np.testing.assert_allclose(extrinsic.apply(np.array([[1.0, 0, 0]])), [[0.1, 0.8, 0.3]], atol=1e-6)
    for bad in ("1 2 3", "a b c d e f g", "0 0 0 0 0 0 0", "0 0 nan 0 0 0 1"):
        with pytest.raises(ValueError):
            parse_extrinsic(bad)


def test_ros1_tf_messages_fill_the_same_tree() -> None:
    """ROS 1 tf/tfMessage and TransformStamped (header with seq) give the same lookups."""
    ros1 = get_typestore(Stores.ROS1_NOETIC).types

    def tf1(parent: str, child: str, xyz, quat):
        return ros1["geometry_msgs/msg/TransformStamped"](
            header=ros1["std_msgs/msg/Header"](seq=1, stamp=ros1["builtin_interfaces/msg/Time"](sec=0, nanosec=0),
                                               frame_id=parent),
            child_frame_id=child,
            transform=ros1["geometry_msgs/msg/Transform"](
                translation=ros1["geometry_msgs/msg/Vector3"](x=xyz[0], y=xyz[1], z=xyz[2]),
                rotation=ros1["geometry_msgs/msg/Quaternion"](x=quat[0], y=quat[1], z=quat[2], w=quat[3])))

    buffer = TransformBuffer()
    buffer.add(tf1("/base_link", "/camera_link", (0.2, 0.0, 0.5), (0, 0, 0, 1)), static=True)
    buffer.add(tf1("/camera_link", "/camera_optical_frame", (0, 0, 0), OPTICAL_IN_BODY), static=True)
    expected = _robot().lookup("base_link", "camera_optical_frame", 0)
    got = buffer.lookup("base_link", "camera_optical_frame", 0)
    np.testing.assert_allclose(got.rotation, expected.rotation, atol=1e-12)
    np.testing.assert_allclose(got.translation, expected.translation, atol=1e-12)
