"""Replaying what users record, end to end through `depth-sr replay` with no topic flags:
a ROS 1 bag, RealSense Viewer files (full and low depth resolution, other depth units) and a
realsense-ros rosbag2 with /tf_static (raw depth from the other camera, and aligned depth).
The recordings are built from the real TUM frames (`recordings.py`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import recordings as rc

from depth_sr_ros.cli import main
from depth_sr_ros.core.fields import stamp_ns
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.replay.bag_io import BagReader
from depth_sr_ros.replay.writer import OUTPUT_IMAGE_TOPIC

BACKBONE = ["--backbone", "guided_filter", "--no-previews", "--no-progress"]
IGNORE_EXTRINSIC = ["--extrinsic", "0 0 0 0 0 0 1"]


def replay(bag: Path, out: Path, *flags: str) -> int:
    return main(["replay", str(bag), "--out", str(out), *BACKBONE, *flags])


def logged_replay(caplog, bag: Path, out: Path, *flags: str) -> str:
    """Replay (exit 0 asserted) and return what it logged at INFO and above."""
    with caplog.at_level(logging.INFO):
        assert replay(bag, out, *flags) == 0
    return caplog.text


def error_to_truth(out: Path, recording: rc.Recording) -> float:
    """RMSE (m) of the output depth against the TUM depth in the colour camera, over pixels both have."""
    with BagReader(out / "sr_bag") as reader:
        outputs = {stamp_ns(r.message): depth_from_image(r.message) for r in reader.records([OUTPUT_IMAGE_TOPIC])}
    assert sorted(outputs) == sorted(recording.rgb_stamps)  # every frame came out, with the colour stamp
    errors = []
    for name, stamp in zip(recording.frames, recording.rgb_stamps):
        truth, got = rc.gt_depth(name), outputs[stamp]
        both = np.isfinite(truth) & np.isfinite(got)
        assert both.mean() > 0.5
        errors.append(got[both] - truth[both])
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def check_registration(recording: rc.Recording, tmp_path: Path, registered_baseline: float) -> None:
    """The replay in `tmp_path/aware` against one that ignores the extrinsic, and against the error
    registered depth of the same size reaches."""
    aware = error_to_truth(tmp_path / "aware", recording)
    assert replay(recording.path, tmp_path / "ignored", *IGNORE_EXTRINSIC) == 0
    assert aware < 0.4 * error_to_truth(tmp_path / "ignored", recording)  # measured 0.31-0.34, guided_filter x4
    assert aware < 1.7 * registered_baseline  # the x4 grid dominates both (measured 1.5-1.6)


@pytest.fixture(scope="module")
def registered_baseline(tmp_path_factory) -> float:
    """The error of the ROS 1 bag's registered quarter-size depth: what registration can reach."""
    folder = tmp_path_factory.mktemp("ros1")
    recording = rc.ros1_bag(folder / "camera.bag")
    assert replay(recording.path, folder / "out") == 0
    return error_to_truth(folder / "out", recording)


def test_ros1_bag_replays_as_it_is(tmp_path: Path, caplog, registered_baseline: float) -> None:
    recording = rc.ros1_bag(tmp_path / "camera.bag")
    log = logged_replay(caplog, recording.path, tmp_path / "out")
    assert "topics: colour /camera/color/image_raw (info /camera/color/camera_info), depth /camera/depth/image_raw" \
        in log
    assert "its CameraInfo is the colour camera's" in log
    assert error_to_truth(tmp_path / "out", recording) == pytest.approx(registered_baseline)
    assert registered_baseline < 0.06


@pytest.mark.parametrize(("depth_size", "units"), [((640, 480), 0.001), ((320, 240), 0.0001)])
def test_realsense_viewer_file_is_registered_with_its_stream_extrinsics(
        tmp_path: Path, caplog, registered_baseline: float, depth_size: tuple[int, int], units: float) -> None:
    recording = rc.realsense_bag(tmp_path / "viewer.bag", depth_size, units)
    log = logged_replay(caplog, recording.path, tmp_path / "aware")
    assert "depth /device_0/sensor_0/Depth_0/image/data" in log
    assert "with the extrinsic from the recording's stream extrinsics" in log
    assert "t = (0.0500, 0.0040, -0.0020) m" in log  # depth -> colour, as recorded
    assert f"depth units from the recording: {units:g} m" in log
    check_registration(recording, tmp_path, registered_baseline)


def test_driver_rosbag2_depth_is_registered_through_tf_static(tmp_path: Path, caplog,
                                                             registered_baseline: float) -> None:
    recording = rc.driver_bag(tmp_path / "driver", aligned=False)
    log = logged_replay(caplog, recording.path, tmp_path / "aware")
    assert "colour /camera/camera/color/image_raw/compressed" in log
    assert ("with the extrinsic from /tf_static ('camera_color_optical_frame' <- 'camera_depth_optical_frame'): "
            "depth optical -> colour optical t = (0.0500, 0.0040, -0.0020) m") in log
    check_registration(recording, tmp_path, registered_baseline)


def test_driver_rosbag2_with_aligned_depth_replays_the_aligned_topic(tmp_path: Path, caplog,
                                                                     registered_baseline: float) -> None:
    recording = rc.driver_bag(tmp_path / "driver", aligned=True)
    log = logged_replay(caplog, recording.path, tmp_path / "out")
    assert "depth /camera/camera/aligned_depth_to_color/image_raw" in log
    assert "processed as registered" in log
    assert error_to_truth(tmp_path / "out", recording) < 1.2 * registered_baseline  # JPEG colour guides it


def test_the_other_cameras_depth_without_an_extrinsic_is_refused_with_the_flag(tmp_path: Path, capsys) -> None:
    rc.realsense_bag(tmp_path / "bare.bag", with_extrinsics=False)
    assert replay(tmp_path / "bare.bag", tmp_path / "bare") == 2
    error = capsys.readouterr().err
    assert "another camera's CameraInfo" in error and "give --extrinsic" in error
    assert "Traceback" not in error


def test_depth_without_camera_info_is_processed_as_registered_after_a_loud_note(tmp_path: Path, caplog) -> None:
    recording = rc.ros1_bag(tmp_path / "camera.bag")
    with caplog.at_level(logging.INFO):
        assert replay(recording.path, tmp_path / "out", "--depth-info-topic", "") == 0
    notes = [r for r in caplog.records if "nothing tells whether the depth is registered" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING
    assert "--assume-registered" in notes[0].getMessage()
    with caplog.at_level(logging.INFO):
        caplog.clear()
        assert replay(recording.path, tmp_path / "quiet", "--depth-info-topic", "", "--assume-registered") == 0
    assert "nothing tells" not in caplog.text


def test_two_cameras_exit_2_with_the_candidates_one_a_line(tmp_path: Path, capsys) -> None:
    recording = rc.driver_bag(tmp_path / "driver", aligned=False, second_camera="/camera/rear")
    assert replay(recording.path, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "2 equally likely colour topics" in error and "give --rgb-topic" in error
    rows = [line for line in error.splitlines() if line.startswith("  colour ")]
    assert len(rows) == 2 and all(line.count("/image_raw") == 1 for line in rows)
    assert replay(recording.path, tmp_path / "chosen", "--rgb-topic", "/camera/rear/color/image_raw/compressed",
                  "--depth-topic", "/camera/rear/depth/image_rect_raw") == 0


def test_depth_at_the_colour_resolution_is_refined_at_full_resolution_not_decimated(
        tmp_path: Path, caplog) -> None:
    """With the default backbone (auto), 640x480 depth beside 640x480 colour is registered and
    refined at scale 1; the x4 grid of the same replay with a backbone named keeps 1 in 7 samples."""
    recording = rc.realsense_bag(tmp_path / "viewer.bag")
    with caplog.at_level(logging.INFO):
        assert main(["replay", str(recording.path), "--out", str(tmp_path / "full"), "--no-previews",
                     "--no-progress"]) == 0
    assert "registered and refined at full resolution (scale 1" in caplog.text
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert (metrics["scale"], metrics["backbone"]) == (1, "guided_filter")
    full = error_to_truth(tmp_path / "full", recording)
    assert replay(recording.path, tmp_path / "grid", "--scale", "4") == 0  # guided_filter named: the x4 grid
    assert full < 0.8 * error_to_truth(tmp_path / "grid", recording)  # measured 4.2 cm against 6.5 cm


def test_depth_well_below_the_colour_resolution_keeps_the_shipped_scale(tmp_path: Path, caplog) -> None:
    recording = rc.ros1_bag(tmp_path / "camera.bag")  # 160x120 depth, 640x480 colour
    with caplog.at_level(logging.INFO):
        assert main(["replay", str(recording.path), "--out", str(tmp_path / "out"), "--no-previews",
                     "--no-progress"]) == 0  # the default backbone, auto
    assert "full resolution" not in caplog.text
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["scale"] == 4


def test_registered_depth_at_the_colour_resolution_keeps_every_sample(tmp_path: Path, caplog,
                                                                      registered_baseline: float) -> None:
    recording = rc.ros1_bag(tmp_path / "camera.bag", decimation=1)  # the TUM depth as it is, 640x480
    with caplog.at_level(logging.INFO):
        assert main(["replay", str(recording.path), "--out", str(tmp_path / "out"), "--no-previews",
                     "--no-progress"]) == 0
    assert "1.00 colour pixels per depth pixel" in caplog.text and "1 in 16 of its samples" in caplog.text
    # every sample kept (measured 2.1 cm, the guided filter's smoothing at edges) against the
    # quarter-size registered depth on the x4 grid (4.3 cm)
    assert error_to_truth(tmp_path / "out", recording) < 0.6 * registered_baseline
