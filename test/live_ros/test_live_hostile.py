"""Hostile input between good frames, over real DDS (issue 23): one node (the `lite` network on
ONNX Runtime, warmed up at the first RGB frame, namespace /hostile).

CameraInfo claiming 16000x12000 for the 640x480 stream once made the node prepare its network for
that size (0.5 GB -> 14.6 GB in 90 s) and publish nothing more. Here such CameraInfo, Images
claiming 16000x12000, zero-stamped pairs and an impossible device arrive between good frames; the
node's peak memory (VmHWM of its process) stays within 1.5x of what the good frames alone took,
nothing is warmed up again, each refusal is counted by reason and logged with the size it claimed,
and the good frames keep coming out.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import pytest

from . import harness

harness.require_ros()

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image

from depth_sr_ros.ros.live_probe import Frame, restamped, set_stamp

NS = "/hostile"
NODE = f"{NS}/depth_sr_node"
PREFIX = f"{NS}/"
HOSTILE_ROUNDS = 4


@pytest.fixture(scope="module")
def node(installed, tmp_path_factory):
    params = harness.params_file(tmp_path_factory.mktemp("hostile"), health_period=1.0)
    with harness.launch(installed, "backbone:=lite", "inference_backend:=onnxruntime", "device:=cpu",
                        "namespace:=hostile", f"params_file:={params}") as launched:
        yield launched


def memory_kb(node) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of the node's process, in kB."""
    pid = int(re.search(r"depth_sr_node-\d+\]: process started with pid \[(\d+)\]", node.output()).group(1))
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) for key in ("VmRSS", "VmHWM")}


def settled_missing_info_skips(node) -> int:
    """The node's count of `missing_camera_info` skips since it started, from the first health line
    printed from now on (health lines carry cumulative counts; 0 when it names none)."""
    line = node.wait_for(r"health: ", harness.FRAME_TIMEOUT_S, after=len(node.lines))
    found = re.search(r"missing_camera_info (\d+)", line)
    return int(found.group(1)) if found else 0


def claiming(msg, width: int, height: int, stamp_ns: int):
    """A copy of `msg` (CameraInfo or Image) claiming `width x height`, stamped `stamp_ns`."""
    hostile = copy.deepcopy(msg)
    hostile.width, hostile.height = width, height
    if isinstance(hostile, Image):
        hostile.step = width * 3  # what rgb8 would need; the data stays 640x480's
    set_stamp(hostile, stamp_ns)
    return hostile


def test_hostile_sizes_zero_stamps_and_a_missing_device_leave_memory_flat_and_frames_flowing(node, probe, frame):
    with probe.collect(Image, f"{NS}/depth_sr/image") as images, \
            probe.collect(DiagnosticArray, "/diagnostics") as diagnostics:
        probe.wait_for_subscribers(f"{NS}/rgb/image", 1, harness.START_TIMEOUT_S)
        for _ in range(3):  # warm-up at the first CameraInfo (640x480), then the stream is established
            harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)
        good_only = memory_kb(node)
        # a first pair may come before its CameraInfo while DDS still discovers the topics: counted
        # in the warm-up, and in every health line after it
        missing_before = settled_missing_info_skips(node)
        lines = len(node.lines)

        info_topic, image_topic = f"{NS}/rgb/camera_info", f"{NS}/rgb/image"
        for _ in range(HOSTILE_ROUNDS):
            stamp = time.time_ns()
            sent = probe.feed(frame, stamp, prefix=PREFIX)
            # CameraInfo with the good frame's own stamp, claiming 16000x12000: refused on arrival
            probe.publisher(CameraInfo, info_topic).publish(claiming(frame.rgb_info, 16000, 12000, stamp))
            probe.publisher(CameraInfo, f"{NS}/depth/camera_info").publish(
                claiming(frame.depth_info, 16000, 12000, stamp + frame.depth_offset_ns))
            images.with_stamp(sent.stamp_ns, harness.FRAME_TIMEOUT_S)  # the good frame still comes out
            # an Image claiming 16000x12000 (with 640x480's data) paired with good depth and CameraInfo
            stamp = time.time_ns()
            hostile = restamped(frame, stamp)
            probe.feed(Frame(None, hostile.rgb_info, hostile.depth, hostile.depth_info), prefix=PREFIX)
            probe.publisher(Image, image_topic).publish(claiming(frame.rgb, 16000, 12000, stamp))
            # a pair stamped 0 (an unset clock)
            probe.feed(frame, 0, prefix=PREFIX, rgb_info=False)
            time.sleep(0.3)
            harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)

        (device,) = probe.set_parameters(NODE, {"device": "cuda:99"})
        assert not device.successful and "cuda:99" in device.reason and "CUDA device" in device.reason
        assert probe.get_parameters(NODE, ["device"]) == {"device": "cpu"}

        after = memory_kb(node)
        harness.wait_for_status(diagnostics, lambda v: all(int(v.get(f"skipped {reason}", 0)) >= 1
                                                           for reason in ("oversize", "zero_stamp")))
        harness.roundtrip(probe, frame, images, time.time_ns(), PREFIX)
        missing_after = settled_missing_info_skips(node)

    assert after["VmHWM"] <= 1.5 * good_only["VmHWM"], (good_only, after)
    assert after["VmRSS"] <= good_only["VmRSS"] + 100 * 1024, (good_only, after)
    output = "\n".join(node.lines[lines:])
    assert "warmed up for" not in output  # nothing prepared for a claimed size
    refusals = re.findall(r"message skipped \(oversize\).*|frame skipped \(oversize\).*", output)
    assert refusals and all("16000x12000" in line for line in refusals), output[-3000:]
    assert re.search(r"message skipped \(zero_stamp\)", output), output[-3000:]
    assert "Traceback" not in output and "skipped (missing_camera_info)" not in output, output[-3000:]
    assert missing_after == missing_before, output[-3000:]  # every good frame kept its own CameraInfo
