"""CameraInfo -> Intrinsics and CameraInfo scaling, against hand-computed numbers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.camera_info import Intrinsics, intrinsics_from_camera_info, scaled_camera_info_fields
from depth_sr_ros.core.errors import FrameError

TYPES = get_typestore(Stores.ROS2_JAZZY).types
D = [0.1, -0.2, 0.001, 0.002, 0.05]
R = [0.9, -0.1, 0.0, 0.1, 0.9, 0.0, 0.0, 0.0, 1.0]


def ros_camera_info(k, p=None, width=640, height=480, binning=(0, 0), roi=(0, 0, 0, 0)):
    """A real rosbags sensor_msgs/CameraInfo; roi is (x_offset, y_offset, width, height)."""
    fx, _, cx, _, fy, cy, *_ = k
    p = p if p is not None else [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0]
    return TYPES["sensor_msgs/msg/CameraInfo"](
        header=TYPES["std_msgs/msg/Header"](
            stamp=TYPES["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""
        ),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.array(D, np.float64),
        k=np.array(k, np.float64),
        r=np.array(R, np.float64),
        p=np.array(p, np.float64),
        binning_x=binning[0],
        binning_y=binning[1],
        roi=TYPES["sensor_msgs/msg/RegionOfInterest"](
            x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3], do_rectify=False
        ),
    )


K_VGA = [525.0, 0.0, 319.5, 0.0, 520.0, 239.5, 0.0, 0.0, 1.0]


def test_intrinsics_from_rosbags_camera_info():
    intrinsics = intrinsics_from_camera_info(ros_camera_info(K_VGA))
    assert intrinsics == Intrinsics(525.0, 520.0, 319.5, 239.5, 640, 480, "plumb_bob", tuple(D))


def test_intrinsics_from_any_object_with_the_core_fields():
    msg = SimpleNamespace(k=K_VGA, d=[], distortion_model="", width=640, height=480)
    intrinsics = intrinsics_from_camera_info(msg)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (525.0, 520.0, 319.5, 239.5)
    assert (intrinsics.width, intrinsics.height, intrinsics.d) == (640, 480, ())


def test_binning_and_roi_are_folded_in_like_image_geometry():
    # roi 200x100 at (100, 50), binned 2x2: the published image is 100x50.
    msg = ros_camera_info(K_VGA, binning=(2, 2), roi=(100, 50, 200, 100))
    intrinsics = intrinsics_from_camera_info(msg)
    assert (intrinsics.width, intrinsics.height) == (100, 50)
    assert intrinsics.fx == 262.5 and intrinsics.fy == 260.0
    assert intrinsics.cx == (319.5 - 100) / 2 and intrinsics.cy == (239.5 - 50) / 2


@pytest.mark.parametrize(
    "k",
    [
        [0.0, 0, 320, 0, 0.0, 240, 0, 0, 1],  # uncalibrated camera
        [525.0, 0, 320, 0, -1.0, 240, 0, 0, 1],
        [float("nan"), 0, 320, 0, 525.0, 240, 0, 0, 1],
        [525.0, 0, float("inf"), 0, 525.0, 240, 0, 0, 1],
        [525.0, 0, 320, 0, 525.0, 240, 0, 0],  # 8 values
    ],
)
def test_bad_camera_info(k):
    msg = SimpleNamespace(k=k, d=[], distortion_model="", width=640, height=480)
    with pytest.raises(FrameError) as caught:
        intrinsics_from_camera_info(msg)
    assert caught.value.reason == "bad_camera_info"


def test_zero_size_camera_info_is_bad():
    msg = SimpleNamespace(k=K_VGA, d=[], distortion_model="", width=0, height=480)
    with pytest.raises(FrameError) as caught:
        intrinsics_from_camera_info(msg)
    assert caught.value.reason == "bad_camera_info"


def test_intrinsics_scaled_and_k_matrix():
    scaled = Intrinsics(525.0, 520.0, 319.5, 239.5, 640, 480).scaled(160, 120)
    assert (scaled.fx, scaled.fy, scaled.cx, scaled.cy) == (131.25, 130.0, 79.875, 59.875)
    assert (scaled.width, scaled.height) == (160, 120)
    np.testing.assert_array_equal(scaled.k_matrix(), [[131.25, 0, 79.875], [0, 130.0, 59.875], [0, 0, 1]])
    hash(scaled)  # frozen, usable as a cache key


def test_scaled_camera_info_scales_k_and_p_keeps_r_and_d():
    # A right stereo camera: P has Tx = -fx * baseline = -52.5.
    p = [525.0, 0, 319.5, -52.5, 0, 520.0, 239.5, 0, 0, 0, 1, 0]
    fields = scaled_camera_info_fields(ros_camera_info(K_VGA, p), 1280, 960)
    assert (fields.width, fields.height) == (1280, 960)
    np.testing.assert_allclose(fields.k, [1050.0, 0, 639.0, 0, 1040.0, 479.0, 0, 0, 1])
    np.testing.assert_allclose(fields.p, [1050.0, 0, 639.0, -105.0, 0, 1040.0, 479.0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(fields.r, R)
    np.testing.assert_array_equal(fields.d, D)
    assert fields.distortion_model == "plumb_bob"
    assert fields.k.dtype == np.float64 and fields.k.shape == (9,) and fields.p.shape == (12,)


def test_scaled_camera_info_folds_roi_and_binning_then_resets_them():
    msg = ros_camera_info(K_VGA, binning=(2, 2), roi=(100, 50, 200, 100))
    fields = scaled_camera_info_fields(msg, 200, 100)  # the 100x50 published image, x2
    # binned+cropped: fx 262.5, cx 109.75, fy 260, cy 94.75; then x2
    np.testing.assert_allclose(fields.k, [525.0, 0, 219.5, 0, 520.0, 189.5, 0, 0, 1])
    np.testing.assert_allclose(fields.p, [525.0, 0, 219.5, 0, 0, 520.0, 189.5, 0, 0, 0, 1, 0])
    assert (fields.binning_x, fields.binning_y) == (0, 0)
    roi = fields.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height, roi.do_rectify) == (0, 0, 0, 0, False)
    # The output describes itself: reading it back gives the scaled intrinsics.
    again = intrinsics_from_camera_info(fields)
    assert (again.fx, again.cx, again.width, again.height) == (525.0, 219.5, 200, 100)


def test_scaled_camera_info_does_not_modify_the_message():
    msg = ros_camera_info(K_VGA)
    scaled_camera_info_fields(msg, 160, 120)
    np.testing.assert_array_equal(msg.k, K_VGA)


def test_scaling_an_uncalibrated_camera_info_is_a_frame_error():
    msg = SimpleNamespace(k=[0.0] * 9, p=[0.0] * 12, r=R, d=[], distortion_model="", width=640, height=480)
    with pytest.raises(FrameError) as caught:
        scaled_camera_info_fields(msg, 320, 240)
    assert caught.value.reason == "bad_camera_info"


ROS1 = get_typestore(Stores.ROS1_NOETIC).types


def ros1_camera_info(k, width=640, height=480):
    """A rosbags ROS 1 sensor_msgs/CameraInfo: the matrices are named K, D, R, P."""
    fx, _, cx, _, fy, cy, *_ = k
    return ROS1["sensor_msgs/msg/CameraInfo"](
        header=ROS1["std_msgs/msg/Header"](seq=7, stamp=ROS1["builtin_interfaces/msg/Time"](sec=3, nanosec=5),
                                           frame_id="/camera_rgb_optical_frame"),
        height=height, width=width, distortion_model="plumb_bob", D=np.array(D, np.float64),
        K=np.array(k, np.float64), R=np.array(R, np.float64),
        P=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], np.float64), binning_x=0, binning_y=0,
        roi=ROS1["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def test_ros1_camera_info_reads_like_the_ros2_one():
    ros1, ros2 = ros1_camera_info(K_VGA), ros_camera_info(K_VGA)
    assert not hasattr(ros1, "k")  # the ROS 1 spelling only
    assert intrinsics_from_camera_info(ros1) == intrinsics_from_camera_info(ros2)
    scaled1, scaled2 = scaled_camera_info_fields(ros1, 160, 120), scaled_camera_info_fields(ros2, 160, 120)
    for name in ("k", "p", "r", "d"):
        np.testing.assert_array_equal(getattr(scaled1, name), getattr(scaled2, name))


def test_ros1_camera_info_faults_are_found_by_either_spelling():
    msg = ros1_camera_info(K_VGA)
    msg.P[3] = np.nan
    with pytest.raises(FrameError, match="P holds NaN"):
        intrinsics_from_camera_info(msg)


def test_stamps_and_frames_read_by_either_spelling():
    from depth_sr_ros.core.fields import frame_id, stamp_ns, time_ns

    msg = ros1_camera_info(K_VGA)
    assert stamp_ns(msg) == 3_000_000_005
    assert frame_id(msg) == "camera_rgb_optical_frame"  # ROS 1's leading "/" dropped
    assert time_ns(SimpleNamespace(secs=2, nsecs=9)) == 2_000_000_009  # genpy's names
