"""Regression tests for the silent wrong results and crashes of issue 13.

Each test failed on the code before the fix (checked by running this module against it): the
outcome asserted here is the fixed behaviour, through APIs the old code had too.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from bad_bags import (
    big_records,
    break_mcap_chunk_checksum,
    break_sqlite_page,
    find,
    good_records,
    mcap_chunk_offsets,
    replace,
    restamp,
    write_bag,
)
from test_replay import EPOCH, PERIOD, TOPICS, fields, replay_config, scene

from depth_sr_ros.cli import main
from depth_sr_ros.core.cloud_read import points_from_cloud
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay.runner import run_replay


def replay(tmp_path: Path, records, storage: str = "mcap", **overrides):
    counts = write_bag(tmp_path / "bag", records, storage)
    settings = {"previews": False, "slop_s": 0.010}
    settings.update(overrides)
    return run_replay(replay_config(tmp_path / "bag", tmp_path / "out", **settings)), counts


def test_ground_truth_equally_near_two_messages_is_not_scored_against_a_guess(tmp_path: Path) -> None:
    records = good_records(4)
    gt = find(records, "gt", 1)
    stamp = gt.message.header.stamp.sec * 10**9 + gt.message.header.stamp.nanosec
    restamp(gt, stamp - 2_000_000)  # frame 1's ground truth 2 ms early ...
    decoy = find(records, "gt", 0)
    records.append(type(gt)(gt.log_ns + 1, "gt", decoy.message))
    restamp(records[-1], stamp + 2_000_000)  # ... and frame 0's 2 ms late: equally near
    report, _ = replay(tmp_path, records)
    assert report.pairs_processed == 4 and report.frames_scored == 3
    assert report.ledger.skipped[TOPICS["gt"]]["ambiguous_ground_truth"] == 2


def test_zero_stamped_burst_never_pairs(tmp_path: Path) -> None:
    records = good_records(4)
    for role in ("rgb", "depth", "gt"):
        for i in range(4):
            restamp(find(records, role, i), 0)
    report, _ = replay(tmp_path, records)
    assert report.pairs_processed == 0
    for role in ("rgb", "depth", "gt"):
        assert report.ledger.skipped[TOPICS[role]]["zero_stamp"] == 4


def test_camera_info_with_nan_projection_is_refused(tmp_path: Path) -> None:
    records = good_records(4)
    info = find(records, "rgb_info", 2)
    replace(info, p=np.full(12, np.nan))
    report, _ = replay(tmp_path, records)
    assert report.pairs_processed == 3 and report.pairs_skipped == {"bad_camera_info": 1}


def test_depth_from_another_frame_is_unregistered_in_depth_mode(tmp_path: Path) -> None:
    records = good_records(4)
    for i in range(4):
        depth = find(records, "depth", i)
        restamp(depth, depth.message.header.stamp.sec * 10**9 + depth.message.header.stamp.nanosec, "tof_optical")
    report, _ = replay(tmp_path, records)
    assert report.pairs_processed == 0 and report.pairs_skipped == {"unregistered_depth": 4}


def test_pairs_across_a_dropped_frame_are_warned_about(tmp_path: Path) -> None:
    records = good_records(6)
    records.remove(find(records, "depth", 2))  # a dropped depth frame ...
    find(records, "depth", 2).log_ns = EPOCH + 3 * PERIOD  # ... and depth 3 logged before RGB 3
    report, _ = replay(tmp_path, records, slop_s=0.04)  # a slop over the frame period: depth 3 pairs with RGB 2
    assert report.notices.get("stamp_gap_over_half_period", 0) >= 1


def test_a_slop_that_pairs_nothing_ends_with_a_hint(tmp_path: Path) -> None:
    report, _ = replay(tmp_path, good_records(4), slop_s=0.001)
    assert report.pairs_processed == 0
    assert any("nothing paired" in hint and "--slop" in hint for hint in report.hints)


def _replay_args(bag: Path, out: Path, *extra: str) -> list[str]:
    return ["replay", str(bag), "--out", str(out), "--rgb-topic", TOPICS["rgb"], "--rgb-info-topic",
            TOPICS["rgb_info"], "--depth-topic", TOPICS["depth"], "--depth-info-topic", TOPICS["depth_info"],
            "--backbone", "bicubic", "--slop", "0.01", "--no-previews", "--no-progress", *extra]


@pytest.mark.parametrize("extra", [("--scale", "3"), ("--gt-topic", TOPICS["depth"]), ("--slop", "inf"),
                                   ("--slop", "nan"), ("--backbone", "nosuch"), ("--queue-size", "0")],
                         ids=["scale3", "gt-is-depth", "slop-inf", "slop-nan", "backbone-nosuch", "queue-0"])
def test_replay_flags_the_node_refuses_are_one_line_errors(tmp_path: Path, capsys, extra) -> None:
    write_bag(tmp_path / "bag", good_records(2))
    assert main(_replay_args(tmp_path / "bag", tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "error" in line]
    assert "Traceback" not in err and extra[0] in line


def test_scale_other_than_the_data_ratio_is_warned_about(tmp_path: Path) -> None:
    report, _ = replay(tmp_path, good_records(2), sr=SRConfig(
        scale=8, backbone="bicubic"))
    assert report.notices == {"scale_ratio_mismatch": 2}


def test_damaged_mcap_chunk_is_skipped_and_later_chunks_are_read(tmp_path: Path) -> None:
    records = big_records(12)
    counts = write_bag(tmp_path / "bag", records)
    assert len(mcap_chunk_offsets(tmp_path / "bag")) >= 3
    break_mcap_chunk_checksum(tmp_path / "bag", 1)
    report = run_replay(replay_config(tmp_path / "bag", tmp_path / "out", gt_topic="", previews=False, slop_s=0.01,
                                      sr=SRConfig(
                                          scale=4, backbone="bicubic")))
    ledger = report.ledger
    unread = sum(ledger.unreadable.values())
    assert 0 < unread < sum(counts.values()) // 2
    assert all(ledger.read[t] + ledger.unreadable[t] == n for t, n in counts.items() if n)
    assert report.pairs_processed >= 6  # frames of the chunks before and after the damaged one


def test_damaged_sqlite_page_is_skipped_and_later_rows_are_read(tmp_path: Path) -> None:
    counts = write_bag(tmp_path / "bag", big_records(12), storage="sqlite3")
    break_sqlite_page(tmp_path / "bag", 0.3)  # a page that sqlite sees as damaged (an overflow-chain link)
    report = run_replay(replay_config(tmp_path / "bag", tmp_path / "out", gt_topic="", previews=False, slop_s=0.01,
                                      sr=SRConfig(
                                          scale=4, backbone="bicubic")))
    ledger = report.ledger
    assert sum(ledger.unreadable.values()) == 1
    assert all(ledger.read[t] + ledger.unreadable[t] == n for t, n in counts.items() if n)
    assert report.pairs_processed >= 9
    with open(report.outputs["frames_csv"], newline="") as handle:
        stamps = [int(row["rgb_stamp_ns"]) for row in csv.DictReader(handle) if row["status"] == "ok"]
    assert max(stamps) == EPOCH + 11 * PERIOD  # the last frame, after the damage, was read


def test_non_contiguous_depth_data_decodes_like_contiguous() -> None:
    _, depth_m = scene(0)
    millimetres = np.rint(depth_m * 1000).astype("<u2")
    image = fields(millimetres, "16UC1")
    spread = np.zeros(image.data.size * 2, np.uint8)
    spread[::2] = image.data
    strided = SimpleNamespace(**{**vars(image), "data": spread[::2]})  # every other byte: not contiguous
    np.testing.assert_array_equal(depth_from_image(strided), depth_from_image(image))


def test_padded_cloud_rows_from_non_contiguous_data_read_right() -> None:
    points = np.arange(2 * 3 * 3, dtype="<f4").reshape(2, 3, 3)
    rows = np.zeros((2, 3 * 12 + 8), np.uint8)  # 8 bytes of row padding
    rows[:, : 3 * 12] = points.reshape(2, -1).view(np.uint8)
    spread = np.zeros(rows.size * 3, np.uint8)
    spread[::3] = rows.reshape(-1)
    fields_ = [SimpleNamespace(name=n, offset=4 * k, datatype=7, count=1) for k, n in enumerate("xyz")]
    cloud = SimpleNamespace(height=2, width=3, fields=fields_, is_bigendian=False, point_step=12,
                            row_step=3 * 12 + 8, data=spread[::3], is_dense=True)
    np.testing.assert_array_equal(points_from_cloud(cloud), points.reshape(-1, 3))

