"""RealSense SDK recordings' stream extrinsics, camera infos and depth units (`replay/realsense_bag.py`),
and the registration decided from what a recording says (`replay/registration.py`)."""

from __future__ import annotations

import argparse
import math
from types import SimpleNamespace

import numpy as np
import pytest

from depth_sr_ros.core.camera_info import Intrinsics, intrinsics_from_camera_info
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.transforms import TransformBuffer
from depth_sr_ros.replay.realsense_bag import RealSenseStreams, streams_for
from depth_sr_ros.replay.registration import Evidence, RegistrationError, decide
from depth_sr_ros.tools import replay as replay_tool

COLOUR = "/device_0/sensor_1/Color_0/image/data"
DEPTH = "/device_0/sensor_0/Depth_0/image/data"


def _transform(extrinsic: Extrinsic) -> SimpleNamespace:
    t, q = extrinsic.translation, extrinsic.as_quaternion()
    return SimpleNamespace(translation=SimpleNamespace(x=t[0], y=t[1], z=t[2]),
                           rotation=SimpleNamespace(x=q[0], y=q[1], z=q[2], w=q[3]))


def _yaw(degrees: float) -> tuple[float, float, float, float]:
    half = math.radians(degrees) / 2
    return (0.0, math.sin(half), 0.0, math.cos(half))


def test_depth_to_colour_composes_both_streams_from_the_pin_stream() -> None:
    """Each tf/0 maps the pin stream into the stream (p_S = R p_pin + t): depth -> colour is
    E_colour @ E_depth^-1, whichever stream is the pin."""
    pin_to_depth = Extrinsic.from_translation_quaternion((-0.015, 0.0, 0.0), _yaw(1.0))
    pin_to_colour = Extrinsic.from_translation_quaternion((0.045, 0.002, 0.0), _yaw(-2.0))
    streams = RealSenseStreams(depth_topic=DEPTH, rgb_topic=COLOUR)
    for topic in streams.metadata_topics([DEPTH, COLOUR, "/device_0/sensor_0/Depth_0/tf/0",
                                          "/device_0/sensor_1/Color_0/tf/0"]):
        if topic.endswith("/tf/0"):
            streams.add(topic, _transform(pin_to_depth if "Depth" in topic else pin_to_colour))
    point_in_pin = np.array([[0.3, -0.2, 1.7]])
    expected = pin_to_colour.apply(point_in_pin)
    got = streams.depth_to_colour().apply(pin_to_depth.apply(point_in_pin))
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_no_shared_extrinsic_group_gives_none() -> None:
    streams = RealSenseStreams(depth_topic=DEPTH, rgb_topic=COLOUR)
    streams.add("/device_0/sensor_0/Depth_0/tf/0", _transform(Extrinsic.identity()))
    streams.add("/device_0/sensor_1/Color_0/tf/1", _transform(Extrinsic.identity()))
    assert streams.depth_to_colour() is None
    assert streams_for("/camera/color/image_raw", DEPTH) is None


def _sdk_camera_info(model: str, d: list[float]) -> SimpleNamespace:
    """What the SDK writes: K and D, zero R and P, an unset header (ROS 1 names)."""
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id=""),
                           height=480, width=640, distortion_model=model, D=np.array(d),
                           K=np.array([610.0, 0, 321.0, 0, 611.0, 243.0, 0, 0, 1]), R=np.zeros(9), P=np.zeros(12))


def test_sdk_camera_info_is_completed_and_its_distortion_named_as_ros_does() -> None:
    streams = RealSenseStreams(depth_topic=DEPTH, rgb_topic=COLOUR)
    colour = streams.adapt("/device_0/sensor_1/Color_0/info/camera_info",
                           _sdk_camera_info("Inverse Brown Conrady", [0.01, -0.02, 0.0, 0.0, 0.003]))
    assert colour.distortion_model == "plumb_bob"
    np.testing.assert_allclose(colour.d, [-0.01, 0.02, 0.0, 0.0, -0.003])
    np.testing.assert_allclose(colour.r, np.eye(3).reshape(-1))
    np.testing.assert_allclose(np.asarray(colour.p).reshape(3, 4)[:, :3], np.asarray(colour.k).reshape(3, 3))
    assert intrinsics_from_camera_info(colour).fx == 610.0
    depth = streams.adapt("/device_0/sensor_0/Depth_0/info/camera_info", _sdk_camera_info("Brown Conrady", [0] * 5))
    assert depth.distortion_model == "plumb_bob"


@pytest.mark.parametrize("units", [0.001, 0.0001])
def test_depth_in_the_recordings_units_comes_out_in_metres(units: float) -> None:
    streams = RealSenseStreams(depth_topic=DEPTH, rgb_topic=COLOUR)
    streams.add("/device_0/sensor_0/option/Depth Units/value", SimpleNamespace(data=units))
    raw = np.array([[0, 1000], [2500, 65535]], dtype="<u2")
    msg = SimpleNamespace(header=None, height=2, width=2, encoding="mono16", is_bigendian=0, step=4,
                          data=raw.reshape(-1).view(np.uint8))
    metres = depth_from_image(streams.adapt(DEPTH, msg))
    np.testing.assert_allclose(metres, np.where(raw > 0, raw * units, np.nan), rtol=1e-6, equal_nan=True)


RGB = Intrinsics(610.0, 611.0, 321.0, 243.0, 640, 480)
OTHER = Intrinsics(390.0, 390.0, 320.0, 240.0, 640, 480)


def _info(camera: Intrinsics) -> SimpleNamespace:
    return SimpleNamespace(width=camera.width, height=camera.height, distortion_model="", d=[],
                           k=[camera.fx, 0, camera.cx, 0, camera.fy, camera.cy, 0, 0, 1])


def _tf(parent: str, child: str, extrinsic: Extrinsic) -> TransformBuffer:
    buffer = TransformBuffer()
    t = _transform(extrinsic)
    buffer.add(SimpleNamespace(header=SimpleNamespace(frame_id=parent, stamp=SimpleNamespace(sec=0, nanosec=0)),
                               child_frame_id=child, transform=t), static=True)
    return buffer


def test_the_extrinsic_comes_from_the_flag_then_the_recording_then_tf() -> None:
    evidence = Evidence(_info(RGB), _info(OTHER), "colour_optical", "depth_optical")
    flag = Extrinsic.from_translation_quaternion((0.1, 0, 0), (0, 0, 0, 1))
    stream = Extrinsic.from_translation_quaternion((0.2, 0, 0), (0, 0, 0, 1))
    tf = _tf("colour_optical", "depth_optical", Extrinsic.from_translation_quaternion((0.3, 0, 0), (0, 0, 0, 1)))
    by_flag = decide("auto", evidence, flag, stream, "tf/0", tf, ("/tf_static",))
    by_stream = decide("auto", evidence, None, stream, "tf/0", tf, ("/tf_static",))
    by_tf = decide("auto", evidence, None, None, "", tf, ("/tf_static",))
    assert [r.extrinsic.translation[0] for r in (by_flag, by_stream, by_tf)] == [0.1, 0.2, 0.3]
    assert by_tf.from_tf and "fx=390.0" in by_tf.reason and "/tf_static" in by_tf.describe()
    with pytest.raises(RegistrationError, match="--extrinsic"):
        decide("auto", evidence, None, None, "", TransformBuffer(), ())


def test_matching_camera_infos_are_registered_and_missing_evidence_is_said_once(caplog) -> None:
    low = _info(RGB.scaled(160, 120))
    assert not decide("auto", Evidence(_info(RGB), low, "c", "c"), None, None, "", TransformBuffer(), ()).unaligned
    assert not decide("registered", Evidence(_info(RGB), _info(OTHER), "c", "c"), None, None, "",
                      TransformBuffer(), ()).unaligned  # --assume-registered overrides
    with pytest.raises(RegistrationError, match="--depth-info-topic"):
        decide("auto", Evidence(_info(RGB), None, "colour", "depth"), None, None, "", TransformBuffer(), ())
    guess = decide("auto", Evidence(_info(RGB), None, "", ""), None, None, "", TransformBuffer(), ())
    assert not guess.unaligned and caplog.text.count("nothing tells whether the depth is registered") == 1


def test_replay_help_names_the_default_topics() -> None:
    parser = argparse.ArgumentParser()
    replay_tool.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for topic in ("/camera/color/image_raw", "/camera/color/camera_info", "/camera/depth/image_raw",
                  "/device_0/sensor_1/Color_0/image/data"):
        assert topic in text


def test_the_sdks_rosbag2_string_extrinsics_read_like_its_transforms() -> None:
    """The SDK's rosbag2 files store rs2_extrinsics as text, the rotation column-major."""
    pin_to_colour = Extrinsic.from_translation_quaternion((0.045, 0.002, -0.001), _yaw(-2.0))
    rotation = ",".join(f"{v:.9f}" for v in pin_to_colour.rotation.reshape(-1, order="F"))
    translation = ",".join(f"{v:.9f}" for v in pin_to_colour.translation)
    streams = RealSenseStreams(depth_topic=DEPTH, rgb_topic=COLOUR)
    streams.add("/device_0/sensor_0/Depth_0/tf/0", SimpleNamespace(data="rotation=1,0,0,0,1,0,0,0,1;translation=0,0,0"))
    streams.add("/device_0/sensor_1/Color_0/tf/0", SimpleNamespace(data=f"rotation={rotation};translation={translation}"))
    got = streams.depth_to_colour()
    np.testing.assert_allclose(got.rotation, pin_to_colour.rotation, atol=1e-8)
    np.testing.assert_allclose(got.translation, pin_to_colour.translation, atol=1e-8)
    streams.add("/device_0/sensor_1/Color_0/tf/1", SimpleNamespace(data="category=notification"))  # ignored
    assert set(streams.extrinsics["/device_0/sensor_1/Color_0"]) == {0}


def test_full_resolution_only_for_auto_and_depth_near_the_colour_resolution() -> None:
    from depth_sr_ros.core.pipeline import SRConfig
    from depth_sr_ros.replay.full_resolution import refine_at_full_resolution

    sr = SRConfig(scale=4)
    full, note = refine_at_full_resolution(sr, 1.0, auto=True)
    assert full.scale == 1 and "1 in 16 of its samples" in note
    assert refine_at_full_resolution(sr, 1.6, auto=False) == (sr, "")  # a backbone was named
    assert refine_at_full_resolution(sr, 4.0, auto=True) == (sr, "")  # a quarter of the colour resolution
    assert refine_at_full_resolution(sr, None, auto=True) == (sr, "")  # nothing tells
