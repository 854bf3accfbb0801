"""Resampling to the model grid, aspect check, hole fill, hole policy, normalisation, PIL resize."""

from __future__ import annotations

import numpy as np
import pytest

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.resample import (
    EROSION_MAX_RADIUS,
    bicubic_downsample,
    check_aspect,
    denormalise,
    fill_holes,
    grid_shape,
    hole_mask,
    normalise,
    pad_to_multiple,
    pil_resize,
    resample_to_grid,
)


# --- PIL bicubic, re-derived from Pillow's Resample.c (antialiased separable convolution) ---
def _bicubic_kernel(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _resample_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    in_size = image.shape[axis]
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 2.0 * filter_scale
    weights = np.zeros((out_size, in_size))
    for out in range(out_size):
        centre = (out + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        k = _bicubic_kernel((taps - centre + 0.5) / filter_scale)
        weights[out, lo:hi] = k / k.sum()
    return np.moveaxis(np.tensordot(weights, np.moveaxis(image, axis, 0), axes=1), 0, axis)


def reference_bicubic(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return _resample_axis(_resample_axis(image.astype(np.float64), width, 1), height, 0)


@pytest.mark.parametrize(("in_shape", "out_hw"), [((12, 16), (48, 64)), ((40, 36), (10, 9)), ((17, 23), (29, 11))])
def test_pil_resize_matches_antialiased_bicubic(in_shape, out_hw):
    rng = np.random.default_rng(0)
    image = (rng.random(in_shape) * 255).astype(np.float32)
    out = pil_resize(image, (out_hw[1], out_hw[0]))
    assert out.shape == out_hw and out.dtype == np.float32
    np.testing.assert_allclose(out, reference_bicubic(image, out_hw[1], out_hw[0]), atol=1e-4)


def test_pil_resize_rejects_unknown_method_and_non_2d():
    with pytest.raises(ValueError, match="unknown resize method"):
        pil_resize(np.zeros((4, 4), np.float32), (2, 2), "cubic-ish")
    with pytest.raises(ValueError, match="2-D"):
        pil_resize(np.zeros((4, 4, 3), np.float32), (2, 2))


# --- the model grid ---
def test_grid_shape_rounds_up():
    assert grid_shape((480, 640, 3), 4) == (120, 160)
    assert grid_shape((384, 512, 3), 2) == (192, 256)
    assert grid_shape((375, 500), 4) == (94, 125)


def _coordinate_depth(h: int, w: int) -> np.ndarray:
    """Depth that encodes its own pixel: value = row * 1000 + col."""
    rows, cols = np.mgrid[:h, :w]
    return (rows * 1000 + cols).astype(np.float32)


@pytest.mark.parametrize(
    ("depth_hw", "rgb_hw", "scale"),
    [((144, 192), (384, 512), 2), ((300, 400), (480, 640), 4), ((90, 120), (375, 500), 4)],
)
def test_resample_picks_the_input_pixel_holding_each_grid_centre(depth_hw, rgb_hw, scale):
    depth = _coordinate_depth(*depth_hw)
    out = resample_to_grid(depth, rgb_hw, scale)
    assert out.shape == grid_shape(rgb_hw, scale)
    src_row, src_col = np.divmod(out.astype(np.int64), 1000)
    # Grid pixel centres and source footprints, both in RGB pixels.
    centre_y = (np.arange(out.shape[0]) + 0.5) * scale
    centre_x = (np.arange(out.shape[1]) + 0.5) * scale
    pitch_y, pitch_x = rgb_hw[0] / depth_hw[0], rgb_hw[1] / depth_hw[1]
    row_ok = (src_row[:, 0] * pitch_y <= centre_y) & (centre_y < (src_row[:, 0] + 1) * pitch_y)
    col_ok = (src_col[0] * pitch_x <= centre_x) & (centre_x < (src_col[0] + 1) * pitch_x)
    # The last grid row/column may lie in the padding past the image: it takes the edge pixel.
    inside_y = centre_y < rgb_hw[0]
    inside_x = centre_x < rgb_hw[1]
    assert row_ok[inside_y].all() and (src_row[~inside_y] == depth_hw[0] - 1).all()
    assert col_ok[inside_x].all() and (src_col[:, ~inside_x] == depth_hw[1] - 1).all()


def test_resample_never_mixes_depths_and_keeps_nan():
    rng = np.random.default_rng(1)
    depth = rng.choice([1.0, 5.0, np.nan], size=(144, 192)).astype(np.float32)
    out = resample_to_grid(depth, (384, 512), 2)
    assert set(np.unique(out[np.isfinite(out)])) <= {1.0, 5.0}
    assert 0 < np.isnan(out).mean() < 1


def test_resample_is_a_no_op_on_the_grid():
    depth = np.ones((120, 160), np.float32)
    assert resample_to_grid(depth, (480, 640, 3), 4) is depth


def test_pad_to_multiple_repeats_the_edge():
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    padded = pad_to_multiple(rgb, 4)
    assert padded.shape == (8, 8, 3)
    np.testing.assert_array_equal(padded[:5, :7], rgb)
    np.testing.assert_array_equal(padded[7, :7], rgb[4])
    assert pad_to_multiple(padded, 4) is padded


# --- aspect ratio ---
def test_aspect_within_tolerance_passes_and_beyond_raises():
    check_aspect((120, 160), (480, 640, 3), 0.03)
    check_aspect((120, 163), (480, 640, 3), 0.03)  # 1.9 % off
    with pytest.raises(FrameError) as info:
        check_aspect((120, 163), (480, 640, 3), 0.01)
    assert info.value.reason == "aspect_mismatch"
    with pytest.raises(FrameError, match="aspect ratio"):
        check_aspect((120, 213), (480, 640, 3), 0.03)  # 16:9 depth beside 4:3 RGB


# --- hole fill and hole policy ---
def test_fill_holes_takes_the_nearest_valid_depth():
    rng = np.random.default_rng(2)
    for _ in range(20):
        h, w = rng.integers(2, 25, size=2)
        valid = rng.random((h, w)) < rng.uniform(0.05, 0.9)
        valid.flat[rng.integers(valid.size)] = True
        depth = np.where(valid, rng.random((h, w)), np.nan).astype(np.float32)
        filled = fill_holes(depth, valid)
        assert np.isfinite(filled).all()
        np.testing.assert_array_equal(filled[valid], depth[valid])
        ys, xs = np.nonzero(valid)
        rows, cols = np.mgrid[:h, :w]
        dist = np.hypot(rows[..., None] - ys, cols[..., None] - xs)  # h x w x n_valid
        nearest = dist.min(axis=-1)
        # The value must come from a valid pixel at the nearest distance (cv2's 5x5 mask
        # approximates Euclidean distance to within a few percent).
        source_ok = (filled[..., None] == depth[ys, xs]) & (dist <= nearest[..., None] * 1.05 + 1e-6)
        assert source_ok.any(axis=-1).all()


def test_fill_holes_returns_input_when_nothing_is_missing():
    depth = np.ones((4, 5), np.float32)
    assert fill_holes(depth, np.ones((4, 5), bool)) is depth


def test_hole_mask_marks_only_pixels_far_from_valid_depth():
    valid = np.ones((30, 30), bool)
    valid[2:5, 2:5] = False  # small hole: every pixel within 2 px of valid depth
    valid[10:21, 10:21] = False  # 11 x 11 hole: its centre is 6 px from valid depth
    mask = hole_mask(valid, 2)
    assert not mask[2:5, 2:5].any()
    rows, cols = np.mgrid[:30, :30]
    ys, xs = np.nonzero(valid)
    dist = np.hypot(rows[..., None] - ys, cols[..., None] - xs).min(axis=-1)
    np.testing.assert_array_equal(mask, dist > 2)
    assert mask[15, 15] and not mask[10, 15]
    assert not hole_mask(np.ones((3, 3), bool), 0).any()
    np.testing.assert_array_equal(hole_mask(valid, 0), ~valid)


@pytest.mark.parametrize("radius", [1, 3, EROSION_MAX_RADIUS, EROSION_MAX_RADIUS + 1, 12])
def test_hole_mask_is_the_euclidean_distance_rule_on_both_paths(radius):
    """Erosion by a disc (small radii) and distance transform (large) give the same rule,
    including at the image border, where no valid pixel lies beyond the edge."""
    rng = np.random.default_rng(radius)
    valid = rng.random((40, 57)) > 0.5
    valid[5:35, 8:50] = False  # a hole wider than every radius here
    valid[:, :3] = False  # and one on the border
    rows, cols = np.mgrid[:40, :57]
    ys, xs = np.nonzero(valid)
    dist = np.hypot(rows[..., None] - ys, cols[..., None] - xs).min(axis=-1)
    mask = hole_mask(valid, radius)
    assert mask.dtype == bool and mask.shape == valid.shape
    np.testing.assert_array_equal(mask, dist > radius)
    assert mask.any() and not mask.all()


# --- normalisation ---
def test_normalise_uses_valid_range_and_round_trips():
    depth = np.array([[1.0, 3.0], [5.0, 100.0]], np.float32)
    valid = np.array([[True, True], [True, False]])
    norm, lo, hi = normalise(depth, valid)
    assert (lo, hi) == (1.0, 5.0)
    np.testing.assert_allclose(norm[valid], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(denormalise(norm, lo, hi), depth, rtol=1e-6)
    norm, lo, hi = normalise(depth, valid, lo=0.0, hi=10.0)
    np.testing.assert_allclose(norm[0], [0.1, 0.3])


def test_normalise_flat_frame_maps_to_zero():
    depth = np.full((3, 3), 2.5, np.float32)
    norm, lo, hi = normalise(depth, np.ones((3, 3), bool))
    assert np.all(norm == 0) and lo == hi == 2.5
    np.testing.assert_array_equal(denormalise(norm, lo, hi), depth)


def test_bicubic_downsample_is_pil_bicubic_with_holes_filled_and_whole_block_holes_kept() -> None:
    rng = np.random.default_rng(7)
    depth = rng.uniform(1.0, 3.0, (16, 24)).astype(np.float32)
    np.testing.assert_array_equal(bicubic_downsample(depth, 4), pil_resize(depth, (6, 4), "bicubic"))
    holed = depth.copy()
    holed[0:4, 0:4] = np.nan  # one whole 4 x 4 block
    holed[9, 13] = np.inf  # one pixel of another block
    lr = bicubic_downsample(holed, 4)
    assert np.isnan(lr[0, 0]) and np.isfinite(np.delete(lr.reshape(-1), 0)).all()
    filled = fill_holes(np.where(np.isfinite(holed), holed, 0).astype(np.float32), np.isfinite(holed))
    np.testing.assert_array_equal(lr[1:, 1:], pil_resize(filled, (6, 4), "bicubic")[1:, 1:])


def test_bicubic_downsample_pads_to_the_grid_and_gives_nan_without_a_valid_pixel() -> None:
    depth = np.tile(np.linspace(1.0, 2.0, 18, dtype=np.float32), (10, 1))  # 10 x 18: not a multiple of 4
    lr = bicubic_downsample(depth, 4)
    assert lr.shape == grid_shape(depth.shape, 4) == (3, 5)
    padded = np.pad(depth, ((0, 2), (0, 2)), mode="edge")
    np.testing.assert_array_equal(lr, pil_resize(padded, (5, 3), "bicubic"))
    assert np.isnan(bicubic_downsample(np.full((8, 8), np.nan, np.float32), 4)).all()
