"""One running node (guided_filter, namespace /runtime): parameters set through the parameter
service, bad messages while active, the QoS matrix, /diagnostics, compressed transports, and two
SIGINTs to the node itself during its shutdown."""

from __future__ import annotations

import array
import copy
import os
import re
import signal
import time

import numpy as np
import pytest

from . import harness

harness.require_ros()

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, PointCloud2

from depth_sr_ros.core.compressed import compressed_depth_fields, compressed_rgb_fields
from depth_sr_ros.core.frame_processor import FrameProcessor
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.core.pipeline import DepthSR
from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros.live_probe import Frame, restamped
from depth_sr_ros.ros.rclpy_messages import rclpy_builder

NS = "/runtime"
NODE = f"{NS}/depth_sr_node"
PREFIX = f"{NS}/"
MM = 0.001


@pytest.fixture(scope="module")
def node(installed, tmp_path_factory):
    params = harness.params_file(tmp_path_factory.mktemp("runtime"), health_period=1.0, input_width=640,
                                 input_height=480)
    with harness.launch(installed, "backbone:=guided_filter", "namespace:=runtime", f"params_file:={params}") as n:
        yield n




@pytest.fixture
def images(probe, node):
    with probe.collect(Image, f"{NS}/depth_sr/image") as collected:
        probe.wait_for_subscribers(f"{NS}/rgb/image", 1, harness.START_TIMEOUT_S)
        yield collected


@pytest.fixture(autouse=True)
def _module_defaults(probe, node):
    """Each test starts from the module's settings, whatever the test before it changed."""
    yield
    if node.process.poll() is None:
        results = _set(probe, scale=4, backbone="guided_filter", output_encoding="32FC1", point_stride=1)
        assert all(r.successful for r in results), [r.reason for r in results]


def _offline(frame: Frame, **values) -> np.ndarray:
    """What the node should publish for `frame` with these parameters, computed in this process."""
    params = table.NodeParams.from_values({"backbone": "guided_filter", **values})
    processor = FrameProcessor(DepthSR(table.sr_config(params)), table.output_config(params))
    return processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, want_points=False).depth


def _set(probe, **values) -> list:
    return probe.set_parameters(NODE, values)


def test_configure_warms_up_for_the_configured_size_and_the_camera_needs_no_other(node, probe, frame, images):
    configured = node.wait_for(r"configured in", 5.0)
    assert "(warmed up for 640x480 in " in configured and "backbone guided_filter x4 on numpy/OpenCV, cpu" in configured
    harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)  # its CameraInfo says 640x480 too
    assert node.count(r"\]: warmed up for") == 0


def test_runtime_parameter_changes_take_effect_on_the_next_frame(node, probe, frame, images):
    np.testing.assert_allclose(depth_from_image(harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)),
                               _offline(frame), atol=MM)
    lines = len(node.lines)
    assert all(r.successful for r in _set(probe, scale=8))
    swapped = node.wait_for(r"pipeline swapped in", 30.0, after=lines)
    assert "backbone guided_filter x8" in swapped, swapped  # the new pipeline, not the previous one
    x8 = harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)
    np.testing.assert_allclose(depth_from_image(x8), _offline(frame, scale=8), atol=MM)

    assert all(r.successful for r in _set(probe, backbone="bicubic"))
    assert "backbone bicubic x8" in node.wait_for(r"pipeline swapped in.*: backbone bicubic", 30.0)
    bicubic = harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)
    np.testing.assert_allclose(depth_from_image(bicubic), _offline(frame, scale=8, backbone="bicubic"), atol=MM)
    assert not np.allclose(depth_from_image(bicubic), depth_from_image(x8), atol=MM, equal_nan=True)

    assert all(r.successful for r in _set(probe, output_encoding="16UC1", point_stride=2))
    with probe.collect(PointCloud2, f"{NS}/depth_sr/points") as clouds:
        millimetres = harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)
        cloud = clouds.with_stamp(harness.stamps([millimetres])[0], harness.FRAME_TIMEOUT_S)
    assert (millimetres.encoding, millimetres.step) == ("16UC1", 640 * 2)
    np.testing.assert_allclose(depth_from_image(millimetres), _offline(frame, scale=8, backbone="bicubic"),
                               atol=MM / 2 + 1e-6)
    assert (cloud.width, cloud.height) == (320, 240)


def test_invalid_values_are_refused_with_a_reason_and_never_stored(node, probe, tmp_path):
    before = probe.get_parameters(NODE, ["scale", "backbone", "device", "inference_backend", "weights",
                                         "min_depth", "point_stride", "queue_size"])
    refusals = {
        "scale": (3, "one of: 2, 4, 8, 16"),
        "backbone": ("resnet", "backbone='resnet' is not allowed"),
        "point_stride": (0, "point_stride"),
        "device": ("gpu", "cuda:N"),  # the running classic backbone ignores these three ...
        "inference_backend": ("openvino", "one of: auto, tensorrt, onnxruntime, torch"),
        "weights": (str(tmp_path / "missing.safetensors"), "no such file"),  # ... still checked
        "min_depth": (30.0, "max_depth"),
        "queue_size": (20, "deactivate"),  # shapes the subscriptions: refused while active
    }
    for name, (value, reason) in refusals.items():
        (result,) = _set(probe, **{name: value})
        assert not result.successful, name
        assert reason in result.reason, (name, result.reason)
    (wrong_type,) = _set(probe, scale="8")
    assert not wrong_type.successful
    assert probe.get_parameters(NODE, before) == before


def _bad(frame: Frame, case: str) -> Frame:
    depth = copy.copy(frame.depth)
    depth_info = copy.copy(frame.depth_info)
    if case == "unsupported_encoding":
        depth.encoding = "bgr8"
    elif case == "truncated_data":
        depth.data = depth.data[: len(depth.data) // 2]
    elif case == "size_mismatch":
        depth_info.width, depth_info.height = 320, 240
    elif case == "all_invalid_depth":
        depth.data = array.array("B", bytes(len(depth.data)))
    return Frame(frame.rgb, frame.rgb_info, depth, depth_info, frame.depth_offset_ns)


def test_bad_messages_are_counted_logged_once_per_reason_and_the_next_good_pair_comes_out(
    node, probe, frame, images
):
    reasons = ["unsupported_encoding", "truncated_data", "size_mismatch", "all_invalid_depth", "missing_camera_info"]
    # a fresh activation: no CameraInfo has been seen yet, so the first pairs have none to match
    assert probe.change_state(NODE, "deactivate") and probe.change_state(NODE, "activate")
    probe.wait_for_subscribers(f"{NS}/rgb/image", 1, 30.0)
    time.sleep(1.0)  # discovery of the new subscriptions
    lines = len(node.lines)
    with probe.collect(DiagnosticArray, "/diagnostics") as diagnostics:
        for reason in reversed(reasons):  # missing_camera_info first, before any CameraInfo arrives
            for _ in range(2):
                bad = _bad(frame, reason)
                probe.feed(bad, time.time_ns(), prefix=PREFIX, rgb_info=reason != "missing_camera_info")
                time.sleep(0.3)
            harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)  # the next good pair comes out
        # best-effort inputs may lose a message on a busy machine: each reason counted at least once
        harness.wait_for_status(diagnostics, lambda v: all(int(v.get(f"skipped {r}", 0)) >= 1 for r in reasons))
        harness.wait_for_status(diagnostics, lambda v: v["level"] == "1" and v["message"] == "frames skipped")
    output = "\n".join(node.lines[lines:])
    for reason in reasons:
        logged = re.findall(rf"frame skipped \({reason}\)", output)
        assert len(logged) == 1, (reason, output[-3000:])  # a second one within 5 s is held back
    assert "rgb/camera_info" in re.search(r"frame skipped \(missing_camera_info\).*", output).group(0)
    assert "Traceback" not in output


@pytest.mark.parametrize("input_reliable", [True, False], ids=["reliable_input", "best_effort_input"])
def test_qos_matrix_inputs_either_way_outputs_to_reliable_and_best_effort_readers(
    node, probe, frame, input_reliable
):
    with (
        probe.collect(Image, f"{NS}/depth_sr/image", reliable=True) as reliable,
        probe.collect(Image, f"{NS}/depth_sr/image", reliable=False) as best_effort,
    ):
        probe.wait_for_subscribers(f"{NS}/rgb/image", 1, 30.0)
        image = harness.roundtrip(probe, frame, reliable, time.time_ns(), PREFIX, reliable=input_reliable)
        best_effort.with_stamp(harness.stamps([image])[0], harness.FRAME_TIMEOUT_S)
    (publisher,) = probe.node.get_publishers_info_by_topic(f"{NS}/depth_sr/image")
    assert publisher.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    (subscription,) = probe.node.get_subscriptions_info_by_topic(f"{NS}/rgb/image")
    assert subscription.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT


def test_diagnostics_report_rate_latency_and_counts(node, probe, frame, images):
    with probe.collect(DiagnosticArray, "/diagnostics") as diagnostics:
        for _ in range(3):
            harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)
        status = harness.wait_for_status(diagnostics, lambda v: float(v.get("output rate (Hz)", 0)) > 0)
    assert float(status["latency stamp->publish mean (ms)"]) > 0
    assert float(status["processing mean (ms)"]) > 0 and int(status["pairs"]) >= 3
    assert int(status["received rgb/image"]) >= 3


def test_compressed_transports_subscribe_to_image_transport_topics(node, probe, frame, images):
    assert probe.change_state(NODE, "deactivate")
    assert all(r.successful for r in _set(probe, rgb_transport="compressed", depth_transport="compressedDepth"))
    assert probe.change_state(NODE, "activate")
    try:
        for topic in (f"{NS}/rgb/image/compressed", f"{NS}/depth/image/compressedDepth"):
            probe.wait_for_subscribers(topic, 1, 30.0)
            (subscription,) = probe.node.get_subscriptions_info_by_topic(topic)
            assert subscription.topic_type == "sensor_msgs/msg/CompressedImage"
        builder = rclpy_builder()
        rgb = builder.compressed_image(frame.rgb.header, compressed_rgb_fields(rgb_from_image(frame.rgb), "png"))
        depth = builder.compressed_image(frame.depth.header, compressed_depth_fields(depth_from_image(frame.depth)))
        deadline = time.monotonic() + harness.FRAME_TIMEOUT_S
        stamp = time.time_ns()
        while True:  # as harness.roundtrip, with CompressedImage for both images
            compressed = restamped(Frame(rgb, frame.rgb_info, depth, frame.depth_info, frame.depth_offset_ns), stamp)
            probe.publisher(CompressedImage, f"{NS}/rgb/image/compressed").publish(compressed.rgb)
            probe.feed(Frame(None, compressed.rgb_info, None, compressed.depth_info), prefix=PREFIX)
            probe.publisher(CompressedImage, f"{NS}/depth/image/compressedDepth").publish(compressed.depth)
            try:
                out = images.with_stamp(stamp, 5.0)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, node.output()[-3000:]
        np.testing.assert_allclose(depth_from_image(out), _offline(frame), atol=MM)  # png: lossless
    finally:
        assert probe.change_state(NODE, "deactivate")
        assert all(r.successful for r in _set(probe, rgb_transport="raw", depth_transport="raw"))
        assert probe.change_state(NODE, "activate")


def test_a_second_sigint_during_shutdown_does_not_interrupt_the_cleanup(node):
    pid = int(re.search(r"process started with pid \[(\d+)\]", node.output()).group(1))
    os.kill(pid, signal.SIGINT)
    time.sleep(0.005)
    os.kill(pid, signal.SIGINT)
    node.wait_for(rf"process has finished cleanly \[pid {pid}\]", 60.0)
    assert node.process.wait(60.0) == 0
    output = node.output()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
