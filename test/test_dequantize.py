"""Dequantising 8-bit ground truth (nyu_train): every value stays in its stored bin, slanted surfaces
lose their staircase, depth edges stay where they are, and on real NYU frames with 1 mm ground truth
the result is nearer the truth than the bin centres; a source with `depth_bins_per_m` loads
dequantised frames."""

import numpy as np
import pytest
from PIL import Image

from depth_sr_ros.train.dequantize import Dequantizer

BINS = 25.5  # NYU v2's 8-bit copies: floor(metres x 25.5)


def stored(depth_m: np.ndarray) -> np.ndarray:
    """What nyu_train stores for this depth: the centre of its bin, in whole millimetres, as metres."""
    return np.round((np.floor(depth_m * BINS) + 0.5) / BINS * 1000).astype(np.float32) / 1000


def rms_cm(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2)) * 100)


def test_a_slanted_floor_with_a_box_loses_its_steps_and_keeps_its_edge():
    rows, cols = np.mgrid[0:120, 0:160].astype(np.float32)
    truth = 1.5 + 0.011 * rows + 0.004 * cols  # a plane: steps every few pixels
    truth[30:70, 60:110] -= 0.6  # a box in front of it: a 60 cm edge
    truth[5:9, 5:9] = np.nan  # a hole
    quantised = stored(truth)
    out = Dequantizer(BINS)(quantised)
    k = Dequantizer(BINS).bins(quantised)
    valid = np.isfinite(truth)
    assert np.array_equal(np.isfinite(out), valid)
    assert np.all(out[valid] >= k[valid] / BINS - 1e-6) and np.all(out[valid] < (k[valid] + 1) / BINS + 1e-6)
    interior = np.zeros_like(valid)
    interior[12:-12, 12:-12] = True
    interior[26:74, 56:114] = False  # away from the box's edge
    interior[28:72, 58:112] = True  # but inside the box
    interior &= valid
    assert rms_cm(quantised[interior], truth[interior]) > 1.0  # the staircase: about step / sqrt(12)
    assert rms_cm(out[interior], truth[interior]) < 0.35 * rms_cm(quantised[interior], truth[interior])
    edge = np.zeros_like(valid)
    edge[29:31, 60:110] = edge[69:71, 60:110] = True
    np.testing.assert_allclose(out[edge], quantised[edge], atol=6e-4)  # beside a real edge: the bin centre


def test_real_nyu_frames_come_nearer_their_millimetre_truth(shared_data):
    for name in ("1000", "1001", "1002"):
        truth = np.asarray(Image.open(shared_data / "nyu_test" / "depth" / f"{name}.png")).astype(np.float32) / 1000
        truth[truth == 0] = np.nan
        quantised = stored(truth)
        out = Dequantizer(BINS)(quantised)
        assert rms_cm(out, truth) < 0.93 * rms_cm(quantised, truth), name


def test_a_source_with_depth_bins_loads_dequantised_frames(shared_data):
    from depth_sr_ros.train.config import SourceConfig  # no torch needed

    plain = SourceConfig("nyu_train").frames(str(shared_data), limit=1)[0]
    smooth = SourceConfig("nyu_train", depth_bins_per_m=BINS).frames(str(shared_data), limit=1)[0]
    k = Dequantizer(BINS).bins(plain.depth)
    assert len(np.unique(plain.depth)) < 256 < len(np.unique(smooth.depth))
    assert np.all(np.abs(smooth.depth * BINS - (k + 0.5)) <= 0.5 + 1e-4)
    with pytest.raises(ValueError, match="bins_per_m must be positive"):
        Dequantizer(0.0)
