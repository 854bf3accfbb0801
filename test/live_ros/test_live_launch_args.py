"""`sr.launch.py` arguments on a real launch: scale, backbone, namespace, topic remaps,
use_sim_time with /clock (health lines also without it), QoS overrides from the params file, and
a bad value refused at launch."""

from __future__ import annotations

import threading
import time

import pytest

from . import harness

harness.require_ros()

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from depth_sr_ros.ros.live_probe import Launch

NODE = "/camera/depth_sr_node"
REMAPS = {
    "rgb_image": "/cam/color/image_raw",
    "rgb_info": "/cam/color/camera_info",
    "depth_image": "/cam/depth/image_raw",
    "depth_info": "/cam/depth/camera_info",
}
SIM_OFFSET_NS = 1000 * 10**9  # sim time runs 1000 s behind the wall clock
CLOCK_HZ = 100.0  # `ros2 bag play --clock 100`; rclpy spends CPU on every /clock message


@pytest.fixture(scope="module")
def node(installed, tmp_path_factory):
    qos_overrides = {  # the ROS 2 way: read-only parameters per resolved topic, given at start-up
        "/camera/depth_sr/image": {"publisher": {"reliability": "best_effort"}},
        "/cam/color/image_raw": {"subscription": {"reliability": "reliable"}},
    }
    params = harness.params_file(tmp_path_factory.mktemp("launch_args"), health_period=1.0, qos_overrides=qos_overrides)
    arguments = ["scale:=8", "backbone:=guided_filter", "namespace:=camera", "use_sim_time:=true",
                 f"params_file:={params}", *(f"{name}:={topic}" for name, topic in REMAPS.items())]
    with harness.launch(installed, *arguments) as launched:
        yield launched




def test_arguments_reach_the_node_under_its_namespace_and_remaps(node, probe):
    values = probe.get_parameters(NODE, ["scale", "backbone", "use_sim_time", "health_period"])
    assert values == {"scale": 8, "backbone": "guided_filter", "use_sim_time": True, "health_period": 1.0}
    active = node.wait_for(r"\]: active: ", 5.0)
    for topic in REMAPS.values():
        assert topic in active, active
    assert "[camera.depth_sr_node]" in active


def test_health_lines_appear_under_sim_time_before_any_clock(node):
    lines = len(node.lines)
    node.wait_for(r"health: ", 10.0, after=lines)
    time.sleep(2.5)
    assert node.count(r"health: ") >= 3  # one a second on the steady clock, with /clock silent


def test_qos_overrides_from_the_params_file(node, probe):
    def reliability(infos):
        (info,) = infos
        return info.qos_profile.reliability

    assert reliability(probe.node.get_publishers_info_by_topic("/camera/depth_sr/image")) == ReliabilityPolicy.BEST_EFFORT
    assert reliability(probe.node.get_publishers_info_by_topic("/camera/depth_sr/camera_info")) == (
        ReliabilityPolicy.RELIABLE
    )
    assert reliability(probe.node.get_subscriptions_info_by_topic("/cam/color/image_raw")) == ReliabilityPolicy.RELIABLE
    assert reliability(probe.node.get_subscriptions_info_by_topic("/cam/depth/image_raw")) == (
        ReliabilityPolicy.BEST_EFFORT
    )
    name = "qos_overrides./camera/depth_sr/image.publisher.reliability"
    assert probe.get_parameters(NODE, [name]) == {name: "best_effort"}


class SimClock:
    """Publishes /clock at CLOCK_HZ: the wall clock minus SIM_OFFSET_NS, as `ros2 bag play --clock`."""

    def __init__(self, probe) -> None:
        self._publisher = probe.publisher(Clock, "/clock", reliable=False)
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now_ns() -> int:
        return time.time_ns() - SIM_OFFSET_NS

    def _run(self) -> None:
        message = Clock()
        while self._running:
            message.clock.sec, message.clock.nanosec = divmod(self.now_ns(), 1_000_000_000)
            self._publisher.publish(message)
            time.sleep(1.0 / CLOCK_HZ)

    def stop(self) -> None:
        self._running = False
        self._thread.join(5.0)


def test_sim_time_latency_is_measured_on_the_clock_topic(node, probe, frame):
    """With the clock in its own callback group, stamp->publish latency on sim time includes the
    processing (it read 1 ms against 188 ms of processing when /clock waited behind each frame).

    The node's sim time is the last /clock it received, up to a clock period plus the delivery
    delay behind the publisher's, so latency reads low by that much (18 ms seen on a loaded
    machine). The network backbone makes processing long enough that a latency of about 1 ms
    (the defect) cannot pass for a lagging clock."""
    (result,) = probe.set_parameters(NODE, {"backbone": "lite"})
    assert result.successful, result.reason
    clock = SimClock(probe)
    try:
        with (
            probe.collect(Image, "/camera/depth_sr/image", reliable=False) as images,
            probe.collect(DiagnosticArray, "/diagnostics") as diagnostics,
        ):
            probe.wait_for_subscribers("/cam/color/image_raw", 1, 30.0)
            for _ in range(5):
                stamp = SimClock.now_ns()
                out = harness.roundtrip(probe, frame, images, stamp, prefix="", topics=REMAPS)
                assert harness.stamps([out]) == [stamp]
            status = harness.wait_for_status(
                diagnostics, lambda v: v.get("latency stamp->publish mean (ms)", "nan") != "nan"
            )
    finally:
        clock.stop()
        (restored,) = probe.set_parameters(NODE, {"backbone": "guided_filter"})
        assert restored.successful, restored.reason
    latency, processing = float(status["latency stamp->publish mean (ms)"]), float(status["processing mean (ms)"])
    assert processing > 2 * (1000.0 / CLOCK_HZ), status  # long enough to tell the defect apart
    assert 0.5 * processing <= latency < processing + 1000.0, status


@pytest.mark.parametrize(
    ("argument", "reason"),
    [("scale:=3", 'provided value "3" is not valid'), ("weights:=model.pt", "must be a .safetensors file")],
)
def test_a_bad_launch_value_stops_the_launch_with_the_reason(installed, argument, reason):
    launch = Launch([argument], installed)
    try:
        code = launch.process.wait(60.0)
    finally:
        launch.kill()
    output = launch.output()
    assert code != 0, output
    assert reason in output, output
    assert "process started" not in output, output


def test_ctrl_c_to_the_launch_process_group_ends_everything_cleanly(node):
    harness.stop_cleanly(node, group=True)
