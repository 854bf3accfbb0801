"""Classic backbones: registry, shapes, guided filter and JBU against loop references, real data."""

from __future__ import annotations

import numpy as np
import pytest

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.core.classic import (
    BicubicUpsampler,
    GuidedFilterUpsampler,
    JointBilateralUpsampler,
    grey_guide,
    guided_filter,
)
from depth_sr_ros.core.resample import pil_resize
from depth_sr_ros.eval.protocol import gdsr_frame, make_input
from depth_sr_ros.train.datasets import FolderDataset, describe_folder, parse_scenes

CLASSIC = ("bicubic", "guided_filter", "joint_bilateral")


def _random_frame(h: int, w: int, scale: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(h * scale, w * scale, 3), dtype=np.uint8)
    depth = (1.0 + 4.0 * rng.random((h, w))).astype(np.float32)
    return rgb, depth, np.ones((h, w), bool)


@pytest.mark.parametrize("name", CLASSIC)
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_classic_backbones_are_registered_and_give_rgb_sized_float32(name, scale):
    spec = get_backbone(name)
    assert spec.kind == "classic"
    upsampler = spec.factory(**spec.defaults)
    rgb, depth, valid = _random_frame(5, 7, scale)
    out = upsampler.upsample(rgb, depth, valid, scale)
    assert out.shape == (5 * scale, 7 * scale) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_bicubic_is_pil_bicubic():
    rgb, depth, valid = _random_frame(6, 8, 4)
    np.testing.assert_array_equal(BicubicUpsampler().upsample(rgb, depth, valid, 4), pil_resize(depth, (32, 24)))


# --- guided filter against a direct per-pixel implementation ---
def _loop_guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. Algorithm 1 written pixel by pixel, float64, windows truncated at the border."""
    h, w = src.shape
    colour = guide.ndim == 3
    a = np.zeros((h, w, 3) if colour else (h, w))
    b = np.zeros((h, w))

    def window(y: int, x: int) -> tuple[slice, slice]:
        return slice(max(y - radius, 0), y + radius + 1), slice(max(x - radius, 0), x + radius + 1)

    for y in range(h):
        for x in range(w):
            win = window(y, x)
            p = src[win].ravel()
            if colour:
                i = guide[win].reshape(-1, 3)
                mu = i.mean(axis=0)
                sigma = (i - mu).T @ (i - mu) / len(p)
                cov = ((i - mu) * (p - p.mean())[:, None]).mean(axis=0)
                a[y, x] = np.linalg.solve(sigma + eps * np.eye(3), cov)
                b[y, x] = p.mean() - a[y, x] @ mu
            else:
                i = guide[win].ravel()
                a[y, x] = ((i * p).mean() - i.mean() * p.mean()) / (i.var() + eps)
                b[y, x] = p.mean() - a[y, x] * i.mean()
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            win = window(y, x)
            mean_a = a[win].reshape(-1, 3).mean(axis=0) if colour else a[win].mean()
            out[y, x] = (mean_a @ guide[y, x] if colour else mean_a * guide[y, x]) + b[win].mean()
    return out


@pytest.mark.parametrize(("radius", "eps"), [(1, 3e-5), (2, 1e-4), (3, 1e-2)])
def test_guided_filter_matches_direct_implementation(radius, eps):
    rng = np.random.default_rng(radius)
    grey = rng.random((9, 11))
    colour = rng.random((9, 11, 3))
    src = np.clip(grey + 0.1 * rng.standard_normal((9, 11)), 0, 1)
    np.testing.assert_allclose(guided_filter(grey, src, radius, eps), _loop_guided_filter(grey, src, radius, eps),
                               atol=2e-4)
    np.testing.assert_allclose(guided_filter(colour, src, radius, eps),
                               _loop_guided_filter(colour, src, radius, eps), atol=1e-8)


def test_guided_filter_upsampler_is_unit_agnostic():
    rgb, depth, valid = _random_frame(6, 8, 4, seed=3)
    upsampler = GuidedFilterUpsampler()
    metres = upsampler.upsample(rgb, depth, valid, 4)
    millimetres = upsampler.upsample(rgb, depth * 1000.0, valid, 4)
    np.testing.assert_allclose(millimetres / 1000.0, metres, rtol=1e-5)


def test_guided_filter_defaults_per_scale():
    upsampler = GuidedFilterUpsampler()
    assert upsampler.parameters(4) == (1, 3e-5)
    assert upsampler.parameters(8) == (2, 1e-4)
    assert upsampler.parameters(16) == (5, 1e-4)
    assert GuidedFilterUpsampler(radius=3, eps=0.5).parameters(4) == (3, 0.5)


def test_grey_guide_is_bt601_luma():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    np.testing.assert_allclose(grey_guide(rgb)[0], [0.299, 0.587, 0.114, 1.0], atol=2.5 / 255)


# --- joint bilateral upsampling ---
def _loop_jbu(rgb, depth, valid, scale, up: JointBilateralUpsampler) -> np.ndarray:
    """The documented JBU definition, one high-res pixel and one neighbour at a time."""
    h, w = depth.shape
    guide = rgb.astype(np.float64) / 255.0
    guide_lr = guide.reshape(h, scale, w, scale, 3).mean(axis=(1, 3))
    out = np.zeros((h * scale, w * scale))
    for y in range(h * scale):
        for x in range(w * scale):
            i, j = y // scale, x // scale
            py, px = (y + 0.5) / scale - 0.5, (x + 0.5) / scale - 0.5  # centre on the low-res grid
            num = den = 0.0
            for dy in range(-up.radius, up.radius + 1):
                for dx in range(-up.radius, up.radius + 1):
                    qy, qx = np.clip(i + dy, 0, h - 1), np.clip(j + dx, 0, w - 1)
                    spatial = np.exp(-0.5 * (((i + dy - py) ** 2 + (j + dx - px) ** 2) / up.sigma_spatial**2))
                    d2 = np.sum((guide[y, x] - guide_lr[qy, qx]) ** 2)
                    rng_w = np.exp(max(-0.5 * d2 / up.sigma_range**2, -60.0))
                    conf = 1.0 if valid[qy, qx] else up.hole_weight
                    num += spatial * rng_w * conf * depth[qy, qx]
                    den += spatial * rng_w * conf
            out[y, x] = num / den
    return out


@pytest.mark.parametrize("upsampler", [JointBilateralUpsampler(), JointBilateralUpsampler(2, 1.0, 0.2, 0.01)])
def test_jbu_matches_direct_implementation(upsampler):
    rgb, depth, valid = _random_frame(4, 5, 3, seed=4)
    valid[1, 2] = valid[3, 0] = False
    out = upsampler.upsample(rgb, depth, valid, 3)
    np.testing.assert_allclose(out, _loop_jbu(rgb, depth, valid, 3, upsampler), rtol=1e-4)


def _step_edge_scene(edge_col: int, scale: int = 4):
    """A near (1 m) red surface left of `edge_col`, a far (3 m) blue one right of it."""
    height, width = 4 * scale, 8 * scale
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:, :edge_col] = (200, 60, 50)
    rgb[:, edge_col:] = (30, 40, 190)
    gt = np.where(np.arange(width) < edge_col, 1.0, 3.0)[None].repeat(height, 0).astype(np.float32)
    depth_lr = gt.reshape(4, scale, 8, scale).mean(axis=(1, 3))  # each low-res pixel: its footprint's mean
    return rgb, gt, depth_lr


@pytest.mark.parametrize("edge_col", [12, 13, 14])
def test_jbu_keeps_the_edge_where_the_colour_has_it(edge_col):
    rgb, gt, depth_lr = _step_edge_scene(edge_col)
    valid = np.ones(depth_lr.shape, bool)
    jbu = JointBilateralUpsampler().upsample(rgb, depth_lr, valid, 4)
    bicubic = BicubicUpsampler().upsample(rgb, depth_lr, valid, 4)
    # Within a sixth of the 2 m step of its own surface everywhere; bicubic smears across the edge.
    assert np.abs(jbu - gt).max() < 2.0 / 6
    assert np.abs(bicubic - gt).max() > 2.0 / 4
    assert np.abs(jbu - gt).mean() < 0.5 * np.abs(bicubic - gt).mean()


def test_jbu_ignores_filled_holes_next_to_measured_depth():
    rgb = np.full((8, 8, 3), 128, np.uint8)
    depth = np.full((2, 2), 2.0, np.float32)
    depth[0, 0] = 9.0  # a filled hole with a wrong value
    valid = np.array([[False, True], [True, True]])
    out = JointBilateralUpsampler().upsample(rgb, depth, valid, 4)
    assert np.abs(out - 2.0).max() < 0.05


def test_jbu_needs_rgb_at_exactly_scale_times_depth():
    rgb, depth, valid = _random_frame(4, 5, 4)
    with pytest.raises(ValueError, match="joint_bilateral needs RGB"):
        JointBilateralUpsampler().upsample(rgb[:-1], depth, valid, 4)


# --- real data: the gdsr protocol on Middlebury (PROTOCOL.md), through the shipped evaluator ---
def _protocol_rmse(middlebury, upsampler, scale: int) -> float:
    dataset = FolderDataset(describe_folder(middlebury, parse_scenes("15-20")))
    assert len(dataset) == 6
    return float(np.mean([
        gdsr_frame(upsampler.upsample, frame, make_input(frame, scale), scale)[1]
        for frame in (dataset[i] for i in range(len(dataset)))
    ]))


@pytest.mark.parametrize("scale", [4, 8])
def test_guided_filter_beats_bicubic_on_middlebury(scale, shared_data):
    rmse = {
        name: _protocol_rmse(shared_data / "middlebury", up, scale)
        for name, up in (("bicubic", BicubicUpsampler()), ("guided_filter", GuidedFilterUpsampler()),
                         ("joint_bilateral", JointBilateralUpsampler()))
    }
    print(f"\nMiddlebury scenes 15-20, gdsr protocol, x{scale}, mean RMSE (0-255): "
          + ", ".join(f"{name} {value:.3f}" for name, value in rmse.items()))
    assert rmse["guided_filter"] < rmse["bicubic"]
