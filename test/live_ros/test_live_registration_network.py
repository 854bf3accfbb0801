"""A network node over real DDS with `registration: tf`: it super-resolves in the depth sensor's view.

The frames of test_live_registration (held-out rgbdd_dev, depth rendered as a sensor 5 cm right of
and 2 cm above the colour camera sees it, x4 smaller, labelled as registered); the sensor's pose
comes from a static transform the probe broadcasts, as `depth-sr calibrate`'s launch snippet does.
The node runs the shipped `lite` (the backbone a robot launches by default) and must publish, once
the transform is there, what a FrameProcessor in this process gives with that residual (the
sensor's view, core/sensor_view.py), nearer the truth than without it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from . import harness

harness.require_ros()

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import Image
from tf2_ros import StaticTransformBroadcaster

from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros.pipeline_slot import PipelineSlot

from .test_live_registration import COLOUR_FRAME, TRUTH_M, _frames, _rmse

NS = "/registration_lite"
PREFIX = f"{NS}/"
NODE = f"{NS}/depth_sr_node"


@pytest.fixture(scope="module")
def node(installed, tmp_path_factory):
    params = harness.params_file(tmp_path_factory.mktemp("registration_lite"), health_period=1.0, registration="tf")
    arguments = ("backbone:=lite", "namespace:=registration_lite", f"params_file:={params}")
    with harness.launch(installed, *arguments) as launched:
        yield launched


def _in_process(frame, residual: Extrinsic | None, in_sensor_view: bool = True, second_pass: bool = True) -> np.ndarray:
    """The node's processor in this process; `in_sensor_view` False takes the residual the way a
    classic upsampler does (the input registered) for comparison; `second_pass` is the node's
    `registration_second_pass`."""
    slot = PipelineSlot()
    slot.build(table.NodeParams.from_values({"backbone": "lite", "device": "cpu",
                                             "registration_second_pass": second_pass}))
    assert slot.processor.pipeline.is_network
    slot.processor.pipeline.is_network = in_sensor_view
    return slot.processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, False,
                                  residual=residual).depth


def _sensor_pose(stamp) -> TransformStamped:
    message = TransformStamped()
    message.header.stamp = stamp
    message.header.frame_id = COLOUR_FRAME
    message.child_frame_id = f"{COLOUR_FRAME}_depth_sensor"
    message.transform.translation.x, message.transform.translation.y, message.transform.translation.z = (
        float(v) for v in TRUTH_M)
    message.transform.rotation.w = 1.0
    return message


@pytest.fixture
def sensor_pose_on_tf(probe):
    """The sensor's pose on /tf_static while the test runs; the publisher is destroyed after it, so
    that nodes started by later test modules (registration auto looks the pose up in TF) never see it."""
    broadcaster = StaticTransformBroadcaster(probe.node)
    broadcaster.sendTransform([_sensor_pose(probe.node.get_clock().now().to_msg())])
    yield
    probe.node.destroy_publisher(broadcaster.pub_tf)


def test_lite_with_the_pose_from_tf_runs_in_the_sensors_view(node, probe, sensor_pose_on_tf):
    frames, truths = _frames()
    with (probe.collect(DiagnosticArray, "/diagnostics") as diagnostics,
          probe.collect(Image, f"{NS}/depth_sr/image") as images):
        probe.wait_for_subscribers(f"{NS}/depth/image", 1, harness.START_TIMEOUT_S)
        deadline = time.monotonic() + 60.0
        while not any(v.get("registration applied") == "true" for v in harness.status_values(diagnostics.messages)):
            assert time.monotonic() < deadline, node.output()[-3000:]
            harness.roundtrip(probe, frames[1], images, time.time_ns(), PREFIX)
        published = harness.depth_m(harness.roundtrip(probe, frames[0], images, time.time_ns(), PREFIX))
    status = harness.status_values(diagnostics.messages)[-1]
    assert status["registration mode"] == "tf" and status["registration source"] == "tf", status
    expected = _in_process(frames[0], Extrinsic(np.eye(3), TRUTH_M))
    np.testing.assert_allclose(published, expected, rtol=0, atol=1e-4)
    on_registered_input = _in_process(frames[0], Extrinsic(np.eye(3), TRUTH_M), in_sensor_view=False)
    assert np.nanmax(np.abs(published - on_registered_input)) > 0.05  # not the input registered
    assert _rmse(published, truths[0]) < 0.8 * _rmse(_in_process(frames[0], None), truths[0])


def test_registration_second_pass_set_false_live_publishes_the_one_pass_output(node, probe, sensor_pose_on_tf):
    frames, truths = _frames()
    residual = Extrinsic(np.eye(3), TRUTH_M)
    lines = len(node.lines)
    (result,) = probe.set_parameters(NODE, {"registration_second_pass": False})
    assert result.successful, result.reason
    try:
        with probe.collect(Image, f"{NS}/depth_sr/image") as images:
            probe.wait_for_subscribers(f"{NS}/depth/image", 1, harness.START_TIMEOUT_S)
            published = harness.depth_m(harness.roundtrip(probe, frames[0], images, time.time_ns(), PREFIX))
    finally:
        (restored,) = probe.set_parameters(NODE, {"registration_second_pass": True})
    assert restored.successful, restored.reason
    one_pass = _in_process(frames[0], residual, second_pass=False)
    np.testing.assert_allclose(published, one_pass, rtol=0, atol=1e-4)
    two_passes = _in_process(frames[0], residual)
    assert np.nanmax(np.abs(published - two_passes)) > 0.05  # the second pass is off, not the default
    assert _rmse(two_passes, truths[0]) < _rmse(one_pass, truths[0])  # what the default buys on this frame
    assert not [line for line in node.lines[lines:] if "pipeline swapped in" in line]  # no rebuild


def test_sigint_ends_the_node_cleanly(node):
    harness.stop_cleanly(node, group=False)
