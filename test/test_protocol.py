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
)
from depth_sr_ros.train.datasets import Frame
from depth_sr_ros.train.degradations import protocol_bicubic_downsample


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


def test_bicubic_protocol_refuses_ground_truth_with_holes():
    frame = _middlebury_frame()
    frame.depth[3, 3] = np.nan
    with pytest.raises(ValueError, match="hole-free"):
        make_input(frame, 4)


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
