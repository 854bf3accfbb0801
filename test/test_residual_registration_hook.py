"""FrameProcessor.process(residual=...): registered depth corrected by a residual extrinsic before SR."""

from __future__ import annotations

import numpy as np
import pytest
from test_frame_processor import FX, H, S, W, camera_info, image, inputs, scene

from depth_sr_ros.core.camera_info import intrinsics_from_camera_info
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.reprojection import rotation_from_vector
from depth_sr_ros.core.resample import bicubic_downsample
from depth_sr_ros.core.sensor_view import SECOND_PASS_MAX_SCALE, SensorView


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


def _in_sensor_view() -> DepthSR:
    """A bicubic pipeline taken the way a network is (`is_network`): in the depth sensor's view."""
    pipeline = DepthSR(SRConfig(scale=S, backbone="bicubic"))
    pipeline.is_network = True
    return pipeline


def test_a_network_runs_in_the_sensors_view_and_a_classic_upsampler_on_registered_input() -> None:
    residual = Extrinsic(np.eye(3), np.array([8.0 * 1.5 / FX, 0.0, 0.0]))
    classic = FrameProcessor(DepthSR(SRConfig(scale=S, backbone="bicubic")), OutputConfig())
    viewed = FrameProcessor(_in_sensor_view(), OutputConfig())
    assert classic.pipeline.is_network is False
    on_registered = classic.process(**inputs(), want_points=False, residual=residual).depth
    in_view = viewed.process(**inputs(), want_points=False, residual=residual).depth
    plain = classic.process(**inputs(), want_points=False).depth
    for moved in (on_registered, in_view):  # both put the near square where the colour camera sees it
        assert abs(_near_columns(moved) - _near_columns(plain) - 8.0) < 1.5
    assert not np.array_equal(np.nan_to_num(in_view), np.nan_to_num(on_registered))


def test_what_the_sensor_does_not_see_gets_zero_confidence_and_min_confidence_drops_it() -> None:
    residual = Extrinsic(np.eye(3), np.array([8.0 * 1.5 / FX, 0.0, 0.0]))  # 8 px at 1.5 m, 6 px at 2 m
    kept = FrameProcessor(_in_sensor_view(), OutputConfig())
    dropping = FrameProcessor(_in_sensor_view(), OutputConfig(min_confidence=0.05))
    filled = kept.process(**inputs(), want_points=False, residual=residual, want_confidence=True)
    dropped = dropping.process(**inputs(), want_points=True, residual=residual)
    strip = (slice(None), slice(0, 5))  # the colour camera's left border: outside the sensor's view
    assert filled.confidence is not None and filled.confidence.shape == (H, W)
    assert (filled.confidence[strip] == 0).all() and np.isfinite(filled.depth[strip]).all()
    assert np.isnan(dropped.depth[strip]).all()
    seen = filled.confidence > 0.05
    assert seen.mean() > 0.5
    np.testing.assert_array_equal(dropped.depth[seen], filled.depth[seen])
    assert np.isnan(dropped.depth[~seen]).all()
    assert dropped.points is not None


def test_a_residual_that_moves_everything_out_of_view_is_a_frame_error() -> None:
    processor = FrameProcessor(_in_sensor_view(), OutputConfig())
    turned_away = Extrinsic(rotation_from_vector([0.0, np.pi / 2, 0.0]), np.zeros(3))  # 90 degrees aside
    with pytest.raises(FrameError) as caught:
        processor.process(**inputs(), want_points=True, residual=turned_away)
    assert caught.value.reason == "no_points_in_view"
    behind = Extrinsic(np.eye(3), np.array([0.0, 0.0, -10.0]))  # every point 10 m behind the colour camera
    with pytest.raises(FrameError):
        processor.process(**inputs(), want_points=True, residual=behind)


def _recording(pipeline: DepthSR) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Wrap `pipeline.process` so that each call's (guide, input depth, output depth, second_pass) is kept."""
    calls: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = []
    process = pipeline.process

    def recorded(rgb: np.ndarray, depth: np.ndarray, second_pass: bool = False):
        result = process(rgb, depth, second_pass)
        calls.append((rgb.copy(), np.array(depth, copy=True), result.depth.copy(), second_pass))
        return result

    pipeline.process = recorded  # type: ignore[method-assign]
    return calls


def test_a_network_runs_a_second_pass_in_the_colour_camera_on_its_reprojected_output() -> None:
    residual = Extrinsic(np.eye(3), np.array([8.0 * 1.5 / FX, 0.0, 0.0]))
    pipeline = _in_sensor_view()
    calls = _recording(pipeline)
    processor = FrameProcessor(pipeline, OutputConfig())
    out = processor.process(**inputs(), want_points=False, residual=residual, want_confidence=True)
    rgb, _ = scene()
    assert len(calls) == 2
    (guide, first_in, first_out, first_is_second), (colour, second_in, second_out, second_is_second) = calls
    assert (first_is_second, second_is_second) == (False, True)  # the second pass's own network, if any
    assert not np.array_equal(guide, rgb)  # the first pass sees the colour image in the sensor's view ...
    np.testing.assert_array_equal(colour, rgb)  # ... the second the colour image itself
    seen = SensorView(intrinsics_from_camera_info(camera_info(W, H)), residual).to_colour(
        first_out, pipeline.config.max_hole_radius * S)
    np.testing.assert_array_equal(second_in, bicubic_downsample(seen.depth, S))
    assert second_in.shape == first_in.shape
    np.testing.assert_array_equal(np.isnan(out.depth), np.isnan(seen.depth))
    np.testing.assert_array_equal(out.depth[np.isfinite(seen.depth)], second_out[np.isfinite(seen.depth)])
    assert out.confidence is not None and (out.confidence[seen.unseen] == 0).all()
    assert (out.confidence[~seen.unseen & np.isfinite(out.depth)] > 0).mean() > 0.9


def test_without_the_second_pass_the_sensors_view_output_is_only_reprojected() -> None:
    residual = Extrinsic(np.eye(3), np.array([8.0 * 1.5 / FX, 0.0, 0.0]))
    pipeline = _in_sensor_view()
    calls = _recording(pipeline)
    out = FrameProcessor(pipeline, OutputConfig(second_pass=False)).process(**inputs(), want_points=False,
                                                                            residual=residual)
    assert len(calls) == 1
    seen = SensorView(intrinsics_from_camera_info(camera_info(W, H)), residual).to_colour(
        calls[0][2], pipeline.config.max_hole_radius * S)
    np.testing.assert_array_equal(out.depth, seen.depth)


def test_past_x8_the_sensors_view_output_is_only_reprojected() -> None:
    scale = SECOND_PASS_MAX_SCALE * 2
    pipeline = DepthSR(SRConfig(scale=scale, backbone="bicubic"))
    pipeline.is_network = True
    calls = _recording(pipeline)
    residual = Extrinsic(np.eye(3), np.array([8.0 * 1.5 / FX, 0.0, 0.0]))
    msgs = inputs()
    msgs["depth_info_msg"] = camera_info(W // scale, H // scale, 1 / scale)
    msgs["depth_msg"] = image(np.ascontiguousarray(scene()[1][::scale // S, ::scale // S]), "16UC1")
    out = FrameProcessor(pipeline, OutputConfig()).process(**msgs, want_points=False, residual=residual)
    assert len(calls) == 1
    seen = SensorView(intrinsics_from_camera_info(camera_info(W, H)), residual).to_colour(
        calls[0][2], pipeline.config.max_hole_radius * scale)
    np.testing.assert_array_equal(out.depth, seen.depth)
