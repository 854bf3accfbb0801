"""The confidence output of a launched node over real DDS (issue 20 item 2): depth_sr/confidence
beside depth_sr/image, `min_confidence` set live through the parameter service (the next frame's
depth is invalid exactly where the confidence is below it, without a pipeline rebuild), and the
cloud's `confidence` field read back with sensor_msgs_py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from . import harness

harness.require_ros()

from sensor_msgs.msg import Image, PointCloud2

from depth_sr_ros.core.frame_processor import FrameProcessor
from depth_sr_ros.core.pipeline import DepthSR
from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros.live_probe import Frame, header_ns

NS = "/confidence"
NODE = f"{NS}/depth_sr_node"
PREFIX = f"{NS}/"
BACKBONE = "guided_filter"


@pytest.fixture(scope="module")
def node(installed, tmp_path_factory):
    params = harness.params_file(tmp_path_factory.mktemp("confidence"), input_width=640, input_height=480)
    with harness.launch(installed, f"backbone:={BACKBONE}", "namespace:=confidence", f"params_file:={params}") as n:
        yield n


@pytest.fixture(autouse=True)
def _module_defaults(probe, node):
    """Each test starts from the shipped confidence settings, whatever the test before it changed."""
    yield
    if node.process.poll() is None:
        results = probe.set_parameters(NODE, {"min_confidence": 0.0, "point_cloud_confidence": False})
        assert all(r.successful for r in results), [r.reason for r in results]


def confidence_values(image) -> np.ndarray:
    """A 32FC1 confidence image as H x W float32, read as it is (0 stays 0, unlike depth)."""
    assert (image.encoding, image.is_bigendian, image.step) == ("32FC1", 0, image.width * 4)
    return np.frombuffer(bytes(image.data), "<f4").reshape(image.height, image.width)


def offline_confidence(frame: Frame) -> np.ndarray:
    """The confidence this process computes for `frame` with the node's pipeline and defaults."""
    params = table.NodeParams.from_values({"backbone": BACKBONE})
    processor = FrameProcessor(DepthSR(table.sr_config(params)), table.output_config(params))
    out = processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, want_points=False,
                            want_confidence=True)
    return out.confidence


def published_together(probe, frame: Frame, collections: list) -> list:
    """Feed `frame` with a new stamp until each of `collections` receives the output with that
    stamp (resent: the node builds the confidence and the cloud only once it has matched their
    subscribers); those outputs."""
    deadline = time.monotonic() + harness.FRAME_TIMEOUT_S
    while True:
        sent = probe.feed(frame, time.time_ns(), prefix=PREFIX)
        try:
            return [collected.with_stamp(sent.stamp_ns, 5.0) for collected in collections]
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def depth_and_confidence(probe, frame: Frame) -> list:
    """depth_sr/image and depth_sr/confidence published for `frame` fed with a new stamp."""
    with (
        probe.collect(Image, f"{NS}/depth_sr/image") as images,
        probe.collect(Image, f"{NS}/depth_sr/confidence") as confidences,
    ):
        probe.wait_for_subscribers(f"{NS}/rgb/image", 1, harness.START_TIMEOUT_S)
        return published_together(probe, frame, [images, confidences])


def test_the_confidence_comes_beside_the_depth_with_its_header_and_size(node, probe, frame):
    image, confidence_msg = depth_and_confidence(probe, frame)
    assert confidence_msg.header.frame_id == image.header.frame_id
    assert header_ns(confidence_msg.header) == header_ns(image.header)
    assert (confidence_msg.width, confidence_msg.height) == (image.width, image.height) == (640, 480)
    confidence, depth = confidence_values(confidence_msg), harness.depth_m(image)
    valid = np.isfinite(depth)
    assert valid.mean() > 0.5
    assert np.isfinite(confidence).all() and confidence.min() >= 0.0 and confidence.max() <= 1.0
    assert (confidence[~valid] == 0).all() and confidence[valid].max() > 0.3
    np.testing.assert_allclose(confidence, offline_confidence(frame), atol=1e-6)  # the same values offline
    (publisher,) = probe.node.get_publishers_info_by_topic(f"{NS}/depth_sr/confidence")
    assert publisher.topic_type == "sensor_msgs/msg/Image"


def test_min_confidence_set_live_invalidates_the_next_frames_low_pixels_without_a_rebuild(node, probe, frame):
    before_image, before_msg = depth_and_confidence(probe, frame)
    before, confidence = harness.depth_m(before_image), confidence_values(before_msg)
    valid = np.isfinite(before)
    threshold = round(float(np.quantile(confidence[valid], 0.25)), 3)  # a quarter of the valid pixels go
    assert 0.0 < threshold < 1.0
    lines = len(node.lines)
    (result,) = probe.set_parameters(NODE, {"min_confidence": threshold})
    assert result.successful, result.reason
    assert probe.get_parameters(NODE, ["min_confidence"]) == {"min_confidence": threshold}

    after_image, after_msg = depth_and_confidence(probe, frame)
    after, kept_confidence = harness.depth_m(after_image), confidence_values(after_msg)
    low = kept_confidence < threshold
    np.testing.assert_array_equal(np.isnan(after), low)  # invalid exactly where below the threshold
    assert np.isnan(after).sum() > np.isnan(before).sum() + 0.1 * valid.sum()
    np.testing.assert_array_equal(after[~low], before[~low])  # the kept pixels are unchanged
    np.testing.assert_array_equal(kept_confidence, confidence)  # the confidence itself is not thresholded
    assert not [line for line in node.lines[lines:] if "pipeline swapped in" in line]  # no rebuild


def test_the_cloud_carries_the_confidence_field_and_nan_points_below_the_threshold(node, probe, frame):
    from sensor_msgs_py import point_cloud2

    results = probe.set_parameters(NODE, {"point_cloud_confidence": True, "min_confidence": 0.3})
    assert all(r.successful for r in results), [r.reason for r in results]
    with (
        probe.collect(Image, f"{NS}/depth_sr/image") as images,
        probe.collect(Image, f"{NS}/depth_sr/confidence") as confidences,
        probe.collect(PointCloud2, f"{NS}/depth_sr/points") as clouds,
    ):
        image, confidence_msg, cloud = published_together(probe, frame, [images, confidences, clouds])
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb", "confidence"]
    points = point_cloud2.read_points(cloud, field_names=("x", "y", "z", "confidence"), skip_nans=False)
    confidence = confidence_values(confidence_msg)
    np.testing.assert_array_equal(points["confidence"].reshape(480, 640), confidence)
    low = confidence < 0.3
    assert low.any() and (~low).any()
    z = points["z"].reshape(480, 640)
    np.testing.assert_array_equal(np.isnan(z), low)
    np.testing.assert_array_equal(z, harness.depth_m(image))


def test_an_out_of_range_min_confidence_is_refused_and_never_stored(node, probe):
    (result,) = probe.set_parameters(NODE, {"min_confidence": 1.5})
    assert not result.successful and "min_confidence" in result.reason
    assert probe.get_parameters(NODE, ["min_confidence"]) == {"min_confidence": 0.0}
