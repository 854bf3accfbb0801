"""Each degradation's statistics (metres, NaN = invalid)."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="the sensor models run on the optional torch extra: pip install -e '.[torch]'")

from depth_sr_ros.eval.protocol import protocol_bicubic_downsample
from depth_sr_ros.train.degradations import (
    BiasScale,
    Downsample,
    FilledHoles,
    FlyingPixels,
    GaussianNoise,
    Misregister,
    MultipathBias,
    ProportionalNoise,
    Quantize,
    RandomHoles,
    RandomPoints,
    ScanRings,
    StructuredHoles,
    ToFNoise,
)
from depth_sr_ros.train.sensor_presets import DEGRADATIONS, get_degradation


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
    lr = Downsample("area")(gt, 2, rng())
    assert lr.shape == (2, 2)
    assert lr[0, 0] == pytest.approx(np.mean([1, 4, 5]))
    assert lr[1, 1] == pytest.approx(np.mean([10, 11, 14, 15]))


def test_downsample_nearest_takes_block_centre_and_bicubic_is_the_protocol():
    gt = np.random.default_rng(1).uniform(1, 3, (16, 24)).astype(np.float32)
    np.testing.assert_array_equal(Downsample("nearest")(gt, 4, rng()), gt[2::4, 2::4])
    for scale, shape in ((4, (16, 24)), (8, (384, 512)), (16, (384, 512))):
        big = np.random.default_rng(scale).uniform(0, 255, shape).astype(np.float32)
        # torch's antialiased bicubic is PIL's, borders included, to float32 precision
        np.testing.assert_allclose(Downsample("bicubic")(big, scale, rng()), protocol_bicubic_downsample(big, scale),
                                   rtol=0, atol=1e-4)


def test_downsample_bicubic_keeps_fully_invalid_blocks_invalid():
    gt = flat(shape=(16, 16))
    gt[:4, :4] = np.nan
    lr = Downsample("bicubic")(gt, 4, rng())
    assert np.isnan(lr[0, 0]) and np.isfinite(lr[1:, :]).all()
    assert np.nanmax(np.abs(lr - 2.0)) < 1e-5


def test_gaussian_noise_has_the_given_sigma():
    lr = GaussianNoise(0.01)(flat(), 1, rng())
    assert np.mean(lr) == pytest.approx(2.0, abs=1e-3)
    assert np.std(lr) == pytest.approx(0.01, rel=0.05)


def test_proportional_noise_grows_with_depth():
    for depth, power in ((1.0, 1.0), (4.0, 1.0), (4.0, 2.0)):
        lr = ProportionalNoise(rel=0.01, power=power)(flat(depth), 1, rng())
        assert np.std(lr) == pytest.approx(0.01 * depth**power, rel=0.05)


def test_random_holes_drop_the_given_fraction():
    lr = RandomHoles(0.1)(flat(), 1, rng())
    assert np.isnan(lr).mean() == pytest.approx(0.1, abs=0.01)
    assert np.all(lr[np.isfinite(lr)] == 2.0)


def test_structured_holes_cover_about_the_given_area_in_blobs():
    lr = StructuredHoles(count=2, area_fraction=0.1)(flat(), 1, rng())
    holes = np.isnan(lr)
    assert 0.03 < holes.mean() < 0.12
    # Blobs, not speckle: most hole pixels have a hole to their right as well.
    assert (holes[:, :-1] & holes[:, 1:]).sum() > 0.9 * holes[:, :-1].sum()


def test_flying_pixels_appear_only_at_edges_and_between_the_surfaces():
    gt = step_edge()
    lr = FlyingPixels(jump_m=0.5, probability=1.0)(gt.copy(), 1, rng())
    changed = lr != gt
    assert changed.any()
    cols = np.nonzero(changed.any(axis=0))[0]
    assert set(cols) <= {31, 32}
    assert np.all((lr >= 1.0) & (lr <= 3.0))


def test_quantize_rounds_to_millimetres():
    lr = Quantize(0.001)(np.array([1.00049, 1.0006, 2.3334], np.float32), 1, rng())
    np.testing.assert_allclose(lr, [1.000, 1.001, 2.333], atol=1e-6)


def test_random_points_keep_the_given_density():
    lr = RandomPoints(0.05)(flat(), 1, rng())
    assert np.isfinite(lr).mean() == pytest.approx(0.05, abs=0.01)


def test_scan_rings_keep_about_one_line_per_ring():
    lr = ScanRings(rings=8, curvature=0.0)(flat(), 1, rng())
    rows = np.nonzero(np.isfinite(lr).any(axis=1))[0]
    assert len(rows) == 8
    assert np.isfinite(lr[rows]).all()


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_every_preset_gives_a_low_resolution_image(name):
    gt = np.random.default_rng(2).uniform(0.5, 4.0, (96, 128)).astype(np.float32)
    lr = get_degradation(name)(gt, 4, np.random.default_rng(3))
    # the sensor's own size: the model grid, or 3/8 of the image for the 8/3-ratio sensors
    assert lr.shape == ((36, 48) if "phone_tof" in name or name == "ratio_8_3" else (24, 32)) and lr.dtype == np.float32
    assert np.isfinite(lr).any()
    again = get_degradation(name)(gt, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(lr, again)  # deterministic under a seed


def ramp_xy(shape=(120, 160)):
    """Two 'depth' images whose values are the pixel's own column and row (+ 10)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return cols + 10, rows + 10


@pytest.mark.parametrize("level", [0.5, 1.0, 2.0, 3.0])
def test_misregistration_displaces_by_the_level_on_average_with_shift_rotation_and_scale(level):
    xs, ys = ramp_xy()
    step = Misregister(level, level)
    inner = (slice(10, -10), slice(10, -10))  # away from the replicated border
    means, rotations = [], []
    for seed in range(10):
        dx = step(xs, 1, np.random.default_rng(seed)) - xs
        dy = step(ys, 1, np.random.default_rng(seed)) - ys
        means.append(np.mean(np.hypot(dx, dy)[inner]))
        # rotation/scale: the displacement varies linearly across the image, not a pure shift
        rotations.append(np.ptp(dx[inner]) + np.ptp(dy[inner]))
    assert np.mean(means) == pytest.approx(level, rel=0.05)
    assert np.all(np.abs(np.array(means) - level) < 0.15 * level)
    assert np.median(rotations) > 0.1 * level


def test_misregistration_level_is_drawn_in_its_range_and_zero_is_identity():
    gt = ramp_xy()[0]
    np.testing.assert_array_equal(Misregister(0, 0)(gt, 1, rng()), gt)
    xs, ys = ramp_xy()
    inner = (slice(10, -10), slice(10, -10))
    levels = []
    for seed in range(25):
        dx = Misregister(0.5, 3.0)(xs, 1, np.random.default_rng(seed)) - xs
        dy = Misregister(0.5, 3.0)(ys, 1, np.random.default_rng(seed)) - ys
        levels.append(np.mean(np.hypot(dx, dy)[inner]))
    assert 0.4 < min(levels) and max(levels) < 3.3 and np.ptp(levels) > 1.5


def test_non_integer_sensor_pitch_gives_the_sensor_size_and_area_means():
    gt = np.full((384, 512), 2.0, np.float32)
    gt[:, 256:] = 1.0
    lr = Downsample("area", pitch=2 / 3)(gt, 4, rng())
    assert lr.shape == (144, 192)  # the RGB-D-D phone ToF
    assert lr.mean() == pytest.approx(gt.mean(), rel=1e-4)
    assert set(np.unique(lr)) >= {1.0, 2.0} and len(np.unique(lr)) <= 3  # one mixed column at the edge
    gt[:8, :8] = np.nan
    assert np.isnan(Downsample("area", pitch=2 / 3)(gt, 4, rng())[:2, :2]).all()


def test_tof_noise_grows_with_the_square_of_depth_and_is_spatially_correlated():
    for depth in (1.0, 3.0):
        lr = ToFNoise(sigma_m=0.004, rel2=0.002, correlation_px=1.0)(flat(depth), 1, rng())
        noise = lr - depth
        assert np.std(noise) == pytest.approx(0.004 + 0.002 * depth**2, rel=0.05)
        assert abs(np.mean(noise)) < 0.05 * np.std(noise)
        lag1 = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
        assert lag1 > 0.5
    white = ToFNoise(correlation_px=0.0)(flat(), 1, rng()) - 2.0
    assert abs(np.corrcoef(white[:, :-1].ravel(), white[:, 1:].ravel())[0, 1]) < 0.05


def test_filled_holes_are_smooth_valid_and_leave_other_pixels_alone():
    rows, cols = np.mgrid[0:100, 0:100].astype(np.float32)
    lr = 1.0 + 0.01 * cols + 0.005 * rows  # a tilted plane
    noisy = lr + np.random.default_rng(5).normal(0, 0.002, lr.shape).astype(np.float32)
    out = FilledHoles(count=2, area_fraction=0.08)(noisy, 1, rng())
    changed = out != noisy
    assert np.isfinite(out).all() and 0.03 < changed.mean() < 0.1
    # inside a filled hole: an interpolation from the rim (within the rim's range, near the
    # plane) and smooth (none of the sensor noise)
    rim = np.zeros_like(changed)
    rim[1:-1, 1:-1] = ~changed[1:-1, 1:-1] & (changed[:-2, 1:-1] | changed[2:, 1:-1] | changed[1:-1, :-2]
                                               | changed[1:-1, 2:])
    assert noisy[rim].min() - 1e-6 <= out[changed].min() and out[changed].max() <= noisy[rim].max() + 1e-6
    assert np.mean(np.abs(out[changed] - lr[changed])) < 0.05
    inner = changed[1:-1, 1:-1] & changed[:-2, 1:-1] & changed[2:, 1:-1] & changed[1:-1, :-2] & changed[1:-1, 2:]
    laplacian = out[:-2, 1:-1] + out[2:, 1:-1] + out[1:-1, :-2] + out[1:-1, 2:] - 4 * out[1:-1, 1:-1]
    measured = noisy[:-2, 1:-1] + noisy[2:, 1:-1] + noisy[1:-1, :-2] + noisy[1:-1, 2:] - 4 * noisy[1:-1, 1:-1]
    assert np.std(laplacian[inner]) < 0.5 * np.std(measured)
    holes = noisy.copy()
    holes[:5] = np.nan  # the sensor's real holes stay holes
    assert np.isnan(FilledHoles()(holes, 1, rng())[:5]).all()


def test_multipath_reads_too_far_at_concave_corners_only():
    cols = np.arange(200, dtype=np.float32)[None, :].repeat(80, axis=0)
    corner = 3.0 - 0.01 * np.abs(cols - 100)  # a room corner: farthest at column 100
    wedge = 2.0 + 0.01 * np.abs(cols - 100)  # a convex edge pointing at the camera
    plane = 2.0 + 0.005 * cols
    step = MultipathBias(strength=1.0, radius_px=8.0, max_bias_m=0.05)
    bias = step(corner, 4, rng()) - corner
    assert bias[:, 100].min() > 0.02  # centimetres at the corner ...
    assert np.abs(bias[:, :60]).max() < 1e-4 and np.abs(bias[:, 140:]).max() < 1e-4  # ... none far away
    assert np.all(bias >= 0) and bias.max() <= 0.05 + 1e-6
    assert np.abs(step(wedge, 4, rng()) - wedge).max() < 1e-4
    assert np.abs(step(plane, 4, rng()) - plane)[:, 30:-30].max() < 1e-4
    edge = step_edge((64, 64)) + 0.0  # an occlusion (3 m behind 1 m) is no corner
    assert np.abs(step(edge, 4, rng()) - edge).max() < 1e-6


def test_bias_and_scale_error_stay_within_their_bounds_and_cover_them():
    gt = np.linspace(0.5, 5.0, 1000, dtype=np.float32)[None]
    fits = []
    for seed in range(200):
        out = BiasScale(max_scale=0.03, max_bias_m=0.02)(gt, 1, np.random.default_rng(seed))
        slope, intercept = np.polyfit(gt[0].astype(np.float64), out[0].astype(np.float64), 1)
        fits.append((slope - 1, intercept))
    scales, biases = np.array(fits).T
    assert np.abs(scales).max() <= 0.03 + 1e-5 and np.abs(biases).max() <= 0.02 + 1e-5
    assert scales.std() == pytest.approx(0.03 / np.sqrt(3), rel=0.15)  # uniform in +-3 %
    assert biases.std() == pytest.approx(0.02 / np.sqrt(3), rel=0.15)


def test_misregistration_level_of_a_preset_is_fixed_on_request():
    real = get_degradation("real_tof", misregistration_px=2.0)
    assert real.name == "real_tof@2px"
    assert [s for s in real.steps if isinstance(s, Misregister)] == [Misregister(2.0, 2.0)]
    with pytest.raises(ValueError, match="no misregistration"):
        get_degradation("tof", misregistration_px=1.0)


def test_every_sample_of_a_batch_draws_its_own_degradation():
    import torch

    from depth_sr_ros.train.degradations import Context

    gt = torch.full((3, 1, 64, 64), 2.0)
    gt[..., 32:] = 1.0
    ctx = Context(4, torch.Generator().manual_seed(0))
    lr = get_degradation("real_tof").apply(gt, ctx)
    assert lr.shape == (3, 1, 16, 16)
    assert not torch.equal(torch.nan_to_num(lr[0]), torch.nan_to_num(lr[1]))
    again = get_degradation("real_tof").apply(gt, Context(4, torch.Generator().manual_seed(0)))
    assert torch.equal(torch.nan_to_num(lr), torch.nan_to_num(again))


def test_unknown_degradation_lists_the_known_ones():
    with pytest.raises(KeyError, match="tof"):
        get_degradation("nope")
