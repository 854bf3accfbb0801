"""Sparsification curves and AUSE against hand computation; the curve's PNG."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_sr_ros.core.sparsification import CurveMean, sparsification, summarise
from depth_sr_ros.core.sparsification_plot import (
    CONFIDENCE_BGR,
    GAP_BGR,
    ORACLE_BGR,
    write_sparsification_png,
)

GT = np.ones((2, 2), np.float32)
PRED = GT + np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)  # errors 1, 2, 3, 4
QUARTERS = (0.0, 0.25, 0.5, 0.75)


def test_curve_by_hand():
    # Confidence removes the error-2 pixel first, then 4, then 3.
    confidence = np.array([[0.7, 0.1], [0.5, 0.2]], np.float32)
    curve = sparsification(PRED, GT, confidence, QUARTERS)
    # Kept after each removal: {1,2,3,4}, {1,3,4}, {1,3}, {1}.
    expected = np.sqrt([30 / 4, 26 / 3, 10 / 2, 1 / 1])
    np.testing.assert_allclose(curve.rmse, expected)
    np.testing.assert_allclose(curve.oracle, np.sqrt([30 / 4, 14 / 3, 5 / 2, 1 / 1]))
    gap = expected - curve.oracle
    assert curve.ause == pytest.approx(0.25 * (gap[:-1] + gap[1:]).sum() / 2)
    assert curve.ause_relative == pytest.approx(curve.ause / np.sqrt(7.5))
    assert curve.rmse_cut(0.25) == pytest.approx(1 - np.sqrt(26 / 3) / np.sqrt(7.5))
    assert curve.pixels == 4


def test_error_ordered_confidence_is_the_oracle_and_reversed_is_worst():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1, 3, (30, 40)).astype(np.float32)
    pred = gt + rng.normal(0, 0.05, gt.shape).astype(np.float32)
    error = np.abs(pred - gt)
    best = sparsification(pred, gt, -error)
    np.testing.assert_allclose(best.rmse, best.oracle)
    assert best.ause == pytest.approx(0.0, abs=1e-12)
    worst = sparsification(pred, gt, error)
    assert worst.ause > 0 and worst.rmse[-1] > worst.rmse[0]  # the best pixels removed first
    assert np.all(np.diff(best.rmse) <= 1e-12)  # removing the worst pixels never raises the RMSE


def test_ties_go_in_raster_order_and_invalid_pixels_are_not_scored():
    confidence = np.full((2, 2), 0.5, np.float32)
    curve = sparsification(PRED, GT, confidence, QUARTERS)
    # Equal confidence: the later pixel in raster order (error 4) is removed first, then 3, then 2.
    np.testing.assert_allclose(curve.rmse, np.sqrt([30 / 4, 14 / 3, 5 / 2, 1 / 1]))
    pred = PRED.copy()
    pred[0, 0] = np.nan
    gt = GT.copy()
    gt[1, 1] = np.nan
    conf = np.array([[1.0, np.nan], [0.5, 0.2]], np.float32)
    only = sparsification(pred, gt, conf, (0.0,))
    assert only.pixels == 1 and only.rmse[0] == pytest.approx(3.0)  # pixel (1, 0) alone


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="one shape"):
        sparsification(PRED, GT, np.ones((2, 3), np.float32))
    for fractions in [(0.1, 0.5), (0.0, 0.5, 0.5), (0.0, 1.0), ()]:
        with pytest.raises(ValueError, match="fractions"):
            sparsification(PRED, GT, GT, fractions)
    with pytest.raises(ValueError, match="no pixel"):
        sparsification(np.full((2, 2), np.nan, np.float32), GT, GT)
    with pytest.raises(ValueError, match="not one of"):
        sparsification(PRED, GT, GT, QUARTERS).rmse_cut(0.1)


def test_summary_averages_frames_alike():
    first = sparsification(PRED, GT, -np.abs(PRED - GT), QUARTERS)
    second = sparsification(PRED * 2 - GT, GT, np.abs(PRED - GT), QUARTERS)
    summary = summarise([first, second], cut_fractions=(0.25,))
    np.testing.assert_allclose(summary.rmse, (first.rmse + second.rmse) / 2)
    assert summary.frames == 2
    assert summary.ause == pytest.approx((first.ause + second.ause) / 2)
    assert summary.ause_relative == pytest.approx((first.ause_relative + second.ause_relative) / 2)
    assert summary.rmse_cut[0.25] == pytest.approx((first.rmse_cut(0.25) + second.rmse_cut(0.25)) / 2)
    with pytest.raises(ValueError):
        summarise([first, sparsification(PRED, GT, GT, (0.0, 0.5))])
    with pytest.raises(ValueError):
        summarise([])


def test_running_mean_refuses_a_curve_without_counting_it_and_reads_off_the_mean_curve():
    first = sparsification(PRED, GT, -np.abs(PRED - GT), QUARTERS)
    second = sparsification(PRED * 2 - GT, GT, np.abs(PRED - GT), QUARTERS)
    mean = CurveMean((0.25,))
    with pytest.raises(ValueError, match="no sparsification curve"):
        mean.summary()
    mean.add(first)
    with pytest.raises(ValueError, match="share"):
        mean.add(sparsification(PRED, GT, GT, (0.0, 0.5)))
    with pytest.raises(ValueError, match="not one of"):
        CurveMean((0.1,)).add(first)
    mean.add(second)
    summary = mean.summary()
    assert summary.frames == 2
    np.testing.assert_allclose(summary.oracle, (first.oracle + second.oracle) / 2)
    assert summary.left_at(0.5) == pytest.approx(((first.rmse[2] + second.rmse[2]) / 2,
                                                  (first.oracle[2] + second.oracle[2]) / 2))
    assert summary.curve_dict()["rmse_m"] == pytest.approx(list(summary.rmse))


def test_png_shows_both_curves_and_the_gap(tmp_path):
    rng = np.random.default_rng(1)
    gt = rng.uniform(1, 3, (20, 30)).astype(np.float32)
    pred = gt + rng.normal(0, 0.02, gt.shape).astype(np.float32)
    curve = sparsification(pred, gt, rng.random(gt.shape).astype(np.float32))
    path = write_sparsification_png(tmp_path / "sub" / "curve.png", curve, "random confidence", curve.ause)
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (420, 640, 3)
    for colour in (CONFIDENCE_BGR, ORACLE_BGR, GAP_BGR):
        assert np.all(image == colour, axis=-1).sum() > 200, colour
