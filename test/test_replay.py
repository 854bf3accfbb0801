"""Replay through real bags written with rosbags: bad inputs are counted skips, outputs are complete."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from depth_sr_ros.cli import main
from depth_sr_ros.core.camera_info import CameraInfoFields
from depth_sr_ros.core.image_msg import ImageFields, depth_from_image
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay.bag_io import BagError, BagReader, BagWriter, load_typestore
from depth_sr_ros.replay.config import ReplayConfig
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.summary import format_summary
from depth_sr_ros.replay.writer import OUTPUT_IMAGE_TOPIC, OUTPUT_INFO_TOPIC, OUTPUT_POINTS_TOPIC
from depth_sr_ros.tools import replay as replay_tool

W, H, S = 64, 48, 4
PERIOD = 33_333_333
EPOCH = 1_600_000_000 * 10**9
TOPICS = {"rgb": "/cam/rgb", "rgb_info": "/cam/rgb_info", "depth": "/cam/depth", "depth_info": "/cam/depth_info",
          "gt": "/cam/gt"}


def fields(array: np.ndarray, encoding: str) -> ImageFields:
    array = np.ascontiguousarray(array)
    return ImageFields(array.shape[0], array.shape[1], encoding, 0, array.nbytes // array.shape[0],
                       array.reshape(-1).view(np.uint8))


def info(width: int, height: int, scale: float) -> CameraInfoFields:
    fx, cx, cy = 60.0 * scale, 32.0 * scale, 24.0 * scale
    return CameraInfoFields(height, width, "plumb_bob", np.zeros(5), np.array([fx, 0, cx, 0, fx, cy, 0, 0, 1.0]),
                            np.eye(3).reshape(-1), np.array([fx, 0, cx, 0, 0, fx, cy, 0, 0, 0, 1, 0.0]))


def scene(frame: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB and ground-truth depth (metres) of a box that moves one pixel per frame."""
    rgb = np.full((H, W, 3), 30, np.uint8)
    gt = np.full((H, W), 2.0, np.float32)
    rgb[12:36, 16 + frame : 40 + frame] = 200
    gt[12:36, 16 + frame : 40 + frame] = 1.2
    return rgb, gt


def good_depth(gt: np.ndarray) -> ImageFields:
    return fields(np.rint(gt[1::S, 1::S] * 1000).astype(np.uint16), "16UC1")


BAD_DEPTH = {
    1: ("unsupported_encoding", lambda gt: fields(np.ones((H // S, W // S), np.uint8), "8UC1")),
    3: ("size_mismatch", lambda gt: fields(np.full((H // S, W // S + 4), 1500, np.uint16), "16UC1")),
    5: ("truncated_data", lambda gt: ImageFields(H // S, W // S, "16UC1", 0, 2 * W // S, np.ones(40, np.uint8))),
    6: ("all_invalid_depth", lambda gt: fields(np.zeros((H // S, W // S), np.uint16), "16UC1")),
}
NAN_INF_FRAME = 7
CORRUPT_FRAME = 8
N_FRAMES = 10


def write_bag(path: Path, storage: str = "mcap", typestore: str = "humble", skip_topics: tuple[str, ...] = (),
              gt_size: tuple[int, int] = (H, W)) -> list[int]:
    """A bag with good and bad frames (see BAD_DEPTH); returns the RGB stamps."""
    store = load_typestore(typestore)
    build = rosbags_builder(store)

    def header(stamp: int):
        time = store.types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
        return store.types["std_msgs/msg/Header"](stamp=time, frame_id="cam_optical")

    rgb_stamps = []
    with BagWriter(path, store, storage=storage) as writer:
        for role, topic in TOPICS.items():
            if role not in skip_topics:
                writer.add_topic(topic, "sensor_msgs/msg/" + ("CameraInfo" if "info" in role else "Image"))
        for i in range(N_FRAMES):
            rgb, gt = scene(i)
            rgb_stamp, depth_stamp = EPOCH + i * PERIOD, EPOCH + i * PERIOD + 3_000_000
            rgb_stamps.append(rgb_stamp)
            if i in BAD_DEPTH:
                depth = BAD_DEPTH[i][1](gt)
            elif i == NAN_INF_FRAME:
                metres = gt[1::S, 1::S].copy()
                metres[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
                depth = fields(metres.astype(np.float32), "32FC1")
            else:
                depth = good_depth(gt)
            # depth is logged before RGB on odd frames: arrival order must not matter
            depth_log = depth_stamp + (1_000_000 if i % 2 else 9_000_000)
            gt_image = np.zeros(gt_size, np.float32) + 2.0 if gt_size != (H, W) else gt
            records = [
                (rgb_stamp + 5_000_000, "rgb", build.image(header(rgb_stamp), fields(rgb, "rgb8"))),
                (rgb_stamp + 5_000_001, "rgb_info", build.camera_info(header(rgb_stamp), info(W, H, 1.0))),
                (depth_log, "depth", build.image(header(depth_stamp), depth)),
                (depth_log + 1, "depth_info", build.camera_info(header(depth_stamp), info(W // S, H // S, 1 / S))),
                (depth_log + 2, "gt", build.image(header(depth_stamp),
                                                  fields(np.rint(gt_image * 1000).astype(np.uint16), "16UC1"))),
            ]
            for log_time, role, message in sorted(records, key=lambda r: r[0]):
                if role in skip_topics:
                    continue
                if role == "depth" and i == CORRUPT_FRAME:
                    writer.write_raw(TOPICS[role], log_time, b"\x00\x01\x00\x00\x12\x34garbage")
                else:
                    writer.write(TOPICS[role], log_time, message)
    return rgb_stamps


def replay_config(bag: Path, out: Path, **overrides) -> ReplayConfig:
    settings = {"bag": bag, "out_dir": out, "rgb_topic": TOPICS["rgb"], "rgb_info_topic": TOPICS["rgb_info"],
                "depth_topic": TOPICS["depth"], "depth_info_topic": TOPICS["depth_info"], "gt_topic": TOPICS["gt"],
                "sr": SRConfig(scale=S, backbone="guided_filter"), "progress": False,
                "slop_s": 0.010}  # under half the 30 Hz frame period: a dropped frame cannot mispair
    settings.update(overrides)
    return ReplayConfig(**settings)


def read_outputs(bag: Path) -> dict[str, list]:
    with BagReader(bag) as reader:
        out: dict[str, list] = {}
        for record in reader.records(reader.topics()):
            assert record.error == ""
            out.setdefault(record.topic, []).append(record.message)
    return out


def stamp(message) -> int:
    return message.header.stamp.sec * 10**9 + message.header.stamp.nanosec


@pytest.mark.parametrize(("storage", "typestore"), [("mcap", "humble"), ("sqlite3", "jazzy")])
def test_bad_inputs_are_counted_skips_and_good_pairs_are_written(tmp_path: Path, storage: str,
                                                                  typestore: str) -> None:
    rgb_stamps = write_bag(tmp_path / "in", storage, typestore)
    report = run_replay(replay_config(tmp_path / "in", tmp_path / "out", typestore=typestore, points="xyzrgb",
                                      preview_every=1))

    good = [i for i in range(N_FRAMES) if i not in BAD_DEPTH and i != CORRUPT_FRAME]
    assert report.pairs_processed == len(good)
    ledger = report.ledger
    assert ledger.balanced()
    expected_depth_skips = {reason: 1 for reason, _ in BAD_DEPTH.values()} | {"corrupt_record": 1}
    assert dict(ledger.skipped[TOPICS["depth"]]) == expected_depth_skips
    expected_rgb_skips = {reason: 1 for reason, _ in BAD_DEPTH.values()} | {"no_match_within_slop": 1}
    assert dict(ledger.skipped[TOPICS["rgb"]]) == expected_rgb_skips
    assert ledger.read[TOPICS["rgb"]] == N_FRAMES and ledger.processed[TOPICS["gt"]] == len(good)

    outputs = read_outputs(tmp_path / "out" / "sr_bag")
    for topic in (OUTPUT_IMAGE_TOPIC, OUTPUT_INFO_TOPIC, OUTPUT_POINTS_TOPIC):
        assert [stamp(m) for m in outputs[topic]] == [rgb_stamps[i] for i in good]
    for image, camera_info, cloud in zip(*(outputs[t] for t in (OUTPUT_IMAGE_TOPIC, OUTPUT_INFO_TOPIC,
                                                                 OUTPUT_POINTS_TOPIC))):
        assert (image.width, image.height, image.encoding, image.step) == (W, H, "16UC1", W * 2)  # replay's default
        assert image.header.frame_id == camera_info.header.frame_id == cloud.header.frame_id == "cam_optical"
        assert (camera_info.width, camera_info.height) == (W, H)
        assert (cloud.width, cloud.height, cloud.point_step, len(cloud.data)) == (W, H, 16, W * H * 16)  # XYZRGB
        depth = depth_from_image(image)
        assert not np.isinf(depth).any() and np.isfinite(depth).mean() > 0.9

    nan_inf_output = depth_from_image(outputs[OUTPUT_IMAGE_TOPIC][good.index(NAN_INF_FRAME)])
    assert np.nanmax(nan_inf_output) < 2.3 and np.nanmin(nan_inf_output) > 0.9

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["frames_scored"] == len(good) and set(metrics["metrics"]) == {"guided_filter", "bicubic"}
    assert metrics["skipped_messages"]["corrupt_record"] == 1
    assert metrics["pairs_skipped"] == {reason: 1 for reason, _ in BAD_DEPTH.values()}
    frames_csv = (tmp_path / "out" / "frames.csv").read_text().splitlines()
    assert len(frames_csv) == 1 + N_FRAMES - 1  # every pair attempted; the corrupt frame never paired
    assert len(list((tmp_path / "out" / "previews").glob("*.png"))) == len(good)  # preview_every=1: no bad frame
    summary = format_summary(report)
    assert "corrupt_record 1" in summary and "guided_filter" in summary and "bicubic" in summary


def test_missing_topic_is_a_clear_error_naming_the_bags_topics(tmp_path: Path, capsys) -> None:
    write_bag(tmp_path / "in", skip_topics=("depth_info",))
    with pytest.raises(BagError) as info_:
        run_replay(replay_config(tmp_path / "in", tmp_path / "out"))
    assert TOPICS["depth_info"] in str(info_.value) and TOPICS["rgb"] in str(info_.value)

    assert main(["replay", str(tmp_path / "in"), "--out", str(tmp_path / "out2"), "--rgb-topic", TOPICS["rgb"],
                 "--rgb-info-topic", TOPICS["rgb_info"], "--depth-topic", TOPICS["depth"],
                 "--depth-info-topic", TOPICS["depth_info"], "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    (at,) = [i for i, line in enumerate(lines) if "error" in line]
    assert "Traceback" not in err and lines[at].startswith("depth-sr replay: error: ")
    assert TOPICS["depth_info"] in lines[at]
    assert any(row.split()[0] == TOPICS["rgb"] for row in lines[at + 1:])  # the bag's topics follow, one a line


def test_replay_without_optional_topics_and_with_32fc1_output(tmp_path: Path) -> None:
    write_bag(tmp_path / "in")
    parser = argparse.ArgumentParser()
    replay_tool.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--rgb-topic", TOPICS["rgb"],
                              "--rgb-info-topic", TOPICS["rgb_info"], "--depth-topic", TOPICS["depth"],
                              "--depth-info-topic", "", "--backbone", "bicubic", "--output-encoding", "32FC1",
                              "--slop", "0.01",
                              "--points", "none", "--no-previews", "--no-progress"])
    assert replay_tool.run(args) == 0
    outputs = read_outputs(tmp_path / "out" / "sr_bag")
    assert OUTPUT_POINTS_TOPIC not in outputs
    # Without the depth CameraInfo the size-mismatched frame is refused by the depth stream's size,
    # fixed by its first good frame (core/limits.py), before it is decoded.
    assert {m.encoding for m in outputs[OUTPUT_IMAGE_TOPIC]} == {"32FC1"}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["metrics"] == {} and metrics["pairs_skipped"]["size_changed"] == 1
    assert set(metrics["messages"]) == {TOPICS["rgb"], TOPICS["rgb_info"], TOPICS["depth"]}
    assert not (tmp_path / "out" / "previews").exists()


def test_ground_truth_of_the_wrong_size_is_a_counted_skip_not_a_score(tmp_path: Path) -> None:
    write_bag(tmp_path / "in", gt_size=(H // 2, W // 2))
    report = run_replay(replay_config(tmp_path / "in", tmp_path / "out", previews=False))
    assert report.pairs_processed == 5 and report.frames_scored == 0 and report.metrics == {}
    assert report.ledger.skipped[TOPICS["gt"]]["ground_truth_size_mismatch"] == 5
    assert report.ledger.balanced()


def test_rerun_into_the_same_folder_replaces_the_output_bag(tmp_path: Path) -> None:
    write_bag(tmp_path / "in")
    config = replay_config(tmp_path / "in", tmp_path / "out", previews=False, gt_topic="")
    first = run_replay(config)
    second = run_replay(config)
    assert first.pairs_processed == second.pairs_processed == 5
    assert len(read_outputs(tmp_path / "out" / "sr_bag")[OUTPUT_IMAGE_TOPIC]) == 5


def test_slop_wider_than_half_a_frame_pairs_across_a_dropped_frame_like_message_filters(tmp_path: Path) -> None:
    # Depth 8 is corrupt and depth 9 is logged before RGB 9. With slop 0.05 s (over half the
    # 33 ms period) the greedy policy pairs depth 9 with the waiting RGB 8, as the node would.
    rgb_stamps = write_bag(tmp_path / "in")
    report = run_replay(replay_config(tmp_path / "in", tmp_path / "out", slop_s=0.05, previews=False))
    outputs = read_outputs(tmp_path / "out" / "sr_bag")
    stamps = [stamp(m) for m in outputs[OUTPUT_IMAGE_TOPIC]]
    assert rgb_stamps[8] in stamps and rgb_stamps[9] not in stamps
    assert report.ledger.skipped[TOPICS["rgb"]]["partner_taken"] == 1


def test_a_run_whose_every_pair_is_refused_ends_with_the_flag_that_fixes_it(tmp_path: Path, caplog) -> None:
    from bad_bags import find, good_records, restamp
    from bad_bags import write_bag as write_records

    records = good_records(4)
    for i in range(4):  # depth in another camera's frame: refused as unregistered, pair by pair
        depth = find(records, "depth", i)
        restamp(depth, depth.message.header.stamp.sec * 10**9 + depth.message.header.stamp.nanosec, "tof_optical")
    write_records(tmp_path / "bag", records)
    report = run_replay(replay_config(tmp_path / "bag", tmp_path / "out", previews=False))
    assert report.pairs_processed == 0 and report.pairs_skipped == {"unregistered_depth": 4}
    assert [h for h in report.hints if "unregistered_depth" in h and "--unaligned-depth" in h]
    assert [r for r in caplog.records if "skipped (unregistered_depth)" in r.getMessage()
            and "--unaligned-depth" in r.getMessage()]  # the first skips logged name the flag too


def test_log_lines_during_a_run_never_break_into_the_progress_bar(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    write_bag(tmp_path / "in")  # bad depth frames mid-bag: warnings while the bar is drawn
    argv = [sys.executable, "-m", "depth_sr_ros.cli", "replay", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
            "--rgb-topic", TOPICS["rgb"], "--rgb-info-topic", TOPICS["rgb_info"], "--depth-topic", TOPICS["depth"],
            "--depth-info-topic", TOPICS["depth_info"], "--backbone", "bicubic", "--slop", "0.01", "--no-previews"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    segments = re.split(r"[\r\n]", result.stderr)
    bar = [s for s in segments if re.search(r"replay: +\d+%", s)]
    logs = [s for s in segments if re.search(r"(WARNING|INFO) depth_sr_ros", s)]
    assert bar and len(logs) >= 3  # the bar was drawn, and skips were logged while it was
    assert all(re.match(r"(WARNING|INFO) depth_sr_ros", s) for s in logs), [s for s in logs if "%|" in s]
