"""Lifecycle through the real lifecycle_msgs services of a node launched with `autostart:=false`:
configure, activate, deactivate, cleanup, configure again, shutdown; transitions asked in the wrong
state fail and the node lives on; a failing configure says why; Ctrl-C to the process group."""

from __future__ import annotations

import time

import pytest

from . import harness

harness.require_ros()

from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import Image

NS = "/lifecycle"
NODE = f"{NS}/depth_sr_node"
PREFIX = f"{NS}/"


@pytest.fixture(scope="module")
def node(installed):
    arguments = ("autostart:=false", "backbone:=guided_filter", "namespace:=lifecycle")
    with harness.launch(installed, *arguments, active=False) as launched:
        yield launched




def _frames_come_out(probe, frame, images) -> bool:
    """Publish `frame` freshly stamped a few times; whether an output with such a stamp arrives."""
    for _ in range(3):
        sent = probe.feed(frame, time.time_ns(), prefix=PREFIX)
        try:
            images.with_stamp(sent.stamp_ns, 3.0)
            return True
        except TimeoutError:
            continue
    return False


def test_without_autostart_the_node_waits_unconfigured(node, probe):
    assert probe.lifecycle_state(NODE, timeout=harness.START_TIMEOUT_S) == "unconfigured"
    assert node.count("configured in") == 0


def test_a_transition_asked_in_the_wrong_state_fails_and_the_node_lives_on(node, probe):
    assert probe.change_state(NODE, "activate") is False  # by label, as `ros2 lifecycle set`
    assert probe.change_state(NODE, Transition.TRANSITION_ACTIVATE) is False  # by id, as launch_ros
    assert probe.change_state(NODE, Transition.TRANSITION_DEACTIVATE) is False
    node.wait_for(rf"transition {Transition.TRANSITION_ACTIVATE} refused in this state", 10.0)
    assert probe.lifecycle_state(NODE) == "unconfigured"
    assert node.process.poll() is None and "Traceback" not in node.output()


def test_a_failing_configure_says_why_and_leaves_the_node_unconfigured(node, probe, tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    results = probe.set_parameters(NODE, {"backbone": "lite", "weights": str(bogus)})
    assert all(r.successful for r in results), [r.reason for r in results]
    assert probe.change_state(NODE, "configure") is False
    failed = node.wait_for(r"configure failed: ", 30.0)
    assert "bogus.safetensors" in failed, failed
    assert probe.lifecycle_state(NODE) == "unconfigured"
    assert node.process.poll() is None and "Traceback" not in node.output()

    results = probe.set_parameters(NODE, {"backbone": "guided_filter", "weights": ""})
    assert all(r.successful for r in results)
    assert probe.change_state(NODE, "configure") is True
    assert probe.lifecycle_state(NODE) == "inactive"


def test_activate_deactivate_cleanup_configure_again_and_shutdown(node, probe, frame):
    with probe.collect(Image, f"{NS}/depth_sr/image") as images:
        assert probe.change_state(NODE, "activate") is True
        assert probe.lifecycle_state(NODE) == "active"
        probe.wait_for_subscribers(f"{NS}/rgb/image", 1, 30.0)
        assert _frames_come_out(probe, frame, images)

        assert probe.change_state(NODE, "deactivate") is True
        assert probe.lifecycle_state(NODE) == "inactive"
        node.wait_for(r"deactivated; totals: ", 10.0)
        assert not _frames_come_out(probe, frame, images)

        assert probe.change_state(NODE, "cleanup") is True
        assert probe.lifecycle_state(NODE) == "unconfigured"
        assert probe.change_state(NODE, "configure") is True
        assert probe.change_state(NODE, "activate") is True
        assert _frames_come_out(probe, frame, images)

        assert probe.change_state(NODE, "deactivate") is True
        assert probe.change_state(NODE, "shutdown") is True
        assert probe.lifecycle_state(NODE) == "finalized"
        assert probe.change_state(NODE, "configure") is False  # nothing leaves finalized
    assert node.process.poll() is None and "Traceback" not in node.output()


def test_ctrl_c_to_the_launch_process_group_ends_everything_cleanly(node):
    harness.stop_cleanly(node, group=True)
