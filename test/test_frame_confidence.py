"""FrameProcessor's optional confidence and `min_confidence`: the confidence beside the depth,
and low-confidence pixels invalid (NaN / 0, REP 118) in the depth image and the cloud."""

from __future__ import annotations

import numpy as np
import pytest
from test_frame_processor import CX, CY, FX, FY, H, S, W, camera_info, image

from depth_sr_ros.core.confidence import input_confidence
from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.pipeline import DepthSR, SRConfig


def messages():
    """A 2 m wall with a 1.5 m box whose edges are the uncertain pixels."""
    rgb = np.full((H, W, 3), 40, np.uint8)
    rgb[16:32, 24:48] = 220
    depth_mm = np.full((H // S, W // S), 2000, np.uint16)
    depth_mm[4:8, 6:12] = 1500
    depth_mm[0, 0] = 0  # one invalid input pixel
    return (image(rgb, "rgb8"), camera_info(W, H), image(depth_mm, "16UC1"), camera_info(W // S, H // S, 1 / S))


def processor(**output) -> FrameProcessor:
    return FrameProcessor(DepthSR(SRConfig(scale=S, backbone="guided_filter")), OutputConfig(**output))


def test_confidence_only_when_asked_and_beside_the_depth():
    assert processor().process(*messages(), want_points=False).confidence is None
    out = processor(confidence=True).process(*messages(), want_points=False)
    depth_in = depth_from_image(messages()[2])
    np.testing.assert_array_equal(out.confidence, input_confidence(out.depth, depth_in, S, 0.1, 20.0))
    assert out.confidence.shape == out.depth.shape and out.confidence.dtype == np.float32
    assert "confidence" in out.timings_ms
    assert out.confidence[12:36, 20:52].min() < 0.5 * out.confidence[40:, :8].min()  # box edges < flat wall
    assert np.isfinite(out.depth).all()  # asking for the confidence changes no depth


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_min_confidence_sets_low_pixels_invalid_in_depth_image_and_cloud(encoding):
    threshold = 0.3  # below the flat wall's (about 0.45 at 2 m), above the box edges'
    full = processor(confidence=True, output_encoding=encoding).process(*messages(), want_points=True)
    out = processor(min_confidence=threshold, output_encoding=encoding).process(*messages(), want_points=True)
    low = full.confidence < threshold
    assert 0 < low.sum() < low.size / 2
    np.testing.assert_array_equal(np.isnan(out.depth), low)
    np.testing.assert_array_equal(out.depth[~low], full.depth[~low])
    decoded = depth_from_image(out.image)  # 16UC1 0 and 32FC1 NaN both decode as NaN
    np.testing.assert_array_equal(np.isnan(decoded), low)
    points = out.points.data.view("<f4").reshape(H, W, 3)
    assert np.isnan(points[low]).all() and np.isfinite(points[~low]).all()
    assert out.points.is_dense is False
    row, col = np.argwhere(~low)[-1]  # a kept point is the kept depth, back-projected
    z = full.depth[row, col]
    np.testing.assert_allclose(points[row, col], ((col - CX) * z / FX, (row - CY) * z / FY, z), rtol=1e-5)


def test_min_confidence_out_of_range_is_refused():
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="min_confidence"):
            OutputConfig(min_confidence=bad)


def test_a_call_asks_for_the_confidence_of_one_frame_and_the_cloud_field_needs_a_cloud():
    proc = processor()
    wanted = proc.process(*messages(), want_points=False, want_confidence=True)
    depth_in = depth_from_image(messages()[2])
    np.testing.assert_array_equal(wanted.confidence, input_confidence(wanted.depth, depth_in, S, 0.1, 20.0))
    assert proc.process(*messages(), want_points=False).confidence is None  # the next call did not ask

    cloud_proc = processor(point_cloud_confidence=True)
    assert cloud_proc.process(*messages(), want_points=False).confidence is None  # no cloud: nothing computed
    out = cloud_proc.process(*messages(), want_points=True)
    assert [f.name for f in out.points.fields] == ["x", "y", "z", "confidence"]
    points = out.points.data.view("<f4").reshape(H, W, 4)
    np.testing.assert_array_equal(points[..., 3], out.confidence)
