"""Each degradation's statistics (metres, NaN = invalid)."""

import numpy as np
import pytest

from depth_sr_ros.train.degradations import (
    DEGRADATIONS,
    Downsample,
    FlyingPixels,
    GaussianNoise,
    ProportionalNoise,
    Quantize,
    RandomHoles,
    RandomPoints,
    ScanRings,
    StructuredHoles,
    get_degradation,
    protocol_bicubic_downsample,
)


def rng():
    return np.random.default_rng(0)


def flat(value=2.0, shape=(200, 200)):
    return np.full(shape, value, dtype=np.float32)


def step_edge(shape=(64, 64)):
    gt = np.full(shape, 3.0, dtype=np.float32)
    gt[:, shape[1] // 2 :] = 1.0
    return gt


def test_downsample_area_is_block_mean_of_valid_pixels():
    gt = np.arange(16, dtype=np.float32).reshape(4, 4)
    gt[0, 0] = np.nan
    lr = Downsample("area")(np.empty(0), gt, 2, rng())
    assert lr.shape == (2, 2)
    assert lr[0, 0] == pytest.approx(np.mean([1, 4, 5]))
    assert lr[1, 1] == pytest.approx(np.mean([10, 11, 14, 15]))


def test_downsample_nearest_takes_block_centre_and_bicubic_is_the_protocol():
    gt = np.random.default_rng(1).uniform(1, 3, (16, 24)).astype(np.float32)
    np.testing.assert_array_equal(Downsample("nearest")(np.empty(0), gt, 4, rng()), gt[2::4, 2::4])
    np.testing.assert_array_equal(Downsample("bicubic")(np.empty(0), gt, 4, rng()), protocol_bicubic_downsample(gt, 4))


def test_downsample_bicubic_keeps_fully_invalid_blocks_invalid():
    gt = flat(shape=(16, 16))
    gt[:4, :4] = np.nan
    lr = Downsample("bicubic")(np.empty(0), gt, 4, rng())
    assert np.isnan(lr[0, 0]) and np.isfinite(lr[1:, :]).all()
    assert np.nanmax(np.abs(lr - 2.0)) < 1e-5


def test_gaussian_noise_has_the_given_sigma():
    lr = GaussianNoise(0.01)(flat(), flat(), 1, rng())
    assert np.mean(lr) == pytest.approx(2.0, abs=1e-3)
    assert np.std(lr) == pytest.approx(0.01, rel=0.05)


def test_proportional_noise_grows_with_depth():
    for depth, power in ((1.0, 1.0), (4.0, 1.0), (4.0, 2.0)):
        lr = ProportionalNoise(rel=0.01, power=power)(flat(depth), flat(depth), 1, rng())
        assert np.std(lr) == pytest.approx(0.01 * depth**power, rel=0.05)


def test_random_holes_drop_the_given_fraction():
    lr = RandomHoles(0.1)(flat(), flat(), 1, rng())
    assert np.isnan(lr).mean() == pytest.approx(0.1, abs=0.01)
    assert np.all(lr[np.isfinite(lr)] == 2.0)


def test_structured_holes_cover_about_the_given_area_in_blobs():
    lr = StructuredHoles(count=2, area_fraction=0.1)(flat(), flat(), 1, rng())
    holes = np.isnan(lr)
    assert 0.03 < holes.mean() < 0.12
    # Blobs, not speckle: most hole pixels have a hole to their right as well.
    assert (holes[:, :-1] & holes[:, 1:]).sum() > 0.9 * holes[:, :-1].sum()


def test_flying_pixels_appear_only_at_edges_and_between_the_surfaces():
    gt = step_edge()
    lr = FlyingPixels(jump_m=0.5, probability=1.0)(gt.copy(), gt, 1, rng())
    changed = lr != gt
    assert changed.any()
    cols = np.nonzero(changed.any(axis=0))[0]
    assert set(cols) <= {31, 32}
    assert np.all((lr >= 1.0) & (lr <= 3.0))


def test_quantize_rounds_to_millimetres():
    lr = Quantize(0.001)(np.array([1.00049, 1.0006, 2.3334], np.float32), None, 1, rng())
    np.testing.assert_allclose(lr, [1.000, 1.001, 2.333], atol=1e-6)


def test_random_points_keep_the_given_density():
    lr = RandomPoints(0.05)(flat(), flat(), 1, rng())
    assert np.isfinite(lr).mean() == pytest.approx(0.05, abs=0.01)


def test_scan_rings_keep_about_one_line_per_ring():
    lr = ScanRings(rings=8, curvature=0.0)(flat(), flat(), 1, rng())
    rows = np.nonzero(np.isfinite(lr).any(axis=1))[0]
    assert len(rows) == 8
    assert np.isfinite(lr[rows]).all()


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_every_preset_gives_a_low_resolution_image(name):
    gt = np.random.default_rng(2).uniform(0.5, 4.0, (64, 96)).astype(np.float32)
    lr = get_degradation(name)(gt, 4, np.random.default_rng(3))
    assert lr.shape == (16, 24) and lr.dtype == np.float32
    assert np.isfinite(lr).any()
    again = get_degradation(name)(gt, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(lr, again)  # deterministic under a seed


def test_unknown_degradation_lists_the_known_ones():
    with pytest.raises(KeyError, match="tof"):
        get_degradation("nope")
