"""`depth-sr calibrate BAG`: the estimate over a bag, its summary and the static-transform snippet."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from depth_sr_ros.cli import main
from depth_sr_ros.core.registration_estimate import RegistrationEstimate
from depth_sr_ros.replay.sample_bag import DEPTH_TOPIC, RGB_TOPIC, build_sample_bag
from depth_sr_ros.tools.calibrate import launch_snippet


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_bag(tmp_path_factory.mktemp("calibrate") / "bag", frames=12).path


def test_calibrate_prints_the_estimate_and_writes_a_snippet_or_says_why_not(bag: Path, tmp_path: Path,
                                                                            capsys) -> None:
    out = tmp_path / "tf.launch.py"
    assert main(["calibrate", str(bag), "--rgb-topic", RGB_TOPIC, "--depth-topic", DEPTH_TOPIC,
                 "--frames", "6", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"6 pairs used of \d+", printed)
    assert "estimate: " in printed
    if "no snippet written" in printed:
        assert not out.exists()
    else:
        text = out.read_text()
        assert "static_transform_publisher" in text and "camera_color_optical_frame" in text
        compile(text, str(out), "exec")


def test_the_snippet_carries_the_pose_of_the_depth_sensor() -> None:
    params = np.array([0.03, -0.01, 0.002, 0.0, np.radians(0.5), 0.0])
    result = RegistrationEstimate(params, np.full(6, 0.001), ("tx", "ty", "tz", "rx", "ry", "rz"), "ok",
                                  frames_used=20, significant=True)
    text = launch_snippet(result, "colour_optical", "depth_optical")
    compile(text, "snippet", "exec")
    values = dict(re.findall(r"'--(\w+)', '([-0-9.]+)'", text))
    assert np.allclose([float(values[k]) for k in ("x", "y", "z")], params[:3], atol=1e-6)
    quaternion = np.array([float(values[k]) for k in ("qx", "qy", "qz", "qw")])
    assert np.isclose(np.linalg.norm(quaternion), 1.0, atol=1e-5)
    assert np.isclose(2 * np.arcsin(quaternion[1]), params[4], atol=1e-5)
    assert "'--frame-id', 'colour_optical', '--child-frame-id', 'depth_optical'" in text


def test_a_missing_topic_is_one_line_and_exit_2(bag: Path, capsys) -> None:
    assert main(["calibrate", str(bag), "--rgb-topic", "/nope", "--depth-topic", DEPTH_TOPIC]) == 2
    err = capsys.readouterr().err
    assert "/nope" in err and "Traceback" not in err
