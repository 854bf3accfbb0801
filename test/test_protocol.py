"""The gdsr protocol (PROTOCOL.md): bicubic degradation, normalisation, crop, RMSE by hand."""

import numpy as np
import pytest
from PIL import Image

from depth_sr_ros.eval.protocol import (
    crop_to_multiple,
    discontinuity_mask,
    gdsr_frame,
    gdsr_score,
    make_input,
    metric_frame,
    protocol_bicubic_downsample,
)
from depth_sr_ros.train.datasets import Frame


def _middlebury_frame(h=21, w=30, seed=0):
    rng = np.random.default_rng(seed)
    native = np.round(rng.uniform(20, 200, (h, w))).astype(np.float32)
    return Frame("t", rng.integers(0, 255, (h, w, 3), dtype=np.uint8), native * np.float32(0.01), 0.01, "middlebury")


def test_bicubic_degradation_is_pil_antialiased_bicubic_on_float32():
    gt = np.random.default_rng(1).uniform(0, 255, (32, 48)).astype(np.float32)
    lr = protocol_bicubic_downsample(gt, 4)
    expected = np.asarray(Image.fromarray(gt).resize((12, 8), Image.BICUBIC))
    assert lr.shape == (8, 12) and lr.dtype == np.float32
    np.testing.assert_array_equal(lr, expected)
    # Antialiased: each output averages over a wide footprint, unlike point sampling.
    assert np.std(lr) < 0.5 * np.std(gt)


def test_crop_to_multiple_crops_bottom_and_right():
    image = np.arange(21 * 30).reshape(21, 30)
    cropped = crop_to_multiple(image, 4)
    assert cropped.shape == (20, 28)
    np.testing.assert_array_equal(cropped, image[:20, :28])


def test_make_input_crops_and_downsamples_in_native_units():
    frame = _middlebury_frame()
    inp = make_input(frame, 4)
    assert inp.gt.shape == (20, 28) and inp.rgb.shape == (20, 28, 3) and inp.lr.shape == (5, 7)
    expected = protocol_bicubic_downsample(frame.native[:20, :28], 4) * np.float32(0.01)
    np.testing.assert_allclose(inp.lr, expected, rtol=1e-6)


def test_normalisation_uses_ground_truth_range_and_clamps():
    frame = _middlebury_frame()
    inp = make_input(frame, 4)
    gt = frame.native[:20, :28]
    lo, hi = gt.min(), gt.max()
    seen = {}

    def oracle(rgb, depth_lr, valid_lr, scale):
        seen["lr"] = depth_lr
        return (gt - lo) / (hi - lo)

    _, rmse = gdsr_frame(oracle, frame, inp, 4)
    assert rmse == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(seen["lr"], (inp.lr / np.float32(0.01) - lo) / (hi - lo), rtol=1e-5, atol=1e-6)

    # A prediction above 1 is clamped to 1 -> de-normalised to gt.max().
    _, rmse = gdsr_frame(lambda *a: np.full((20, 28), 5.0, np.float32), frame, inp, 4)
    assert rmse == pytest.approx(np.sqrt(np.mean((hi - gt.astype(np.float64)) ** 2)), rel=1e-5)


def test_middlebury_rmse_by_hand_clips_to_0_255_and_uses_all_pixels():
    gt = np.array([[0.0, 10.0], [250.0, 255.0]], dtype=np.float32)
    pred = np.array([[-3.0, 12.0], [260.0, 251.0]], dtype=np.float32)
    # clipped: [0, 12, 255, 251] -> errors [0, 2, 5, -4] -> sqrt((0 + 4 + 25 + 16) / 4)
    assert gdsr_score(pred, gt, "middlebury", 0.01) == pytest.approx(np.sqrt(45 / 4))


def test_nyu_rmse_is_centimetres_after_a_6px_border_crop():
    gt = np.full((20, 20), 2000.0, dtype=np.float32)  # millimetres
    pred = gt.copy()
    pred[:6, :] += 500.0  # errors only inside the border: ignored
    assert gdsr_score(pred, gt, "nyu", 0.001) == 0.0
    pred[10, 10] += 10.0  # 10 mm = 1 cm on one of 8 x 8 scored pixels
    assert gdsr_score(pred, gt, "nyu", 0.001) == pytest.approx(np.sqrt(1.0 / 64))


def test_rgbdd_rmse_is_centimetres_over_every_pixel():
    gt = np.full((8, 10), 1500.0, dtype=np.float32)  # millimetres
    pred = gt.copy()
    pred[0, 0] += 20.0  # 2 cm in the corner: scored (no border crop)
    pred[7, 9] -= 10.0  # 1 cm
    assert gdsr_score(pred, gt, "rgbdd", 0.001) == pytest.approx(np.sqrt((4.0 + 1.0) / 80))
    gt[0, 0] = np.nan  # an invalid ground-truth pixel is left out
    assert gdsr_score(pred, gt, "rgbdd", 0.001) == pytest.approx(np.sqrt(1.0 / 79))


def test_zero_values_are_downsampled_and_scored_like_any_other():
    frame = _middlebury_frame()
    frame.depth[:6, :6] = 0.0  # Middlebury-style zeros (zero_is_invalid: false): values
    inp = make_input(frame, 4)
    assert np.isfinite(inp.lr).all() and not inp.gt_holes
    np.testing.assert_allclose(inp.lr, protocol_bicubic_downsample(frame.native[:20, :28], 4) * np.float32(0.01),
                               rtol=1e-6, atol=1e-7)
    # A constant prediction of 0 scores the zeros as exact and everything else by its value.
    gt = frame.native[:20, :28].astype(np.float64)
    lo, hi = gt.min(), gt.max()
    _, rmse = gdsr_frame(lambda *a: np.full((20, 28), -1.0, np.float32), frame, inp, 4)
    assert lo == 0.0 and rmse == pytest.approx(np.sqrt(np.mean(gt**2)), rel=1e-6)
    assert hi > 0


def test_ground_truth_holes_are_filled_for_the_input_and_left_out_of_the_score():
    frame = _middlebury_frame()
    frame.gdsr_style = "rgbdd"
    frame.depth[3, 3] = np.nan
    frame.depth[12:20, 0:8] = np.nan  # two whole 4x4 blocks and more
    inp = make_input(frame, 4)
    assert inp.gt_holes
    assert np.isnan(inp.lr[3:5, 0:2]).all() and np.isfinite(inp.lr[0, 0])  # whole-block holes stay holes
    valid = np.isfinite(inp.gt)
    oracle_native = np.nan_to_num(frame.native[:20, :28], nan=123.0)
    lo, hi = np.nanmin(frame.native[:20, :28]), np.nanmax(frame.native[:20, :28])
    _, rmse = gdsr_frame(lambda *a: (oracle_native - lo) / (hi - lo), frame, inp, 4)
    assert rmse == pytest.approx(0.0, abs=1e-4)  # the holes' 123s are not scored
    assert valid.sum() == 20 * 28 - 1 - 8 * 8


def test_real_low_resolution_input_of_another_size_goes_to_the_model_grid():
    rng = np.random.default_rng(3)
    gt = rng.uniform(1000, 2000, (40, 52)).astype(np.float32) * np.float32(0.001)
    lr = rng.uniform(1, 2, (15, 19)).astype(np.float32)  # a 3/8 sensor (not 40/4 x 52/4)
    frame = Frame("r", rng.integers(0, 255, (40, 52, 3), dtype=np.uint8), gt, 0.001, "rgbdd", depth_lr=lr)
    inp = make_input(frame, 8)
    # rgbdd real pairs: cropped to a multiple of 4 (40 x 52), grid ceil(40/8) x ceil(52/8) = 5 x 7.
    assert inp.gt.shape == (40, 52) and inp.lr.shape == (5, 7) and inp.source == "depth_lr"
    rows = np.minimum(((np.arange(5) + 0.5) * 8 / (40 / 15)).astype(int), 14)
    cols = np.minimum(((np.arange(7) + 0.5) * 8 / (52 / 19)).astype(int), 18)
    np.testing.assert_array_equal(inp.lr, lr[np.ix_(rows, cols)])
    seen = {}

    def method(rgb, depth, valid, scale):
        seen["rgb"] = rgb.shape
        return np.kron(depth, np.ones((scale, scale), np.float32))

    pred, rmse = gdsr_frame(method, frame, inp, 8)
    assert seen["rgb"] == (40, 56, 3) and pred.shape == (40, 52) and np.isfinite(rmse)


def test_metric_protocol_reports_edge_rmse_near_discontinuities():
    gt = np.full((16, 16), 2.0, dtype=np.float32)
    gt[:, 8:] = 1.0
    mask = discontinuity_mask(gt, radius=1)
    assert mask[:, 6:10].all() and not mask[:, :6].any() and not mask[:, 11:].any()
    frame = Frame("m", np.zeros((16, 16, 3), np.uint8), gt, 1.0)
    inp = make_input(frame, 4)
    _, metrics = metric_frame(lambda rgb, d, v, s: np.kron(d, np.ones((s, s), np.float32)), inp, 4)
    assert set(metrics) >= {"rmse", "mae", "absrel", "delta1", "edge_rmse"}
    assert metrics["edge_rmse"] >= metrics["rmse"] > 0
