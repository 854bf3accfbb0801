"""FrameProcessor.process(residual=...): registered depth corrected by a residual extrinsic before SR."""

from __future__ import annotations

import numpy as np
from test_frame_processor import FX, H, S, W, inputs

from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.projection import Extrinsic


def _near_columns(depth: np.ndarray) -> float:
    """Mean column of the near square (depth below 1.75 m) in the H x W output."""
    return float(np.nonzero(depth < 1.75)[1].mean())


def test_a_residual_moves_the_depth_by_its_parallax_and_none_leaves_it() -> None:
    processor = FrameProcessor(DepthSR(SRConfig(scale=S, backbone="bicubic")), OutputConfig())
    plain = processor.process(**inputs(), want_points=False)
    identity = processor.process(**inputs(), want_points=False, residual=Extrinsic(np.eye(3), np.zeros(3)))
    # the depth sensor 0.2 m left of where its registration assumed: the 1.5 m square moves f*B/Z = 8 px right
    shift_px = 8.0
    moved = processor.process(**inputs(), want_points=False,
                              residual=Extrinsic(np.eye(3), np.array([shift_px * 1.5 / FX, 0.0, 0.0])))
    assert plain.depth.shape == moved.depth.shape == (H, W)
    assert "register" in moved.timings_ms and "register" not in plain.timings_ms
    np.testing.assert_allclose(identity.depth, plain.depth, rtol=0, atol=1e-5)
    assert abs(_near_columns(moved.depth) - _near_columns(plain.depth) - shift_px) < 1.5
    rows = np.nonzero((plain.depth < 1.75).any(axis=1))[0]  # vertical extent unchanged: the residual is horizontal
    np.testing.assert_array_equal(np.nonzero((moved.depth < 1.75).any(axis=1))[0], rows)
