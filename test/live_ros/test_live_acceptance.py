"""Acceptance: `ros2 launch depth_sr_ros sr.launch.py` with no arguments, as a user first meets it.

The node (default backbone `auto`: the shipped lite through ONNX Runtime on the CPU) must come up
active with no manual step; the bundled TUM frames, published reliable, must come back on
depth_sr/image to a reliable and a best-effort subscriber and equal `depth-sr replay` of the same
bag to 1 mm; at 30 Hz it must drop stale pairs instead of queueing; one SIGINT ends it cleanly.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from . import harness

harness.require_ros()

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_sr_ros.core.image_msg import rgb_from_image
from depth_sr_ros.replay.bag_io import BagReader
from depth_sr_ros.replay.sample_bag import FRAME_ID
from depth_sr_ros.ros.live_probe import bag_frames, header_ns

MM = 0.001  # metres


@pytest.fixture(scope="module")
def node(installed):
    with harness.launch(installed) as launched:  # no arguments: config/sr.yaml as shipped
        yield launched


def _replay(bag: Path, out: Path, env: dict[str, str]) -> dict[int, np.ndarray]:
    """`depth-sr replay BAG` (the node's defaults); its SR depth by RGB stamp."""
    command = ["depth-sr", "replay", str(bag), "--out", str(out), "--no-previews", "--no-progress"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    with BagReader(out / "sr_bag") as reader:
        return {header_ns(r.message.header): harness.depth_m(r.message) for r in reader.records(["/depth_sr/image"])}


def test_the_default_launch_configures_and_activates_the_shipped_network(node):
    configured = node.wait_for(r"configured in", 5.0)
    assert ("backbone lite x4 (lite_x4.safetensors; second pass lite_x4_second_pass.safetensors) on onnxruntime"
            in configured), configured
    assert "input_mode depth" in configured
    assert node.count(r"\]: active: depth input from /rgb/camera_info, /depth/camera_info, /rgb/image, /depth/image")


def test_reliable_frames_come_back_to_reliable_and_best_effort_subscribers_equal_to_replay(
    node, probe, sample_bag, installed, tmp_path
):
    frames = [frame for frame in bag_frames(sample_bag) if frame.depth is not None]
    with (
        probe.collect(Image, "/depth_sr/image", reliable=True) as reliable,
        probe.collect(Image, "/depth_sr/image", reliable=False) as best_effort,
        probe.collect(CameraInfo, "/depth_sr/camera_info", reliable=True) as infos,
        probe.collect(PointCloud2, "/depth_sr/points", reliable=True) as clouds,
    ):
        probe.wait_for_subscribers("/depth/image", 1, harness.START_TIMEOUT_S)
        outputs = [harness.roundtrip(probe, frame, reliable) for frame in frames]  # published reliable
        sent = [frame.stamp_ns for frame in frames]
        for collected in (best_effort, infos, clouds):
            collected.wait_for(lambda got, c=collected: set(sent) <= set(harness.stamps(got)), harness.FRAME_TIMEOUT_S)
        best_effort_by_stamp = {header_ns(m.header): m for m in best_effort.messages}
        info_by_stamp = {header_ns(m.header): m for m in infos.messages}
        cloud_by_stamp = {header_ns(m.header): m for m in clouds.messages}
    warmed = node.wait_for(r"warmed up for 640x480 in [0-9.]+ s", 5.0)
    assert "on onnxruntime[CPUExecutionProvider], " in warmed and "thread" in warmed and ", cpu, fp32" in warmed

    replayed = _replay(sample_bag, tmp_path / "replay", installed)
    assert sorted(replayed) == sorted(sent)
    for stamp, image, frame in zip(sent, outputs, frames, strict=True):
        assert (image.width, image.height, image.encoding, image.step) == (640, 480, "32FC1", 640 * 4)
        assert image.header.frame_id == FRAME_ID and header_ns(image.header) == stamp
        depth = harness.depth_m(image)
        np.testing.assert_array_equal(np.isnan(depth), np.isnan(replayed[stamp]))
        assert np.nanmax(np.abs(depth - replayed[stamp])) <= MM
        assert np.isfinite(depth).mean() > 0.5
        np.testing.assert_array_equal(harness.depth_m(best_effort_by_stamp[stamp]), depth)

        info = info_by_stamp[stamp]
        assert (info.width, info.height, info.header.frame_id) == (640, 480, FRAME_ID)
        assert info.k[0] == pytest.approx(517.3)

        cloud = cloud_by_stamp[stamp]
        assert (cloud.width, cloud.height, cloud.header.frame_id) == (640, 480, FRAME_ID)
        harness.check_cloud(cloud, depth, info, rgb_from_image(frame.rgb))  # read by sensor_msgs_py


def test_frames_faster_than_the_network_drop_stale_pairs_instead_of_queueing(node, probe, frame):
    period_s, count = 1.0 / 30.0, 120  # 4 s at 30 Hz; the network takes several periods per frame
    with (
        probe.collect(Image, "/depth_sr/image") as images,
        probe.collect(DiagnosticArray, "/diagnostics") as diagnostics,
    ):
        start = time.monotonic()
        for index in range(count):
            probe.feed(frame, time.time_ns())
            time.sleep(max(0.0, start + (index + 1) * period_s - time.monotonic()))
        time.sleep(2.0)
        received = list(images.items)
        status = harness.wait_for_status(diagnostics, lambda values: int(values.get("skipped stale_pair", 0)) > 0)
    latencies = [arrival - header_ns(msg.header) * 1e-9 for arrival, msg in received]
    assert 0 < len(received) < 0.8 * count, f"{len(received)} outputs for {count} pairs"
    assert max(latencies) < 1.5, f"latency grew to {max(latencies):.2f} s: a backlog"
    assert float(status["processing mean (ms)"]) > 0


def test_replay_and_the_node_run_without_a_sourced_ament_prefix(installed, sample_bag, probe, tmp_path):
    """With AMENT_PREFIX_PATH unset (ament_index_python still importable), replay runs and the
    installed node configures, finding its shipped weights next to its install prefix."""
    env = {key: value for key, value in installed.items() if key != "AMENT_PREFIX_PATH"}
    _replay(sample_bag, tmp_path / "replay", env)
    executable = Path(installed["DEPTH_SR_COLCON_WS"]) / "install/depth_sr_ros/lib/depth_sr_ros/depth_sr_node"
    process = subprocess.Popen(
        [str(executable), "--ros-args", "-r", "__node:=no_ament", "-r", "__ns:=/no_ament"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        assert probe.change_state("/no_ament/no_ament", "configure", timeout=harness.START_TIMEOUT_S)
        assert probe.lifecycle_state("/no_ament/no_ament") == "inactive"
    finally:
        os.killpg(process.pid, 2)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "configured in" in output, output  # the shipped network and its second pass's, found without ament
    assert "backbone lite x4 (lite_x4.safetensors; second pass lite_x4_second_pass.safetensors)" in output, output
    assert "Traceback" not in output, output


def test_one_sigint_to_launch_ends_node_and_launch_cleanly(node):
    harness.stop_cleanly(node, group=False)
