"""Replay of bags with CompressedImage colour and compressedDepth depth against their raw twins.

Each bag is the bundled TUM sample bag written twice, raw and compressed with real encoders
(`cv2.imencode`, the compressedDepth header as image_transport_plugins writes it). Lossless
transports (PNG colour, 16UC1 compressedDepth) must replay to byte-identical outputs; JPEG colour
and the 32FC1 inverse-depth quantisation to outputs within the bounds measured on these frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depth_sr_ros.core.frame_processor import OutputConfig
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay import sample_bag as sb
from depth_sr_ros.replay.bag_io import BagError, BagReader, BagWriter, load_typestore
from depth_sr_ros.replay.config import ReplayConfig
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.summary import ReplayReport
from depth_sr_ros.replay.writer import OUTPUT_IMAGE_TOPIC

BACKBONE = "guided_filter"
# Output depth RMSE (m) of a replay against its raw twin, per frame; measured with guided_filter
# (lite: smaller): JPEG q95 colour 2.0-3.3 mm, 32FC1 compressedDepth 0.16-0.19 mm.
JPEG_OUTPUT_RMSE_MAX_M = 0.005
FLOAT_DEPTH_OUTPUT_RMSE_MAX_M = 0.0003


def replay(bag: Path, out: Path, rgb_topic: str = sb.RGB_TOPIC, depth_topic: str = sb.DEPTH_TOPIC) -> ReplayReport:
    return run_replay(ReplayConfig(
        bag=bag, out_dir=out, rgb_topic=rgb_topic, rgb_info_topic=sb.RGB_INFO_TOPIC, depth_topic=depth_topic,
        depth_info_topic=sb.DEPTH_INFO_TOPIC, gt_topic=sb.GT_TOPIC, sr=SRConfig(backbone=BACKBONE),
        output=OutputConfig("32FC1"),  # float output: the sub-millimetre comparisons below need it
        previews=False, progress=False))


def outputs(report: ReplayReport) -> list[np.ndarray]:
    with BagReader(report.outputs["bag"]) as reader:
        return [depth_from_image(record.message) for record in reader.records([OUTPUT_IMAGE_TOPIC])]


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


@pytest.fixture(scope="module")
def raw_twin(tmp_path_factory) -> tuple[ReplayReport, list[np.ndarray]]:
    base = tmp_path_factory.mktemp("raw")
    report = replay(sb.build_sample_bag(base / "bag").path, base / "out")
    return report, outputs(report)


@pytest.mark.parametrize("topic_names", ["base", "transport"])
def test_png_colour_and_compressed_depth_replay_to_the_raw_twins_outputs_exactly(tmp_path, raw_twin, topic_names):
    bag = sb.build_sample_bag(tmp_path / "bag", rgb_format="png", depth_transport="compressedDepth")
    with BagReader(bag.path) as reader:
        types = {topic: msgtype for topic, (msgtype, _) in reader.topics().items()}
    assert types["/camera/color/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert types["/camera/depth/image_raw/compressedDepth"] == "sensor_msgs/msg/CompressedImage"
    # the users' topic names: the transport topics themselves, or the base names image_transport adds to
    topics = {"rgb_topic": bag.rgb_topic, "depth_topic": bag.depth_topic} if topic_names == "transport" else {}
    report = replay(bag.path, tmp_path / "out", **topics)
    raw_report, raw_outputs = raw_twin
    assert report.pairs_processed == raw_report.pairs_processed == 3
    assert report.ledger.read[bag.rgb_topic] == 4 and report.ledger.processed[bag.depth_topic] == 3
    got = outputs(report)
    assert len(got) == len(raw_outputs)
    for a, b in zip(got, raw_outputs):
        np.testing.assert_array_equal(a, b)
    assert report.metrics == raw_report.metrics


def test_jpeg_colour_replays_within_the_measured_bound_of_the_raw_twin(tmp_path, raw_twin):
    bag = sb.build_sample_bag(tmp_path / "bag", rgb_format="jpeg", depth_transport="compressedDepth")
    report = replay(bag.path, tmp_path / "out")
    raw_report, raw_outputs = raw_twin
    errors = [rmse(a, b) for a, b in zip(outputs(report), raw_outputs)]
    assert len(errors) == 3 and all(0 < e < JPEG_OUTPUT_RMSE_MAX_M for e in errors), errors
    # scored against ground truth, the JPEG loss moves the RMSE by well under a millimetre
    assert abs(report.metrics[BACKBONE]["rmse"] - raw_report.metrics[BACKBONE]["rmse"]) < 0.0005


def test_float_compressed_depth_replays_within_its_quantisation_of_the_raw_twin(tmp_path):
    raw = sb.build_sample_bag(tmp_path / "raw", depth_encoding="32FC1")
    packed = sb.build_sample_bag(tmp_path / "packed", depth_transport="compressedDepth", depth_encoding="32FC1")
    raw_out = outputs(replay(raw.path, tmp_path / "raw_out"))
    errors = [rmse(a, b) for a, b in zip(outputs(replay(packed.path, tmp_path / "packed_out")), raw_out)]
    assert len(errors) == 3 and all(0 < e < FLOAT_DEPTH_OUTPUT_RMSE_MAX_M for e in errors), errors


def test_a_topic_of_another_type_is_refused_with_the_types(tmp_path):
    bag = sb.build_sample_bag(tmp_path / "bag", rgb_format="jpeg")
    with pytest.raises(BagError, match="CameraInfo, expected sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage"):
        run_replay(ReplayConfig(bag=bag.path, out_dir=tmp_path / "out", rgb_topic=sb.DEPTH_INFO_TOPIC,
                                rgb_info_topic=sb.RGB_INFO_TOPIC, depth_topic=sb.DEPTH_TOPIC, progress=False))


def test_corrupt_compressed_frames_are_counted_skips(tmp_path):
    bag = sb.build_sample_bag(tmp_path / "bag", rgb_format="jpeg", depth_transport="compressedDepth")
    store = load_typestore("humble")
    broken = tmp_path / "broken"
    with BagReader(bag.path) as reader, BagWriter(broken, store) as writer:
        for topic, (msgtype, _) in reader.topics().items():
            writer.add_topic(topic, msgtype)
        seen = 0
        for record in reader.records(reader.topics()):
            if record.topic == bag.depth_topic:
                seen += 1
                if seen == 2:  # the header survives, the PNG is cut short
                    record.message.data = record.message.data[: record.message.data.size // 3]
            writer.write(record.topic, record.log_time_ns, record.message)
    report = replay(broken, tmp_path / "out")
    assert report.pairs_processed == 2
    assert report.pairs_skipped == {"corrupt_compressed": 1}
    assert report.ledger.skipped[bag.depth_topic] == {"corrupt_compressed": 1}
