"""The node's confidence output without ROS (issue 20 item 2): the parameters `publish_confidence`,
`point_cloud_confidence` and `min_confidence` (ranges, live application without a pipeline
rebuild), the confidence image beside the depth in the frame handler, and the worker handing it
to `publish`. The same path over real DDS: test/live_ros/test_live_confidence.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import test_node_logic
from test_node_logic import _handle, _handler, _processor, _quadruple

from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros import topics
from depth_sr_ros.ros.frame_handler import FrameInputs
from depth_sr_ros.ros.frame_worker import FrameWorker
from depth_sr_ros.ros.pipeline_slot import PipelineSlot

frames = test_node_logic.frames  # the fixture: TUM frame 00, 640x480 RGB and x4-decimated depth


def confidence_values(image) -> np.ndarray:
    """A published 32FC1 confidence image as H x W float32, read as it is (0 stays 0)."""
    assert image.encoding == "32FC1" and not image.is_bigendian and image.step == image.width * 4
    return np.frombuffer(bytes(image.data), "<f4").reshape(image.height, image.width)


# --------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("value", [1.5, -0.1, math.nan, math.inf])
def test_min_confidence_outside_0_to_1_is_refused_and_never_stored(value):
    current = table.NodeParams.defaults()
    reason = table.PARAMETER_BY_NAME["min_confidence"].check(value)
    assert reason is not None and "min_confidence" in reason
    with pytest.raises(table.ParameterRejected, match="min_confidence"):
        table.plan_change(current, {"min_confidence": value}, configured=True, active=True)
    assert current.min_confidence == 0.0


def test_the_confidence_parameters_type_checks_and_defaults():
    assert "must be bool" in table.PARAMETER_BY_NAME["publish_confidence"].check(1)
    assert "must be float" in table.PARAMETER_BY_NAME["min_confidence"].check("0.5")
    params = table.NodeParams.defaults()
    assert (params.publish_confidence, params.point_cloud_confidence, params.min_confidence) == (True, False, 0.0)
    assert table.NodeParams.from_values({"min_confidence": 1}).min_confidence == 1.0  # an int for a float
    assert table.parse_launch_value("min_confidence", "0.25") == 0.25
    assert {"publish_confidence", "point_cloud_confidence", "min_confidence"} <= set(table.LAUNCH_PARAMETERS)


def test_min_confidence_and_the_cloud_field_apply_live_without_a_pipeline_rebuild():
    current = table.NodeParams.defaults()
    for change in ({"min_confidence": 0.3}, {"point_cloud_confidence": True}):
        plan = table.plan_change(current, change, configured=True, active=True)
        assert plan.rebuild_output and not plan.rebuild_pipeline, change
    # read per frame by the worker: no new FrameProcessor needed
    plan = table.plan_change(current, {"publish_confidence": False}, configured=True, active=True)
    assert not plan.rebuild_output and not plan.rebuild_pipeline and not plan.params.publish_confidence


def test_set_output_keeps_the_pipeline_and_gives_the_processor_the_threshold():
    slot = PipelineSlot()
    params = table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu"})
    slot.build(params)
    pipeline, before = slot.pipeline, slot.processor
    plan = table.plan_change(params, {"min_confidence": 0.4, "point_cloud_confidence": True}, configured=True,
                             active=True)
    slot.set_output(plan.params)
    assert slot.pipeline is pipeline and slot.processor is not before
    assert (slot.processor.output.min_confidence, slot.processor.output.point_cloud_confidence) == (0.4, True)
    assert slot.processor.pipeline is pipeline


def test_the_confidence_image_only_when_enabled_and_subscribed():
    params = table.NodeParams.defaults()
    assert table.want_confidence(params, 1) and not table.want_confidence(params, 0)
    assert not table.want_confidence(table.NodeParams.from_values({"publish_confidence": False}), 2)
    assert topics.OUT_CONFIDENCE in topics.output_topics() and topics.is_valid_topic_name(topics.OUT_CONFIDENCE)
    assert not topics.OUT_CONFIDENCE.startswith("/")


# ------------------------------------------------------------------------------- frame handler


def test_the_confidence_image_has_the_depth_header_and_size_and_values_in_0_to_1(frames):
    stamp = 1_700_000_000_123_456_789
    result = _handle(_handler(), _processor(), _quadruple(frames, stamp), want_points=False)
    assert result.messages.confidence is None  # not wanted: none built
    handler = _handler()
    handler.rgb_infos.put(_quadruple(frames, stamp)[1])
    rgb, _, depth, _ = _quadruple(frames, stamp)
    result = handler.handle(_processor(), FrameInputs(rgb, depth), False, lambda *_: None, want_confidence=True)
    assert result.skip is None, result.skip
    image, confidence_msg = result.messages.image, result.messages.confidence
    assert confidence_msg.header == image.header
    assert (confidence_msg.height, confidence_msg.width) == (image.height, image.width) == (480, 640)
    confidence = confidence_values(confidence_msg)
    depth_m = depth_from_image(image)
    valid = np.isfinite(depth_m)
    assert np.isfinite(confidence).all() and confidence.min() >= 0.0 and confidence.max() <= 1.0
    assert (confidence[~valid] == 0).all() and confidence[valid].max() > 0.3  # 0 only where there is no depth


def test_min_confidence_invalidates_exactly_the_pixels_below_it(frames):
    handler = _handler()
    plain = _handle(handler, _processor(), _quadruple(frames, 10**9), want_points=False)
    rgb, rgb_info, depth, _ = _quadruple(frames, 2 * 10**9)
    handler.rgb_infos.put(rgb_info)
    threshold = 0.3
    result = handler.handle(_processor(min_confidence=threshold), FrameInputs(rgb, depth), True, lambda *_: None,
                            want_confidence=True)
    confidence = confidence_values(result.messages.confidence)
    depth_m = depth_from_image(result.messages.image)
    low = confidence < threshold
    np.testing.assert_array_equal(np.isnan(depth_m), low)
    before = np.isnan(depth_from_image(plain.messages.image))
    assert low.sum() > before.sum() and (low | ~before).all()  # more invalid, and a superset
    np.testing.assert_array_equal(depth_m[~low], depth_from_image(plain.messages.image)[~low])
    cloud = result.messages.points
    assert "confidence" not in {f.name for f in cloud.fields}  # point_cloud_confidence is off
    points = np.asarray(cloud.data).view("<f4").reshape(480, 640, -1)
    assert np.isnan(points[low][:, :3]).all()


def test_the_cloud_carries_the_confidence_field_when_asked(frames):
    result = _handle(_handler(), _processor(point_cloud_confidence=True, point_cloud_rgb=False),
                     _quadruple(frames, 10**9), want_points=True)
    cloud = result.messages.points
    assert [(f.name, f.offset) for f in cloud.fields] == [("x", 0), ("y", 4), ("z", 8), ("confidence", 12)]
    values = np.asarray(cloud.data).view("<f4").reshape(480, 640, 4)[..., 3]
    assert values.min() >= 0.0 and values.max() <= 1.0 and values.max() > 0.3
    assert result.messages.confidence is None  # the image is a separate wish


# -------------------------------------------------------------------------------- frame worker


@pytest.mark.parametrize("wanted", [True, False])
def test_the_worker_hands_the_confidence_image_to_publish_only_when_wanted(frames, wanted):
    published = []

    def publish(image, info, points, confidence):
        published.append((image, confidence))
        return 1.0

    slot = PipelineSlot()
    slot.build(table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu"}))
    worker = FrameWorker(slot, _handler(), publish, lambda: 1e9, _NoLog(), want_points=lambda: False,
                         want_confidence=lambda: wanted)
    rgb, rgb_info, depth, _ = _quadruple(frames, 3 * 10**9)
    worker.handler.rgb_infos.put(rgb_info)
    worker.offer(FrameInputs(rgb, depth))
    worker.run()
    ((image, confidence),) = published
    if wanted:
        assert confidence.header == image.header and confidence.encoding == "32FC1"
    else:
        assert confidence is None


class _NoLog:
    def info(self, message):
        raise AssertionError(message)

    warning = error = info


# ---------------------------------------------------------------------------- replay parity


def test_replay_min_confidence_gives_the_nodes_depth(tmp_path):
    """`depth-sr replay --min-confidence` and the node's frame path with `min_confidence` publish
    the same depth for the same recorded frame (the pixels below it invalid in both)."""
    import argparse

    from depth_sr_ros.replay import sample_bag
    from depth_sr_ros.replay.bag_io import BagReader
    from depth_sr_ros.tools import replay as replay_tool

    threshold, bag = 0.3, tmp_path / "bag"
    sample_bag.build_sample_bag(bag)
    parser = argparse.ArgumentParser()
    replay_tool.add_arguments(parser)
    args = parser.parse_args([str(bag), "--out", str(tmp_path / "out"), "--backbone", "guided_filter",
                              "--output-encoding", "32FC1", "--min-confidence", str(threshold), "--max-frames", "1",
                              "--no-previews", "--no-progress"])
    assert args.min_confidence == threshold
    assert replay_tool.run(args) == 0
    with BagReader(tmp_path / "out" / "sr_bag") as reader:
        (replayed,) = [record.message for record in reader.records(["/depth_sr/image"])]

    inputs = (sample_bag.RGB_TOPIC, sample_bag.RGB_INFO_TOPIC, sample_bag.DEPTH_TOPIC, sample_bag.DEPTH_INFO_TOPIC)
    with BagReader(bag) as reader:
        first: dict = {}
        for record in reader.records(inputs):
            first.setdefault(record.topic, record.message)
    handler = _handler()
    handler.rgb_infos.put(first[sample_bag.RGB_INFO_TOPIC])
    handler.depth_infos.put(first[sample_bag.DEPTH_INFO_TOPIC])
    processor = _processor(backbone="guided_filter", min_confidence=threshold)
    result = handler.handle(processor, FrameInputs(first[sample_bag.RGB_TOPIC], first[sample_bag.DEPTH_TOPIC]),
                            False, lambda *_: None, want_confidence=True)
    node_depth, replay_depth = depth_from_image(result.messages.image), depth_from_image(replayed)
    assert result.messages.image.header.stamp == replayed.header.stamp
    low = confidence_values(result.messages.confidence) < threshold
    assert low.any() and (~low).any()
    np.testing.assert_array_equal(np.isnan(node_depth), low)
    np.testing.assert_array_equal(np.isnan(replay_depth), low)
    np.testing.assert_array_equal(replay_depth[~low], node_depth[~low])
