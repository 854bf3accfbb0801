"""`depth-sr evaluate --registration`: a network's second pass in the colour camera, as the node runs it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.resample import bicubic_downsample
from depth_sr_ros.core.sensor_view import SECOND_PASS_MAX_SCALE
from depth_sr_ros.eval.protocol import gdsr_frame, make_input
from depth_sr_ros.eval.registration import given, registered_input
from depth_sr_ros.train.datasets import Frame


def _frame(size: int) -> Frame:
    """A 2 m wall with a 1.5 m box (millimetres), a colour image with the box bright."""
    rgb = np.full((size, size, 3), 40, np.uint8)
    rgb[size // 4: size // 2, size // 4: size // 2] = 220
    depth = np.full((size, size), 2000.0, np.float32)
    depth[size // 4: size // 2, size // 4: size // 2] = 1500.0
    return Frame("box", rgb, depth * np.float32(0.001), 0.001, "rgbdd")


def _recording_method(calls: list[tuple[np.ndarray, np.ndarray]]):
    """Bilinear upsampling of the normalised input that keeps each call's (colour, input)."""
    def method(rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray, scale: int) -> np.ndarray:
        calls.append((rgb.copy(), depth.copy()))
        return cv2.resize(depth, (depth.shape[1] * scale, depth.shape[0] * scale), interpolation=cv2.INTER_LINEAR)
    return method


@pytest.mark.parametrize(("scale", "second_pass"), [(4, True), (4, False), (2 * SECOND_PASS_MAX_SCALE, True)])
def test_a_network_runs_again_beside_the_colour_image_up_to_x8(scale: int, second_pass: bool) -> None:
    frame = _frame(128)
    inp = make_input(frame, scale)
    registration = given(Extrinsic(np.eye(3), np.array([0.03, 0.01, 0.0])))
    seen_by_network, to_colour = registered_input(registration, inp, None, scale, True, second_pass)
    assert to_colour is not None
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    pred, rmse = gdsr_frame(_recording_method(calls), frame, seen_by_network, scale, to_colour)
    assert not np.array_equal(calls[0][0], inp.rgb)  # the first pass: the colour image in the sensor's view
    if scale > SECOND_PASS_MAX_SCALE or not second_pass:
        assert len(calls) == 1 and to_colour.rgb is None
        return
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[1][0], inp.rgb)  # the second: the colour image itself
    # the second pass's input: the first's output (clamped, in the stored unit) reprojected, on the
    # input grid, normalised by the ground truth's range as the first pass's was
    lo, hi = float(frame.native.min()), float(frame.native.max())
    first = np.clip(cv2.resize(calls[0][1], inp.gt.shape[::-1], interpolation=cv2.INTER_LINEAR), 0, 1) * (hi - lo) + lo
    expected = bicubic_downsample(to_colour.reproject(first * np.float32(0.001)) / np.float32(0.001), scale)
    np.testing.assert_allclose(calls[1][1], (expected - lo) / (hi - lo), atol=1e-4)
    assert np.isfinite(pred).all() and rmse < 20.0
