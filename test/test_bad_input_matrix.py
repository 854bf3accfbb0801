"""The bad-input matrix (issue 13): bad images, CameraInfo, timing, bag storage, LiDAR clouds, CLI flags
and weights files, each in a real bag (rosbags CDR, MCAP or sqlite3) or on the command line.

Every case ends in a counted, named skip (or a named warning) with the accounting intact
(read = processed + skipped per topic, read + unreadable = what the bag holds), or in one error
line naming the flag or file with exit status 2 and no traceback. Small frames and the `bicubic`
backbone keep it quick: what is tested is the handling of the input, not the upsampler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bad_bags import (
    BUILD,
    DEPTH_OFFSET,
    STORE,
    Record,
    big_records,
    break_mcap_chunk_checksum,
    break_sqlite_page,
    find,
    good_records,
    header,
    replace,
    restamp,
    write_bag,
)
from test_replay import EPOCH, PERIOD, TOPICS, replay_config

from depth_sr_ros.cli import main
from depth_sr_ros.core.frame_processor import OutputConfig
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.core.pointcloud import PointCloudFields
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.summary import ReplayReport

RGB, DEPTH, GT = TOPICS["rgb"], TOPICS["depth"], TOPICS["gt"]
ROOT = Path(__file__).resolve().parents[1]
Edit = Callable[[list[Record]], dict | None]


def stamp_of(record: Record) -> int:
    return record.message.header.stamp.sec * 10**9 + record.message.header.stamp.nanosec


def run(tmp_path: Path, records: list[Record], storage: str = "mcap", **overrides) -> tuple[ReplayReport, dict]:
    counts = write_bag(tmp_path / "bag", records, storage)
    settings = {"previews": False, "slop_s": 0.010, "sr": SRConfig(scale=4, backbone="bicubic")}
    settings.update(overrides)
    report = run_replay(replay_config(tmp_path / "bag", tmp_path / "out", **settings))
    check_accounting(report, counts)
    return report, counts


def check_accounting(report: ReplayReport, counts: dict[str, int]) -> None:
    ledger = report.ledger
    assert ledger.balanced() and ledger.complete()
    for topic, held in ledger.held.items():
        assert held == counts[topic]
        assert ledger.read[topic] + ledger.unreadable[topic] == held
        assert ledger.read[topic] == ledger.processed[topic] + sum(ledger.skipped[topic].values())


# ------------------------------------------------------------------------------------------- frames
# Each edit changes frame 1 of 3 (or the config); the frame is skipped with the reason, or "ok".

def depth(records):
    return find(records, "depth", 1)


def rgb(records):
    return find(records, "rgb", 1)


def as_float_depth(records, values) -> None:
    metres = np.full((12, 16), values, "<f4")
    replace(depth(records), encoding="32FC1", step=64, data=metres.reshape(-1).view(np.uint8))


def set_depth_mm(records, value) -> None:
    replace(depth(records), data=np.full(12 * 16, value, "<u2").view(np.uint8))


def swap_bytes(records) -> None:
    millimetres = np.asarray(depth(records).message.data).view("<u2").astype(">u2")
    replace(depth(records), is_bigendian=1, data=millimetres.view(np.uint8))


def pad_rows(records) -> None:
    rows = np.asarray(depth(records).message.data).reshape(12, 32)
    padded = np.concatenate([rows, np.full((12, 8), 0xAB, np.uint8)], axis=1)
    replace(depth(records), step=40, data=padded.reshape(-1))


def rgb_as(records, encoding: str) -> None:
    pixels = np.asarray(rgb(records).message.data).reshape(48, 64, 3)
    converted = {"mono8": pixels[..., 0], "bgra8": np.dstack([pixels[..., ::-1], np.full((48, 64), 255, np.uint8)])}
    array = np.ascontiguousarray(converted[encoding])
    replace(rgb(records), encoding=encoding, step=array.nbytes // 48, data=array.reshape(-1))


def info_field(role: str, index: int = 1, **changes) -> Edit:
    def edit(records):
        record = find(records, role, index)
        replace(record, **{k: (v(record.message) if callable(v) else v) for k, v in changes.items()})
    return edit


def nan_at(name: str, index: int) -> Callable:
    def change(message):
        values = np.array(getattr(message, name), dtype=np.float64)
        values[index] = np.nan if name != "r" else np.inf
        return values
    return change


def frame_id(value: str) -> Edit:
    def edit(records):
        restamp(depth(records), stamp_of(depth(records)), value)
    return edit


def corrupt(role: str) -> Edit:
    def edit(records):
        find(records, role, 1).message = b"\x00\x01\x00\x00\x12\x34 not CDR"
    return edit


def drop(role: str, index: int) -> Edit:
    def edit(records):
        records.remove(find(records, role, index))
    return edit


FRAME_CASES: dict[str, tuple[Edit, str]] = {
    "image/depth_8UC1": (lambda r: replace(depth(r), encoding="8UC1"), "unsupported_encoding"),
    "image/rgb_yuv422": (lambda r: replace(rgb(r), encoding="yuv422"), "unsupported_encoding"),
    "image/depth_truncated": (lambda r: replace(depth(r), data=depth(r).message.data[:100]), "truncated_data"),
    "image/rgb_truncated": (lambda r: replace(rgb(r), data=rgb(r).message.data[:1000]), "truncated_data"),
    "image/depth_step_short": (lambda r: replace(depth(r), step=10), "bad_step"),
    "image/rgb_step_short": (lambda r: replace(rgb(r), step=100), "bad_step"),
    "image/depth_zero_width": (lambda r: replace(depth(r), width=0), "empty_image"),
    "image/rgb_zero_height": (lambda r: replace(rgb(r), height=0), "empty_image"),
    "image/depth_all_zero_mm": (lambda r: set_depth_mm(r, 0), "all_invalid_depth"),
    "image/depth_beyond_max_depth": (lambda r: set_depth_mm(r, 60000), "all_invalid_depth"),
    "image/depth_32FC1_all_nan": (lambda r: as_float_depth(r, np.nan), "all_invalid_depth"),
    "image/depth_32FC1_all_inf": (lambda r: as_float_depth(r, np.inf), "all_invalid_depth"),
    "image/depth_32FC1_negative": (lambda r: as_float_depth(r, -1.5), "all_invalid_depth"),
    "image/depth_32FC1_metres": (lambda r: as_float_depth(r, 1.5), "ok"),
    "image/depth_size_vs_its_info": (lambda r: replace(depth(r), width=8, step=16), "size_mismatch"),
    "image/depth_big_endian": (swap_bytes, "ok"),
    "image/depth_row_padding": (pad_rows, "ok"),
    "image/depth_mono16": (lambda r: replace(depth(r), encoding="mono16"), "ok"),
    "image/rgb_mono8": (lambda r: rgb_as(r, "mono8"), "ok"),
    "image/rgb_bgra8": (lambda r: rgb_as(r, "bgra8"), "ok"),
    "image/depth_other_frame_id": (frame_id("tof_optical_frame"), "unregistered_depth"),
    "image/depth_other_frame_id_assume_registered": (
        lambda r: (frame_id("tof_optical_frame")(r), {"output": OutputConfig(assume_registered=True)})[1], "ok"),
    "image/depth_empty_frame_id": (frame_id(""), "ok"),
    "info/rgb_K_zero": (info_field("rgb_info", k=np.zeros(9)), "bad_camera_info"),
    "info/rgb_K_nan": (info_field("rgb_info", k=nan_at("k", 2)), "bad_camera_info"),
    "info/rgb_P_nan": (info_field("rgb_info", p=nan_at("p", 0)), "bad_camera_info"),
    "info/rgb_D_nan": (info_field("rgb_info", d=nan_at("d", 1)), "bad_camera_info"),
    "info/rgb_R_inf": (info_field("rgb_info", r=nan_at("r", 4)), "bad_camera_info"),
    "info/depth_negative_fx": (info_field("depth_info", k=lambda m: np.array(m.k) * [-1, 1, 1, 1, 1, 1, 1, 1, 1]),
                               "bad_camera_info"),
    "info/depth_info_of_another_camera": (info_field("depth_info", k=lambda m: np.array(m.k) * [1.5, 1, 1, 1, 1.5,
                                                                                                1, 1, 1, 1]),
                                          "unregistered_depth"),
    "info/rgb_size_differs": (info_field("rgb_info", width=60), "size_mismatch"),
    "info/rgb_binning_2": (info_field("rgb_info", binning_x=2, binning_y=2), "size_mismatch"),
    "info/rgb_roi_crop": (info_field("rgb_info", roi=lambda m: type(m.roi)(x_offset=8, y_offset=8, height=24,
                                                                            width=32, do_rectify=False)),
                          "size_mismatch"),
    "info/rgb_roi_full_image": (info_field("rgb_info", roi=lambda m: type(m.roi)(x_offset=0, y_offset=0, height=48,
                                                                                  width=64, do_rectify=False)), "ok"),
    # sizes claimed beyond the pixel limit, or other than the stream's since its first good frame (issue 23)
    "bounds/rgb_claims_16000x12000": (lambda r: replace(rgb(r), width=16000, height=12000, step=48000), "oversize"),
    "bounds/rgb_and_info_claim_16000x12000": (lambda r: (replace(rgb(r), width=16000, height=12000, step=48000),
                                                         info_field("rgb_info", width=16000, height=12000)(r))[1],
                                              "oversize"),
    "bounds/depth_and_info_change_size": (lambda r: (replace(depth(r), width=8, height=6, step=16,
                                                             data=np.full(48, 1500, "<u2").view(np.uint8)),
                                                     info_field("depth_info", width=8, height=6)(r))[1],
                                            "size_changed"),
    "bounds/limit_below_the_frames": (lambda r: {"max_image_pixels": 64 * 48 - 1}, "all_frames_oversize"),
}


@pytest.mark.parametrize("case", FRAME_CASES)
def test_bad_frame_is_a_counted_skip(tmp_path: Path, case: str) -> None:
    edit, expected = FRAME_CASES[case]
    records = good_records(3)
    overrides = edit(records) or {}
    report, _ = run(tmp_path, records, **overrides)
    if expected == "ok":
        assert report.pairs_processed == 3 and report.pairs_skipped == {}
        return
    if expected == "all_frames_oversize":  # --max-image-pixels below the camera's size: no CameraInfo is kept
        assert report.pairs_processed == 0 and report.pairs_skipped == {"missing_camera_info": 3}
        assert report.ledger.skipped[RGB_INFO] == {"oversize": 3}
        return
    assert report.pairs_processed == 2 and report.pairs_skipped == {expected: 1}
    for topic in (RGB, DEPTH):
        assert report.ledger.skipped[topic] == {expected: 1}
    assert report.frames_scored == 2 and report.ledger.skipped[GT] == {expected: 1}


# --------------------------------------------------------------------- messages that never pair or are used

RGB_INFO, DEPTH_INFO = TOPICS["rgb_info"], TOPICS["depth_info"]
UNUSED_INFOS = {RGB_INFO: {"unused_camera_info": 1}, DEPTH_INFO: {"unused_camera_info": 1}}  # of an unpaired frame


def duplicate_rgb_stamp(records: list[Record]) -> None:
    """RGB 2 carries RGB 1's stamp and arrives while RGB 1 still waits for its depth."""
    first, second = find(records, "rgb", 1), find(records, "rgb", 2)
    restamp(second, stamp_of(first))
    second.log_ns = first.log_ns + 2


MESSAGE_CASES: dict[str, tuple[Edit, int, dict[str, dict[str, int]]]] = {
    # name: (edit, pairs processed, {topic: skips expected on it})
    "cdr/depth_not_cdr": (corrupt("depth"), 2, {DEPTH: {"corrupt_record": 1}, RGB: {"no_match_within_slop": 1},
                                                 GT: {"unmatched_ground_truth": 1}, **UNUSED_INFOS}),
    "cdr/rgb_not_cdr": (corrupt("rgb"), 2, {RGB: {"corrupt_record": 1}, DEPTH: {"no_match_within_slop": 1},
                                             GT: {"unmatched_ground_truth": 1}, **UNUSED_INFOS}),
    "cdr/rgb_info_not_cdr": (corrupt("rgb_info"), 3, {RGB_INFO: {"corrupt_record": 1}}),  # frame 0's info applies
    "cdr/gt_not_cdr": (corrupt("gt"), 3, {GT: {"corrupt_record": 1}}),
    "info/rgb_info_missing_before_frame_0": (drop("rgb_info", 0), 2, {
        topic: {"missing_camera_info": 1} for topic in (RGB, DEPTH, DEPTH_INFO, GT)}),
    "info/depth_info_missing_before_frame_0": (drop("depth_info", 0), 2, {
        topic: {"missing_camera_info": 1} for topic in (RGB, DEPTH, RGB_INFO, GT)}),
    "timing/zero_stamp_frame_1": (lambda r: [restamp(find(r, role, 1), 0) for role in ("rgb", "depth", "gt")], 2,
                                  {RGB: {"zero_stamp": 1}, DEPTH: {"zero_stamp": 1}, GT: {"zero_stamp": 1},
                                   **UNUSED_INFOS}),
    "bounds/rgb_info_claims_16000x12000": (info_field("rgb_info", width=16000, height=12000), 3,  # frame 0's applies
                                           {RGB_INFO: {"oversize": 1}}),
    "timing/zero_stamp_ground_truth": (lambda r: restamp(find(r, "gt", 1), 0), 3, {GT: {"zero_stamp": 1}}),
    "timing/zero_stamp_camera_info_still_applies": (lambda r: restamp(find(r, "rgb_info", 0), 0), 3, {}),
    "timing/duplicate_rgb_stamp": (duplicate_rgb_stamp, 2, {RGB: {"duplicate_stamp": 1},
                                                            DEPTH: {"no_match_within_slop": 1},
                                                            GT: {"unmatched_ground_truth": 1}, **UNUSED_INFOS}),
    "timing/depth_beyond_slop": (lambda r: restamp(depth(r), stamp_of(depth(r)) + 15_000_000), 2,
                                 {RGB: {"no_match_within_slop": 1}, DEPTH: {"no_match_within_slop": 1},
                                  GT: {"unmatched_ground_truth": 1}, **UNUSED_INFOS}),
    "timing/ground_truth_duplicate_stamp": (
        lambda r: r.append(Record(find(r, "gt", 1).log_ns + 1, "gt", find(r, "gt", 1).message)), 3,
        {GT: {"ambiguous_ground_truth": 2}}),
    "timing/stamps_out_of_order": (
        lambda r: [setattr(find(r, role, 1), "log_ns", find(r, role, 2).log_ns + 10) for role in ("rgb", "depth")],
        3, {}),
}


@pytest.mark.parametrize("case", MESSAGE_CASES)
def test_unusable_message_is_counted_on_its_topic(tmp_path: Path, case: str) -> None:
    edit, pairs, skips = MESSAGE_CASES[case]
    records = good_records(3)
    edit(records)
    report, _ = run(tmp_path, records)
    assert report.pairs_processed == pairs
    for topic in TOPICS.values():
        assert dict(report.ledger.skipped[topic]) == skips.get(topic, {}), topic


def test_queue_overflow_is_counted(tmp_path: Path) -> None:
    records = good_records(4)
    for i in range(4):
        find(records, "depth", i).log_ns = EPOCH + 10 * PERIOD + i  # every depth arrives after all RGB
    report, _ = run(tmp_path, records, queue_size=1)
    assert report.ledger.skipped[RGB]["queue_overflow"] == 3 and report.pairs_processed == 1


def test_exact_sync_on_offset_stamps_pairs_nothing_and_says_why(tmp_path: Path) -> None:
    report, _ = run(tmp_path, good_records(3), exact_sync=True)
    assert report.pairs_processed == 0 and any("--exact-sync" in hint for hint in report.hints)


def test_ground_truth_that_matches_no_frame_gives_a_hint(tmp_path: Path) -> None:
    records = good_records(3)
    for i in range(3):
        restamp(find(records, "gt", i), stamp_of(find(records, "gt", i)) + 50_000_000)
    report, _ = run(tmp_path, records)
    assert report.frames_scored == 0 and report.ledger.skipped[GT] == {"unmatched_ground_truth": 3}
    assert any("no frame scored" in hint for hint in report.hints)


def test_ground_truth_with_the_exact_stamp_wins_over_a_near_one(tmp_path: Path) -> None:
    clean, _ = run(tmp_path / "clean", good_records(3))
    records = good_records(3)
    decoy = Record(find(records, "gt", 1).log_ns + 1, "gt", find(records, "gt", 0).message)
    restamp(decoy, stamp_of(find(records, "gt", 1)) + 1_000_000)  # 1 ms off, another frame's content
    records.append(decoy)
    report, _ = run(tmp_path / "decoy", records)
    assert report.frames_scored == 3 and report.metrics == clean.metrics
    assert report.ledger.skipped[GT] == {"unmatched_ground_truth": 1}


def test_empty_bag_ends_with_a_hint(tmp_path: Path) -> None:
    report, _ = run(tmp_path, [])
    assert report.pairs_processed == 0 and any("nothing paired" in hint for hint in report.hints)


# --------------------------------------------------------------------------------------------- storage

def _bicubic(**overrides):
    return {"gt_topic": "", "sr": SRConfig(scale=4, backbone="bicubic"), **overrides}


@pytest.mark.parametrize("chunk", [0, -1], ids=["first_chunk", "last_chunk"])
def test_mcap_chunk_with_a_bad_checksum_costs_only_that_chunk(tmp_path: Path, chunk: int) -> None:
    counts = write_bag(tmp_path / "bag", big_records(12))
    break_mcap_chunk_checksum(tmp_path / "bag", chunk)
    report = run_replay(replay_config(tmp_path / "bag", tmp_path / "out", previews=False, **_bicubic()))
    check_accounting(report, counts)
    assert len(report.storage_errors) >= 1 and 0 < sum(report.ledger.unreadable.values()) < 30
    assert 4 <= report.pairs_processed < 12


def test_damaged_sqlite_page_late_in_the_file(tmp_path: Path) -> None:
    counts = write_bag(tmp_path / "bag", big_records(12), storage="sqlite3")
    break_sqlite_page(tmp_path / "bag", 0.7)
    report = run_replay(replay_config(tmp_path / "bag", tmp_path / "out", previews=False, **_bicubic()))
    check_accounting(report, counts)
    assert sum(report.ledger.unreadable.values()) == 1 and report.pairs_processed == 11


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_clean_bag_in_either_storage_is_read_whole(tmp_path: Path, storage: str) -> None:
    report, _ = run(tmp_path, good_records(3), storage)
    assert report.pairs_processed == 3 and report.storage_errors == [] and sum(report.ledger.unreadable.values()) == 0


def test_a_single_mcap_file_is_a_bag(tmp_path: Path) -> None:
    counts = write_bag(tmp_path / "bag", good_records(3))
    (mcap,) = (tmp_path / "bag").glob("*.mcap")
    report = run_replay(replay_config(mcap, tmp_path / "out", previews=False, **_bicubic(slop_s=0.01)))
    check_accounting(report, counts)
    assert report.pairs_processed == 3


# ----------------------------------------------------------------------------------------- LiDAR clouds

LIDAR = "/lidar/points"
CLOUD_FIELDS = {"x": 0, "y": 4, "z": 8}


def grid_points(z: float = 2.0) -> np.ndarray:
    """A 8x10 organised grid of points in front of the camera (the camera's optical frame)."""
    xs, ys = np.meshgrid(np.linspace(-0.6, 0.6, 10), np.linspace(-0.45, 0.45, 8))
    return np.stack([xs, ys, np.full_like(xs, z)], axis=-1).astype("<f4")


def cloud_message(stamp: int, points: np.ndarray, datatype: int = 7, names: str = "xyz", point_step: int = 12,
                  row_pad: int = 0, data: np.ndarray | None = None, offsets: dict | None = None) -> object:
    height, width = points.shape[:2]
    rows = points.reshape(height, -1).view(np.uint8).reshape(height, -1)
    rows = np.concatenate([rows, np.zeros((height, row_pad), np.uint8)], axis=1)
    field_cls = STORE.types["sensor_msgs/msg/PointField"]
    offsets = offsets or CLOUD_FIELDS
    fields = [field_cls(name=n, offset=offsets[n], datatype=datatype, count=1) for n in names]
    return BUILD.point_cloud(header(stamp, "lidar"), PointCloudFields(
        height=height, width=width, fields=fields, is_bigendian=False, point_step=point_step,
        row_step=rows.shape[1], data=rows.reshape(-1) if data is None else data, is_dense=False))


def lidar_records(cloud_1: Callable[[int], object]) -> list[Record]:
    records = [r for r in good_records(3, gt=False) if r.role in ("rgb", "rgb_info")]
    for i in range(3):
        stamp = EPOCH + i * PERIOD + DEPTH_OFFSET
        message = cloud_1(stamp) if i == 1 else cloud_message(stamp, grid_points())
        records.append(Record(stamp + 5_000_000, LIDAR, message, "sensor_msgs/msg/PointCloud2"))
    return records


def float64_points(stamp: int) -> object:
    points = grid_points().astype("<f8")
    return cloud_message(stamp, points, datatype=8, point_step=24, offsets={"x": 0, "y": 8, "z": 16})


CLOUD_CASES: dict[str, tuple[Callable[[int], object], str]] = {
    "cloud/no_z_field": (lambda s: cloud_message(s, grid_points(), names="xy"), "bad_point_fields"),
    "cloud/unknown_datatype": (lambda s: cloud_message(s, grid_points(), datatype=9), "bad_point_fields"),
    "cloud/field_outside_point": (lambda s: cloud_message(s, grid_points(), offsets={"x": 0, "y": 4, "z": 10}),
                                  "bad_point_fields"),
    "cloud/truncated_data": (lambda s: cloud_message(s, grid_points(), data=np.zeros(100, np.uint8)),
                             "truncated_data"),
    "cloud/row_step_short": (lambda s: replace_cloud(cloud_message(s, grid_points()), row_step=60), "truncated_data"),
    "cloud/all_nan": (lambda s: cloud_message(s, np.full((8, 10, 3), np.nan, "<f4")), "no_points_in_view"),
    "cloud/all_behind_camera": (lambda s: cloud_message(s, grid_points(z=-2.0)), "no_points_in_view"),
    "cloud/no_points": (lambda s: cloud_message(s, np.zeros((1, 0, 3), "<f4")), "no_points_in_view"),
    "cloud/float64_fields": (float64_points, "ok"),
    "cloud/padded_rows": (lambda s: cloud_message(s, grid_points(), row_pad=7), "ok"),
}


def replace_cloud(message, **changes):
    import dataclasses

    return dataclasses.replace(message, **changes)


@pytest.mark.parametrize("case", CLOUD_CASES)
def test_bad_lidar_cloud_is_a_counted_skip(tmp_path: Path, case: str) -> None:
    make, expected = CLOUD_CASES[case]
    counts = write_bag(tmp_path / "bag", lidar_records(make))
    identity = Extrinsic.from_translation_quaternion((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    config = replay_config(tmp_path / "bag", tmp_path / "out", depth_topic="", depth_info_topic="", gt_topic="",
                           lidar_topic=LIDAR, extrinsic=identity, previews=False,
                           sr=SRConfig(scale=4, backbone="normalized_conv"))
    report = run_replay(config)
    check_accounting(report, counts)
    if expected == "ok":
        assert report.pairs_processed == 3 and report.pairs_skipped == {}
    else:
        assert report.pairs_processed == 2 and report.pairs_skipped == {expected: 1}
        assert report.ledger.skipped[LIDAR] == {expected: 1}


# ------------------------------------------------------------------------------------------ CLI flags

@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "bag"
    write_bag(path, good_records(3))
    return path


def replay_argv(bag: Path, out: Path, *extra: str) -> list[str]:
    return ["replay", str(bag), "--out", str(out), "--rgb-topic", RGB, "--rgb-info-topic", TOPICS["rgb_info"],
            "--depth-topic", DEPTH, "--depth-info-topic", TOPICS["depth_info"], "--backbone", "bicubic",
            "--slop", "0.01", "--no-previews", "--no-progress", *extra]


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if ": error: " in line]
    return line


REPLAY_FLAG_CASES = {
    "slop_inf": (("--slop", "inf"), "--slop"),
    "slop_nan": (("--slop", "nan"), "--slop"),
    "slop_negative": (("--slop", "-1"), "--slop"),
    "slop_zero": (("--slop", "0"), "--slop"),
    "slop_text": (("--slop", "fast"), "--slop"),
    "queue_size_zero": (("--queue-size", "0"), "--queue-size"),
    "queue_size_huge": (("--queue-size", "100000"), "--queue-size"),
    "scale_3": (("--scale", "3"), "--scale"),
    "backbone_unknown": (("--backbone", "nosuch"), "--backbone"),
    "point_stride_zero": (("--point-stride", "0"), "--point-stride"),
    "output_encoding_8UC1": (("--output-encoding", "8UC1"), "--output-encoding"),
    "extrinsic_three_numbers": (("--extrinsic", "1 2 3"), "--extrinsic"),
    "typestore_noetic": (("--typestore", "noetic"), "--typestore"),
    "unknown_flag": (("--nosuch", "1"), "--nosuch"),
    "gt_topic_is_depth_topic": (("--gt-topic", DEPTH), "--gt-topic"),
    "rgb_info_topic_empty": (("--rgb-info-topic", ""), "--rgb-info-topic"),
    "lidar_and_unaligned": (("--lidar-topic", "/x", "--unaligned-depth"), "--lidar-topic"),
    "weights_missing": (("--weights", "/no/such/file.safetensors"), "/no/such/file.safetensors"),
}


@pytest.mark.parametrize("case", REPLAY_FLAG_CASES)
def test_bad_replay_flag_is_one_line_naming_it(bag: Path, tmp_path: Path, capsys, case: str) -> None:
    extra, named = REPLAY_FLAG_CASES[case]
    assert main(replay_argv(bag, tmp_path / "out", *extra)) == 2
    line = one_error_line(capsys)
    assert line.startswith("depth-sr replay: error: ") and named in line


def test_out_naming_an_existing_file_is_refused(bag: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert main(replay_argv(bag, tmp_path / "file")) == 2
    assert "--out" in one_error_line(capsys)


@pytest.mark.parametrize("damage", ["missing", "truncated_mcap", "garbage_metadata", "topic_missing", "wrong_type"])
def test_unusable_bag_is_one_line_naming_it(bag: Path, tmp_path: Path, capsys, damage: str) -> None:
    target, extra = tmp_path / "bag", ()
    if damage != "missing":
        shutil.copytree(bag, target)
    if damage == "truncated_mcap":
        (mcap,) = target.glob("*.mcap")
        mcap.write_bytes(mcap.read_bytes()[:2000])
    elif damage == "garbage_metadata":
        (target / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed\n")
    elif damage == "topic_missing":
        extra = ("--gt-topic", "/no/such/topic")
    elif damage == "wrong_type":  # a CameraInfo topic as the ground-truth image
        extra = ("--depth-info-topic", "", "--gt-topic", TOPICS["depth_info"])
    assert main(replay_argv(target, tmp_path / "out", *extra)) == 2
    assert str(target) in one_error_line(capsys)


def test_scale_other_than_the_data_ratio_is_a_warning_with_the_ratio(bag: Path, tmp_path: Path, caplog) -> None:
    assert main(replay_argv(bag, tmp_path / "out", "--scale", "8")) == 0
    assert "x4 ratio but the scale is x8" in caplog.text
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["notices"] == {"scale_ratio_mismatch": 3}


def write_config(path: Path, **values) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"backbone": "lite", "scale": 4, "steps": 1, **values}))
    return path


TORCH_COMMANDS = ("train", "export-onnx")  # they import torch to run at all
OTHER_COMMAND_CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "evaluate/data_missing": (lambda t: ["evaluate", "--data", str(t / "none"), "--scale", "4", "--json",
                                         str(t / "e.json")], "--data"),
    "evaluate/data_without_depth": (lambda t: [(t / "ds" / "rgb").mkdir(parents=True), "evaluate", "--data",
                                               str(t / "ds"), "--scale", "4", "--json", str(t / "e.json")][1:],
                                    "--data"),
    "evaluate/scenes_not_names": (lambda t: ["evaluate", "--data", str(ROOT / "depth_sr_ros/samples/tum_fr1"),
                                             "--scale", "4", "--scenes", "a-b", "--json", str(t / "e.json")],
                                  "--scenes"),
    "evaluate/scale_3": (lambda t: ["evaluate", "--data", str(t), "--scale", "3", "--json", str(t / "e.json")],
                         "--scale"),
    "evaluate/backbone_unknown": (lambda t: ["evaluate", "--data", str(ROOT / "depth_sr_ros/samples/tum_fr1"),
                                             "--scale", "4", "--backbone", "nosuch", "--json", str(t / "e.json")],
                                  "--backbone"),
    "train/config_missing": (lambda t: ["train", "--config", str(t / "none.yaml")], "--config"),
    "train/data_folder_missing": (lambda t: ["train", "--config", str(write_config(
        t / "c.yaml", train=[{"root": str(t / "no_data")}]))], "no_data"),
    "train/unknown_key": (lambda t: ["train", "--config", str(write_config(t / "c.yaml", nosuch=1))], "nosuch"),
    "train/steps_zero": (lambda t: ["train", "--config", str(t / "c.yaml"), "--steps", "0"], "--steps"),
    "export-onnx/classic_backbone": (lambda t: ["export-onnx", "--backbone", "bicubic", "--scale", "4", "--height",
                                                "32", "--width", "32", "--out", str(t / "x.onnx")], "--backbone"),
    "export-onnx/out_is_a_directory": (lambda t: ["export-onnx", "--backbone", "lite", "--scale", "4", "--height",
                                                  "32", "--width", "32", "--untrained", "--out", str(t)], "--out"),
    "export-onnx/size_not_multiple": (lambda t: ["export-onnx", "--backbone", "lite", "--scale", "4", "--height",
                                                 "30", "--width", "32", "--untrained", "--out", str(t / "x.onnx")],
                                      "--height"),
    "export-onnx/height_zero": (lambda t: ["export-onnx", "--backbone", "lite", "--scale", "4", "--height", "0",
                                           "--width", "32", "--out", str(t / "x.onnx")], "--height"),
    "bench/frames_zero": (lambda t: ["bench", "--frames", "0"], "--frames"),
    "bench/backbone_unknown": (lambda t: ["bench", "--backbones", "nosuch"], "--backbones"),
    "bench/backend_unknown": (lambda t: ["bench", "--backends", "cuda_magic"], "--backends"),
    "bench/points_rgbd": (lambda t: ["bench", "--points", "rgbd"], "--points"),
    "build-engine/classic_backbone": (lambda t: ["build-engine", "--backbone", "guided_filter", "--scale", "4",
                                                 "--height", "32", "--width", "32"], "--backbone"),
    "models/json_into_a_directory": (lambda t: ["models", "--json", str(t)], "--json"),
    "demo/out_is_a_file": (lambda t: [(t / "f").write_text("x"), "demo", "--out", str(t / "f")][1:], "--out"),
    "top/unknown_command": (lambda t: ["nosuch"], "nosuch"),
}


@pytest.mark.parametrize("case", OTHER_COMMAND_CASES)
def test_bad_flag_of_any_command_is_one_line_naming_it(tmp_path: Path, capsys, case: str) -> None:
    make_argv, named = OTHER_COMMAND_CASES[case]
    if case.split("/")[0] in TORCH_COMMANDS:
        pytest.importorskip("torch", reason="the command needs the optional torch extra: pip install -e '.[torch]'")
    assert main(make_argv(tmp_path)) == 2
    line = one_error_line(capsys)
    assert line.startswith("depth-sr") and named in line


def test_verbose_goes_before_or_after_the_command_and_version_prints(capsys) -> None:
    assert main(["-v", "models"]) == 0 and main(["models", "-v"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("depth-sr ")


def test_a_bug_keeps_its_traceback_and_exit_1(monkeypatch, capsys) -> None:
    from depth_sr_ros.tools import models_list

    def broken(args):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(models_list, "run", broken)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: simulated bug" in err and "a bug" in err


@pytest.mark.parametrize(("argv", "code"), [(["replay", "/no/such/bag", "--out", "OUT", "--slop", "inf"], 2),
                                            (["replay", "/no/such/bag", "--out", "OUT"], 2)],
                         ids=["flag", "bag"])
def test_the_installed_command_exits_2_without_a_traceback(tmp_path: Path, argv: list[str], code: int) -> None:
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    result = subprocess.run([sys.executable, "-m", "depth_sr_ros.cli", *argv], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == code and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if ": error: " in line]) == 1


def test_a_bug_in_the_installed_command_exits_1_with_a_traceback() -> None:
    code = ("import sys; from depth_sr_ros import cli; from depth_sr_ros.tools import models_list;"
            "models_list.run = lambda args: 1 / 0; sys.exit(cli.main(['models']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and "ZeroDivisionError" in result.stderr and "Traceback" in result.stderr


# ------------------------------------------------------------------------------------------ weights files

@pytest.fixture
def lite_weights(tmp_path: Path) -> Path:
    for suffix in (".safetensors", ".card.json"):
        shutil.copy(ROOT / "models" / f"lite_x4{suffix}", tmp_path / f"lite_x4{suffix}")
    return tmp_path / "lite_x4.safetensors"


def _card(path: Path) -> Path:
    return path.with_name(path.name.replace(".safetensors", ".card.json"))


def no_card(path: Path) -> None:
    _card(path).unlink()


def not_safetensors(path: Path) -> None:
    path.write_bytes(b"GIF89a" + bytes(300))


def not_safetensors_nor_card(path: Path) -> None:
    not_safetensors(path)
    no_card(path)


def pickled(path: Path) -> None:
    import torch

    torch.save({"weight": torch.zeros(3)}, path)


def card_not_json(path: Path) -> None:
    _card(path).write_text("{not json")


def card_other_scale(path: Path) -> None:
    card = json.loads(_card(path).read_text())
    _card(path).write_text(json.dumps({**card, "scale": 8}))


def modified(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    card = json.loads(_card(path).read_text())
    from depth_sr_ros.models.weights import sha256_file

    _card(path).write_text(json.dumps({**card, "sha256": sha256_file(path)}))


def a_directory(path: Path) -> Path:
    folder = path.with_suffix(".d")
    folder.mkdir()
    return folder


WEIGHTS_CASES: dict[str, tuple[Callable, str]] = {
    "weights/without_card": (no_card, "no model card"),
    "weights/not_safetensors": (not_safetensors, "not a safetensors file"),
    "weights/not_safetensors_and_no_card": (not_safetensors_nor_card, "not a safetensors file"),  # not the card
    "weights/pickled_checkpoint": (pickled, "torch.save checkpoint"),
    "weights/card_not_json": (card_not_json, "not valid JSON"),
    "weights/card_for_another_scale": (card_other_scale, "lite x8"),
    "weights/modified_after_the_card": (modified, "does not match its card"),
    "weights/truncated": (truncated, "truncated or corrupt"),
    "weights/path_is_a_directory": (a_directory, "directory"),
}


@pytest.mark.parametrize("case", WEIGHTS_CASES)
def test_bad_weights_file_is_one_line_naming_it(bag: Path, tmp_path: Path, lite_weights: Path, capsys,
                                                case: str) -> None:
    pytest.importorskip("torch", reason="weights files load with the optional torch extra: pip install -e '.[torch]'")
    damage, expected = WEIGHTS_CASES[case]
    path = damage(lite_weights) or lite_weights
    argv = replay_argv(bag, tmp_path / "out", "--weights", str(path))
    argv[argv.index("--backbone") + 1] = "lite"
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert expected in line and path.name.split(".")[0] in line  # the weights file, or its card


def test_good_weights_copy_replays(bag: Path, tmp_path: Path, lite_weights: Path) -> None:
    pytest.importorskip("torch", reason="weights files load with the optional torch extra: pip install -e '.[torch]'")
    argv = replay_argv(bag, tmp_path / "out", "--weights", str(lite_weights))
    argv[argv.index("--backbone") + 1] = "lite"
    assert main(argv) == 0



def test_node_parameter_assume_registered_reaches_the_frame_processor() -> None:
    from depth_sr_ros.ros.parameters import NodeParams, ParameterRejected, output_config, plan_change

    assert NodeParams.defaults().assume_registered is False
    params = NodeParams.from_values({"assume_registered": True})
    assert output_config(params).assume_registered is True
    plan = plan_change(NodeParams.defaults(), {"assume_registered": True}, configured=True, active=True)
    assert plan.rebuild_output and not plan.rebuild_pipeline  # applies from the next frame, also while active
    with pytest.raises(ParameterRejected):
        NodeParams.from_values({"assume_registered": "yes"})
