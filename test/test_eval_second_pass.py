"""`depth-sr evaluate --registration`: a network's second pass in the colour camera, as the node runs it."""

from __future__ import annotations

import dataclasses

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


def test_the_second_pass_runs_its_own_network_when_one_is_given() -> None:
    frame = _frame(128)
    inp = make_input(frame, 4)
    seen_by_network, to_colour = registered_input(given(Extrinsic(np.eye(3), np.array([0.03, 0.01, 0.0]))), inp,
                                                  None, 4, True, True)
    assert to_colour is not None
    first_calls: list[tuple[np.ndarray, np.ndarray]] = []
    second_calls: list[tuple[np.ndarray, np.ndarray]] = []
    own = dataclasses.replace(to_colour, method=_recording_method(second_calls))
    gdsr_frame(_recording_method(first_calls), frame, seen_by_network, 4, own)
    assert len(first_calls) == 1 and len(second_calls) == 1
    np.testing.assert_array_equal(second_calls[0][0], inp.rgb)


@pytest.mark.parametrize("kind", ["parallax", "parallax_phone_tof"])
def test_the_second_pass_training_input_is_what_evaluate_hands_the_second_pass(kind: str) -> None:
    pytest.importorskip("torch", reason="the training presets need the optional torch extra")
    from depth_sr_ros.core.reprojection import extrinsic_from_params
    from depth_sr_ros.train.parallax import parallax_sensor
    from depth_sr_ros.train.second_pass import SecondPassSensors, second_pass_input

    frame = _frame(128)
    sensors = SecondPassSensors(kinds=(kind,))
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    made = second_pass_input(frame, _recording_method([]), 4, np.random.default_rng(3), sensors)
    rng = np.random.default_rng(3)
    drawn = sensors.draw(rng)
    true, estimate = drawn.translation_m, drawn.estimate
    assert drawn.kind == kind
    assert 0.01 <= np.hypot(*true[:2]) <= 0.05 and np.all(np.abs(estimate[:3] - true) <= 0.002)
    inp = make_input(frame, 4, parallax_sensor(kind, tuple(true)), rng)  # a ToF camera draws its effects next
    seen, to_colour = registered_input(given(extrinsic_from_params(estimate)), inp, None, 4, True, True)
    gdsr_frame(_recording_method(calls), frame, seen, 4, to_colour)
    lo, hi = float(inp.gt.min() / 0.001), float(inp.gt.max() / 0.001)
    assert made.lr.shape == calls[1][1].shape and np.isfinite(made.lr).all()
    np.testing.assert_allclose((made.lr / np.float32(0.001) - lo) / (hi - lo), calls[1][1], atol=1e-4)
    np.testing.assert_array_equal(made.rgb, inp.rgb)
    np.testing.assert_array_equal(made.gt, inp.gt)


def test_second_pass_sensors_draw_each_kind_and_refuse_unknown_ones() -> None:
    pytest.importorskip("torch", reason="the training presets need the optional torch extra")
    from depth_sr_ros.train.second_pass import SecondPassSensors

    kinds = ("parallax", "parallax_tof", "parallax_phone_tof")
    rng = np.random.default_rng(0)
    drawn = [SecondPassSensors(kinds=kinds).draw(rng).kind for _ in range(60)]
    assert set(drawn) == set(kinds) and max(drawn.count(k) for k in kinds) < 40
    with pytest.raises(ValueError, match="parallax_phone_tof"):
        SecondPassSensors(kinds=("phone",))
    with pytest.raises(ValueError):
        SecondPassSensors(kinds=())
