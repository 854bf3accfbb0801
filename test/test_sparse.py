"""Normalised convolution on sparse depth: exactness, RGB guidance at edges, the registered backbone."""

from __future__ import annotations

import numpy as np
import pytest

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.sparse import NormalizedConvConfig, densify, normalized_convolution


def _rings(shape: tuple[int, int], spacing: int) -> np.ndarray:
    """A LiDAR-like sample pattern: every `spacing`-th row, every other column."""
    valid = np.zeros(shape, dtype=bool)
    valid[spacing // 2 :: spacing, ::2] = True
    return valid


def _edge_scene(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Left of column 30: a dark wall at 1 m; right: a bright box at 3 m."""
    depth = np.where(np.arange(w)[None, :] < 30, 1.0, 3.0).astype(np.float32).repeat(h, 0)
    rgb = np.where(depth[..., None] < 2, 40, 220).astype(np.uint8).repeat(3, axis=2)
    return depth, rgb


def test_a_slanted_plane_is_reproduced_from_ring_samples() -> None:
    rows, cols = np.mgrid[0:48, 0:64].astype(np.float32)
    plane = 2.0 + 0.01 * rows + 0.005 * cols
    valid = _rings(plane.shape, 4)
    dense = densify(np.where(valid, plane, np.nan), valid)
    assert np.isfinite(dense).all()
    np.testing.assert_array_equal(dense[valid], plane[valid])
    # a plane is reproduced up to the border's one-sided weighting: within 2 cm inside
    np.testing.assert_allclose(dense[4:-4, 4:-4], plane[4:-4, 4:-4], atol=0.02)


def test_rgb_guidance_keeps_depth_edges_where_plain_convolution_blurs_them() -> None:
    depth, rgb = _edge_scene()
    valid = _rings(depth.shape, 6)
    sparse = np.where(valid, depth, np.nan)
    guided = densify(sparse, valid, rgb, NormalizedConvConfig(sigma_range=0.1))
    plain = densify(sparse, valid, None)
    band = slice(26, 34)  # columns around the edge
    guided_error = np.abs(guided[:, band] - depth[:, band]).mean()
    plain_error = np.abs(plain[:, band] - depth[:, band]).mean()
    assert guided_error < 0.5 * plain_error
    assert guided_error < 0.1


def test_coarser_scales_only_where_finer_ones_lack_samples() -> None:
    valid = np.zeros((32, 32), dtype=bool)
    valid[16, 16] = True
    depth = np.where(valid, 5.0, np.nan).astype(np.float32)
    out = normalized_convolution(depth, valid.astype(np.float32), (1.0, 4.0), min_certainty=0.5)
    # one sample: its own pixel has full certainty at sigma 1, the far corner only at sigma 4
    assert out[16, 16] == pytest.approx(5.0)
    assert out[0, 0] == pytest.approx(5.0)
    empty = normalized_convolution(depth, np.zeros((32, 32), np.float32), (1.0, 4.0), min_certainty=0.5)
    assert np.isnan(empty).all()


def test_normalized_conv_backbone_through_the_pipeline_with_sparse_input() -> None:
    assert get_backbone("normalized_conv").kind == "classic"
    depth_hr, rgb = _edge_scene(96, 128)
    depth_lr = depth_hr[1::4, 1::4].copy()
    depth_lr[~_rings(depth_lr.shape, 3)] = np.nan  # 1 row in 3 measured
    pipeline = DepthSR(SRConfig(scale=4, backbone="normalized_conv", max_hole_radius=2))
    result = pipeline.process(rgb, depth_lr)
    assert result.depth.shape == (96, 128)
    finite = np.isfinite(result.depth)
    assert finite.mean() > 0.9
    error = np.abs(result.depth - depth_hr)[finite]
    assert np.median(error) < 0.01
    assert np.mean(error > 0.5) < 0.02  # few pixels take the wrong side of the edge


@pytest.mark.parametrize("guided", [True, False])
def test_upsampler_uses_only_measured_pixels(guided: bool) -> None:
    from depth_sr_ros.core.sparse import NormalizedConvUpsampler

    depth_hr, rgb = _edge_scene(48, 64)
    depth_lr = depth_hr[1::4, 1::4].copy()
    valid = _rings(depth_lr.shape, 2)
    filled = np.where(valid, depth_lr, 100.0).astype(np.float32)  # what a filler put in the holes
    out = NormalizedConvUpsampler(guided=guided).upsample(rgb, filled, valid, 4)
    assert out.shape == (48, 64) and np.isfinite(out).all()
    assert out.min() >= 1.0 - 1e-5 and out.max() <= 3.0 + 1e-5  # the filled 100 m never leaks in
