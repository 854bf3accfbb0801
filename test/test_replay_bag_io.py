"""Bag reading/writing with rosbags, and the sample bag built from the TUM frames."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from depth_sr_ros.core.camera_info import intrinsics_from_camera_info
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.replay import sample_bag as sb
from depth_sr_ros.replay.bag_io import BagError, BagReader, BagWriter, load_typestore
from depth_sr_ros.replay.config import ReplayConfig
from depth_sr_ros.replay.runner import run_replay


def read_all(path: Path, typestore: str = "humble") -> list:
    with BagReader(path, typestore) as reader:
        return list(reader.records(reader.topics()))


@pytest.mark.parametrize(("storage", "typestore"), [("mcap", "humble"), ("sqlite3", "humble"), ("sqlite3", "jazzy")])
def test_sample_bag_looks_like_a_tof_camera(tmp_path: Path, storage: str, typestore: str) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag", storage=storage, typestore=typestore)
    records = read_all(bag.path, typestore)
    assert all(r.error == "" for r in records)
    by_topic: dict[str, list] = {}
    for r in records:
        by_topic.setdefault(r.topic, []).append(r.message)
    assert {t: len(m) for t, m in by_topic.items()} == bag.counts
    assert bag.counts[sb.RGB_TOPIC] == 4 and bag.counts[sb.DEPTH_TOPIC] == 3

    rgb_msg, depth_msg, gt_msg = by_topic[sb.RGB_TOPIC][0], by_topic[sb.DEPTH_TOPIC][0], by_topic[sb.GT_TOPIC][0]
    assert (rgb_msg.width, rgb_msg.height, rgb_msg.encoding) == (640, 480, "rgb8")
    assert (depth_msg.width, depth_msg.height, depth_msg.encoding) == (160, 120, "16UC1")
    assert (gt_msg.width, gt_msg.height, gt_msg.encoding) == (640, 480, "16UC1")

    expected_rgb = cv2.cvtColor(cv2.imread(str(sb.SAMPLE_DIR / "rgb" / "00.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(rgb_from_image(rgb_msg), expected_rgb)
    raw = cv2.imread(str(sb.SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    gt = depth_from_image(gt_msg)
    np.testing.assert_allclose(gt[raw > 0], raw[raw > 0] / 5000.0, atol=0.0006)
    assert np.isnan(gt[raw == 0]).all()

    # Decimated pixel (r, c) is the mean of raw pixels (4r+1..4r+2, 4c+1..4c+2) when all are valid.
    depth = depth_from_image(depth_msg)
    centre = raw[1::4, 1::4], raw[2::4, 1::4], raw[1::4, 2::4], raw[2::4, 2::4]
    all_valid = np.all([c > 0 for c in centre], axis=0)
    assert np.isnan(depth[~all_valid]).all()
    mean_m = np.mean([c.astype(np.float64) for c in centre], axis=0) / 5000.0
    np.testing.assert_allclose(depth[all_valid], mean_m[all_valid], atol=0.0011)
    assert 0.05 < np.isnan(depth).mean() < 0.6  # sensor holes survive decimation

    rgb_k = intrinsics_from_camera_info(by_topic[sb.RGB_INFO_TOPIC][0])
    depth_k = intrinsics_from_camera_info(by_topic[sb.DEPTH_INFO_TOPIC][0])
    assert (rgb_k.fx, rgb_k.cy, rgb_k.distortion_model, len(rgb_k.d)) == (517.3, 255.3, "plumb_bob", 5)
    assert (depth_k.width, depth_k.height) == (160, 120)
    assert depth_k.fx == pytest.approx(517.3 / 4)


def test_sample_bag_stamps_are_30hz_with_depth_offset_and_every_info_matches_its_image(tmp_path: Path) -> None:
    records = read_all(sb.build_sample_bag(tmp_path / "bag").path)

    def stamps(topic: str) -> list[int]:
        return [r.message.header.stamp.sec * 10**9 + r.message.header.stamp.nanosec for r in records
                if r.topic == topic]

    rgb, depth = stamps(sb.RGB_TOPIC), stamps(sb.DEPTH_TOPIC)
    assert np.diff(rgb) == pytest.approx(1e9 / 30, abs=1)
    offsets = np.array(depth) - np.array(rgb[:3])
    assert np.all((offsets > 2_000_000) & (offsets < 6_000_000)) and len(set(offsets)) == 3
    assert stamps(sb.RGB_INFO_TOPIC) == rgb and stamps(sb.DEPTH_INFO_TOPIC) == depth == stamps(sb.GT_TOPIC)
    log_order = [r.topic for r in records if r.topic in (sb.RGB_TOPIC, sb.DEPTH_TOPIC)]
    assert log_order != sorted(log_order, key=[sb.RGB_TOPIC, sb.DEPTH_TOPIC].index)  # arrivals interleave


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = read_all(sb.build_sample_bag(tmp_path / "a").path)
    second = read_all(sb.build_sample_bag(tmp_path / "b").path)
    assert [(r.topic, r.log_time_ns) for r in first] == [(r.topic, r.log_time_ns) for r in second]
    assert all(np.array_equal(a.message.data, b.message.data) for a, b in zip(first, second)
               if hasattr(a.message, "encoding"))


def test_decimation_keeps_holes_and_averages_the_block_centre() -> None:
    depth = np.arange(1, 65, dtype=np.uint16).reshape(8, 8)
    depth[2, 6] = 0  # a hole in the centre of block (0, 1)
    depth[4, 4] = 0  # a corner of block (1, 1), outside its centre
    out = sb.decimate_depth(depth)
    assert out[0, 1] == 0
    assert out[0, 0] == round(np.mean([depth[1, 1], depth[1, 2], depth[2, 1], depth[2, 2]]))
    assert out[1, 1] == round(np.mean([depth[5, 5], depth[5, 6], depth[6, 5], depth[6, 6]]))


def test_missing_topic_error_lists_the_bags_topics(tmp_path: Path) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag")
    with BagReader(bag.path) as reader, pytest.raises(BagError) as info:
        reader.require({"rgb": sb.RGB_TOPIC, "depth": "/no/such/depth"})
    text = str(info.value)
    assert "/no/such/depth" in text and sb.RGB_TOPIC in text and sb.GT_TOPIC in text


def test_corrupt_record_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    store = load_typestore("humble")
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="f")
    good = store.types["sensor_msgs/msg/Image"](
        header=header, height=1, width=2, encoding="mono8", is_bigendian=0, step=2,
        data=np.array([1, 2], dtype=np.uint8))
    with BagWriter(tmp_path / "bag", store) as writer:
        writer.add_topic("/img", "sensor_msgs/msg/Image")
        writer.write("/img", 1, good)
        writer.write_raw("/img", 2, b"\x00\x01\x00\x00garbage!")
        writer.write("/img", 3, good)
    records = read_all(tmp_path / "bag")
    assert [r.message is None for r in records] == [False, True, False]
    assert records[1].error and records[2].message.width == 2


def test_unreadable_bag_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="does not exist"), BagReader(tmp_path / "missing"):
        pass
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(BagError, match="cannot open"), BagReader(tmp_path / "junk"):
        pass


def test_unknown_typestore_and_storage_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="typestore"):
        load_typestore("noetic")
    with pytest.raises(ValueError, match="storage"):
        BagWriter(tmp_path / "x", load_typestore("jazzy"), storage="bag")


def make_humble_style(bag: Path) -> None:
    """Turn a sqlite3 bag into what Humble's rosbag2 records: schema 3, no message definitions."""
    (db,) = bag.glob("*.db3")
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE message_definitions")
        connection.execute("UPDATE schema SET schema_version = 3, ros_distro = 'humble'")
    metadata = bag / "metadata.yaml"
    text = re.sub(r"\n\s*type_description_hash: *\n?\s*RIHS01_[0-9a-f]+", "", metadata.read_text())
    metadata.write_text(text.replace("version: 9", "version: 5"))


def test_bag_without_embedded_definitions_is_decoded_with_the_typestore(tmp_path: Path) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag", storage="sqlite3")
    make_humble_style(bag.path)
    with BagReader(bag.path, "humble") as reader:
        assert all(c.msgdef.data == "" for c in reader.reader.connections)  # nothing embedded
    config = ReplayConfig(bag=bag.path, out_dir=tmp_path / "out", rgb_topic=sb.RGB_TOPIC,
                          rgb_info_topic=sb.RGB_INFO_TOPIC, depth_topic=sb.DEPTH_TOPIC,
                          depth_info_topic=sb.DEPTH_INFO_TOPIC, typestore="humble", previews=False,
                          progress=False)
    report = run_replay(config)
    assert report.pairs_processed == 3 and report.ledger.balanced()


def test_truncated_bag_file_is_a_clear_error(tmp_path: Path) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag")
    (mcap,) = bag.path.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match="cannot open bag"), BagReader(bag.path):
        pass


def test_storage_failure_mid_bag_counts_what_was_not_read_as_unreadable(tmp_path: Path, monkeypatch) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag")
    original = AnyReader.messages

    def failing_messages(self, *args, **kwargs):
        for n, item in enumerate(original(self, *args, **kwargs)):
            if n == 12:  # after the first two frames
                raise OSError("simulated damaged chunk")
            yield item

    monkeypatch.setattr(AnyReader, "messages", failing_messages)
    config = ReplayConfig(bag=bag.path, out_dir=tmp_path / "out", rgb_topic=sb.RGB_TOPIC,
                          rgb_info_topic=sb.RGB_INFO_TOPIC, depth_topic=sb.DEPTH_TOPIC,
                          depth_info_topic=sb.DEPTH_INFO_TOPIC, gt_topic=sb.GT_TOPIC, previews=False,
                          progress=False)
    report = run_replay(config)
    ledger = report.ledger
    assert report.storage_errors and set(report.storage_errors) == {"OSError: simulated damaged chunk"}
    assert report.pairs_processed >= 2 and ledger.balanced() and ledger.complete()
    assert sum(ledger.unreadable.values()) > 0  # read on after the damage, counted what was skipped over
    assert sum(ledger.read.values()) + sum(ledger.unreadable.values()) == sum(bag.counts.values())
    assert all(ledger.held[topic] == count for topic, count in bag.counts.items())


def test_missing_topic_error_lists_the_topics_one_a_line(tmp_path: Path) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag")
    with BagReader(bag.path) as reader, pytest.raises(BagError) as info:
        reader.require({"depth": "/no/such/depth"})
    rows = str(info.value).splitlines()[1:]
    assert len(rows) == len(bag.counts)
    for topic, count in bag.counts.items():
        assert any(row.split()[0] == topic and row.split()[-1] == str(count) for row in rows)


def _replay_sample(bag: Path, out: Path):
    return run_replay(ReplayConfig(bag=bag, out_dir=out, rgb_topic=sb.RGB_TOPIC, rgb_info_topic=sb.RGB_INFO_TOPIC,
                                   depth_topic=sb.DEPTH_TOPIC, depth_info_topic=sb.DEPTH_INFO_TOPIC,
                                   gt_topic=sb.GT_TOPIC, previews=False, progress=False))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_metadata_that_overstates_a_count_is_a_notice_not_unreadable_messages(tmp_path: Path, storage: str,
                                                                              caplog) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag", storage=storage)
    metadata = bag.path / "metadata.yaml"
    text = metadata.read_text()
    count_at = text.rindex("message_count: 4", 0, text.index(f"name: {sb.RGB_TOPIC}\n"))  # the entry's count
    metadata.write_text(text[:count_at] + "message_count: 40" + text[count_at + len("message_count: 4"):])
    with BagReader(bag.path) as reader:
        assert reader.topics()[sb.RGB_TOPIC][1] == 40  # what the metadata claims
        assert reader.count_disagreements() == {sb.RGB_TOPIC: (40, 4)}
    report = _replay_sample(bag.path, tmp_path / "out")
    assert sum(report.ledger.unreadable.values()) == 0 and not report.storage_errors
    assert report.ledger.held[sb.RGB_TOPIC] == 4 and report.ledger.complete()
    assert report.notices == {"metadata_count_mismatch": 1}
    assert len([r for r in caplog.records if "metadata disagrees" in r.getMessage()]) == 1
    assert '"metadata_count_mismatch": 1' in (tmp_path / "out" / "metrics.json").read_text()


def test_ros1_bag_topics_are_typed_the_ros2_way_and_counted_from_its_index(tmp_path: Path) -> None:
    from recordings import ros1_bag

    recording = ros1_bag(tmp_path / "camera.bag")
    with BagReader(recording.path) as reader:
        topics = reader.topics()
        assert topics[sb.RGB_INFO_TOPIC] == ("sensor_msgs/msg/CameraInfo", 3)
        assert reader.stored_counts() == {topic: count for topic, (_, count) in topics.items()}
        info = next(r.message for r in reader.records([sb.RGB_INFO_TOPIC]))
    assert info.K[0] == pytest.approx(517.3) and intrinsics_from_camera_info(info).fx == pytest.approx(517.3)
