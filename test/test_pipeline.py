"""DepthSR: shapes, resampling, hole policy, depth range, bad input, and the network branch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import depth_sr_ros.backends as backends_module
import depth_sr_ros.models.weights as weights_module
import depth_sr_ros.models.zoo as zoo_module
from depth_sr_ros.core.backbones import load_backbones
from depth_sr_ros.core.classic import BicubicUpsampler
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.pipeline import DepthSR, SRConfig

TIMING_KEYS = {"preprocess", "network", "postprocess"}


def _frame(rgb_hw, depth_hw, seed=0, lo=1.0, hi=5.0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(*rgb_hw, 3), dtype=np.uint8)
    depth = (lo + (hi - lo) * rng.random(depth_hw)).astype(np.float32)
    return rgb, depth


def _pipeline(backbone="guided_filter", **kwargs) -> DepthSR:
    return DepthSR(SRConfig(backbone=backbone, **kwargs))


def test_config_defaults_are_the_documented_ones():
    cfg = SRConfig()
    assert (cfg.scale, cfg.backbone, cfg.weights, cfg.inference_backend, cfg.precision, cfg.device) == (
        4, "auto", None, "auto", "fp32", "cpu")
    assert (cfg.min_depth, cfg.max_depth, cfg.max_hole_radius, cfg.aspect_tolerance) == (0.1, 20.0, 2, 0.03)
    with pytest.raises(ValueError):
        SRConfig(min_depth=5.0, max_depth=1.0)
    with pytest.raises(ValueError, match="precision"):
        SRConfig(precision="int8")


@pytest.mark.parametrize("backbone", ["bicubic", "guided_filter", "joint_bilateral"])
def test_vga_rgb_with_qqvga_depth_at_x4(backbone):
    pipeline = _pipeline(backbone)
    assert pipeline.backbone_name == backbone and pipeline.scale == 4
    rgb, depth = _frame((480, 640), (120, 160))
    result = pipeline.process(rgb, depth)
    assert result.depth.shape == (480, 640) and result.depth.dtype == np.float32
    assert set(result.timings_ms) == TIMING_KEYS and all(v >= 0 for v in result.timings_ms.values())
    assert np.isfinite(result.depth).mean() > 0.99  # only bicubic overshoot past the range can be NaN


def test_grid_sized_depth_goes_to_the_backbone_unchanged():
    rgb, depth = _frame((96, 128), (24, 32))
    out = _pipeline("bicubic", min_depth=0.01, max_depth=100.0).process(rgb, depth).depth
    expected = BicubicUpsampler().upsample(rgb, depth, np.ones(depth.shape, bool), 4)
    np.testing.assert_array_equal(out, expected)


def test_phone_tof_at_a_non_integer_ratio_is_resampled_to_the_grid():
    """144x192 ToF beside 384x512 RGB at x2: a ratio of 2.67, resampled to a 192x256 grid."""
    rgb, _ = _frame((384, 512), (1, 1))
    depth = np.full((144, 192), 2.0, np.float32)
    depth[:, 96:] = 4.0  # a depth step in the middle of the image
    out = _pipeline("bicubic", scale=2).process(rgb, depth).depth
    assert out.shape == (384, 512)
    # Nearest resampling keeps the step where it was: no depth of a third surface appears away from it.
    assert np.allclose(out[:, :240], 2.0) and np.allclose(out[:, 272:], 4.0)


def test_rgb_not_a_multiple_of_the_scale():
    rgb, depth = _frame((375, 500), (94, 125))
    result = _pipeline("joint_bilateral").process(rgb, depth)
    assert result.depth.shape == (375, 500) and np.isfinite(result.depth).all()


def test_nan_inf_and_nonpositive_depth_never_reach_the_output():
    rgb, _ = _frame((64, 64), (1, 1))
    depth = np.full((16, 16), 2.0, np.float32)
    depth[3, 3], depth[8, 10], depth[12, 2], depth[5, 13] = np.nan, np.inf, -1.0, 0.0
    for backbone in ("bicubic", "guided_filter", "joint_bilateral"):
        out = _pipeline(backbone).process(rgb, depth).depth
        np.testing.assert_allclose(out, 2.0, rtol=1e-5)  # isolated holes: filled from their neighbours


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf, 0.0, 25.0])
def test_all_invalid_depth_is_a_frame_error(fill):
    rgb, _ = _frame((32, 32), (1, 1))
    with pytest.raises(FrameError) as info:
        _pipeline().process(rgb, np.full((8, 8), fill, np.float32))
    assert info.value.reason == "all_invalid_depth"


@pytest.mark.parametrize(
    ("rgb", "depth", "reason"),
    [
        (np.zeros((32, 32), np.uint8), np.ones((8, 8), np.float32), "bad_shape"),
        (np.zeros((32, 32, 4), np.uint8), np.ones((8, 8), np.float32), "bad_shape"),
        (np.zeros((32, 32, 3), np.uint8), np.ones((8, 8, 1), np.float32), "bad_shape"),
        (np.zeros((32, 32, 3), np.uint8), np.ones((0, 8), np.float32), "bad_shape"),
        (np.zeros((32, 32, 3), np.float32), np.ones((8, 8), np.float32), "bad_dtype"),
        (np.zeros((32, 32, 3), np.uint8), np.ones((8, 8), np.uint16), "bad_dtype"),
        (np.zeros((32, 32, 3), np.uint8), np.ones((8, 12), np.float32), "aspect_mismatch"),
    ],
)
def test_bad_input_raises_frame_error_with_reason(rgb, depth, reason):
    with pytest.raises(FrameError) as info:
        _pipeline().process(rgb, depth)
    assert info.value.reason == reason


def test_float64_depth_is_accepted():
    rgb, depth = _frame((32, 32), (8, 8))
    assert _pipeline().process(rgb, depth.astype(np.float64)).depth.dtype == np.float32


@pytest.mark.parametrize("radius", [0, 2])
def test_hole_policy_fills_small_holes_and_blanks_large_ones(radius):
    rgb, _ = _frame((160, 160), (1, 1))
    depth = np.full((40, 40), 3.0, np.float32)
    depth[5:7, 5:7] = np.nan  # small hole: every pixel 1 px from valid depth
    depth[15:30, 12:30] = np.nan  # large hole
    out = _pipeline("bicubic", max_hole_radius=radius).process(rgb, depth).depth
    # Expected: NaN over every low-res pixel farther than `radius` from valid depth (brute force).
    ys, xs = np.nonzero(np.isfinite(depth))
    rows, cols = np.mgrid[:40, :40]
    dist = np.sqrt(((rows[..., None] - ys) ** 2 + (cols[..., None] - xs) ** 2).min(axis=-1))
    expected_nan = np.kron(dist > radius, np.ones((4, 4))).astype(bool)
    np.testing.assert_array_equal(np.isnan(out), expected_nan)
    np.testing.assert_allclose(out[~expected_nan], 3.0, rtol=1e-5)
    assert np.isnan(out[22 * 4, 20 * 4])  # the middle of the large hole is never filled


def test_depth_range_masks_input_and_output():
    rgb, _ = _frame((64, 64), (1, 1))
    depth = np.full((16, 16), 2.0, np.float32)
    depth[6, 6] = 50.0  # beyond max_depth: invalid input, filled like a hole, not spread around
    out = _pipeline("guided_filter", max_depth=20.0).process(rgb, depth).depth
    np.testing.assert_allclose(out, 2.0, rtol=1e-5)
    # A step from min_depth to 5 m: bicubic undershoots below min_depth there, and those become NaN.
    depth = np.full((16, 16), 5.0, np.float32)
    depth[:, :8] = 0.1
    out = _pipeline("bicubic", min_depth=0.1, max_depth=20.0).process(rgb, depth).depth
    finite = out[np.isfinite(out)]
    assert np.isnan(out).any() and finite.min() >= 0.1 and finite.max() <= 20.0
    assert np.isfinite(out[:, :24]).all() and np.isfinite(out[:, 40:]).all()  # far from the step


# --- the network branch, with a nearest-neighbour stand-in network and a minimal backend ---
class NearestNet:
    """forward(rgb, depth, mask) -> depth upsampled by nearest neighbour, plus `offset` (numpy, NCHW)."""

    def __init__(self, scale: int, offset: float = 0.0) -> None:
        self.scale = scale
        self.offset = np.float32(offset)

    def eval(self) -> NearestNet:
        return self

    def __call__(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.repeat(np.repeat(depth, self.scale, axis=2), self.scale, axis=3) + self.offset
        assert out.shape[-2:] == rgb.shape[-2:]
        return out


class RecordingBackend:
    """The `run(rgb, depth, mask) -> np.ndarray` contract of depth_sr_ros.backends, recording its inputs."""

    def __init__(self, model: NearestNet) -> None:
        self.model = model
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def run(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls.append((rgb, depth, mask))
        return self.model(rgb, depth, mask)


@pytest.fixture
def network_name() -> str:
    registry = load_backbones()
    return next(name for name in registry if registry.get(name).kind == "network")


@pytest.fixture
def fake_network(monkeypatch):
    """Patch load_network/create_backend; returns a dict that records what they were given."""
    seen: dict = {"offset": 0.0}

    def load_network(backbone, scale, weights=None):
        seen.update(backbone=backbone, scale=scale, weights=weights)
        return NearestNet(scale, seen["offset"]).eval()

    def create_backend(name, model, config, onnx_path=None):
        seen.update(backend=name, config=config, onnx_path=onnx_path, instance=RecordingBackend(model))
        return seen["instance"]

    monkeypatch.setattr(weights_module, "load_network", load_network)
    monkeypatch.setattr(backends_module, "create_backend", create_backend)
    return seen


def test_network_branch_follows_the_backend_contract(fake_network, network_name):
    pipeline = _pipeline(network_name, inference_backend="torch", precision="fp16", device="cpu",
                         engine_cache_dir="/tmp/engines")
    assert fake_network["backend"] == "torch" and fake_network["scale"] == 4
    assert fake_network["config"].precision == "fp16" and fake_network["config"].device == "cpu"
    rgb, depth = _frame((60, 80), (15, 20))
    depth[3, 4] = np.nan
    result = pipeline.process(rgb, depth)
    assert set(result.timings_ms) == TIMING_KEYS

    (rgb_in, depth_in, mask_in), = fake_network["instance"].calls
    for array, shape in ((rgb_in, (1, 3, 60, 80)), (depth_in, (1, 1, 15, 20)), (mask_in, (1, 1, 15, 20))):
        assert array.shape == shape and array.dtype == np.float32 and array.flags.c_contiguous
    assert 0.0 <= rgb_in.min() and rgb_in.max() <= 1.0
    np.testing.assert_allclose(rgb_in[0].transpose(1, 2, 0) * 255.0, rgb, atol=1e-3)
    assert np.isfinite(depth_in).all() and depth_in.min() == 0.0 and depth_in.max() == 1.0
    assert mask_in[0, 0, 3, 4] == 0.0 and mask_in.sum() == 15 * 20 - 1

    # Nearest "network": the output repeats the input depth, the hole filled from one of its 4 neighbours.
    hole_block = result.depth[12:16, 16:20]
    assert np.ptp(hole_block) == 0
    assert np.isclose(hole_block[0, 0], [depth[2, 4], depth[4, 4], depth[3, 3], depth[3, 5]], rtol=1e-5).any()
    expected = np.kron(depth, np.ones((4, 4)))
    np.testing.assert_allclose(result.depth[np.isfinite(expected)], expected[np.isfinite(expected)], rtol=1e-5)


def test_network_output_is_clamped_to_the_input_range(fake_network, network_name):
    fake_network["offset"] = 0.5  # pushes half the normalised output past 1
    rgb, depth = _frame((32, 32), (8, 8))
    out = _pipeline(network_name).process(rgb, depth).depth
    assert out.max() == pytest.approx(float(depth.max()))
    assert out.min() == pytest.approx(float(depth.min()) + 0.5 * float(depth.max() - depth.min()), rel=1e-5)


def test_auto_backbone_asks_the_zoo(fake_network, network_name, monkeypatch):
    monkeypatch.setattr(zoo_module, "default_backbone", lambda scale: ("guided_filter", None))
    assert _pipeline("auto", scale=8).backbone_name == "guided_filter"
    shipped = Path("models/shipped_x4.safetensors")
    monkeypatch.setattr(zoo_module, "default_backbone", lambda scale: (network_name, shipped))
    pipeline = _pipeline("auto")
    assert pipeline.backbone_name == network_name and fake_network["weights"] == shipped
    _pipeline("auto", weights="mine.safetensors")
    assert fake_network["weights"] == "mine.safetensors"


def test_network_branch_with_the_real_torch_backend(monkeypatch, network_name):
    torch = pytest.importorskip("torch", reason="the torch backend needs the optional torch extra")

    class TorchNearest(torch.nn.Module):
        def __init__(self, scale: int) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, rgb, depth, mask):
            return torch.nn.functional.interpolate(depth, scale_factor=self.scale, mode="nearest")

    monkeypatch.setattr(weights_module, "load_network", lambda backbone, scale, weights=None: TorchNearest(scale).eval())
    rgb, depth = _frame((32, 48), (8, 12))
    out = _pipeline(network_name, inference_backend="torch", device="cpu").process(rgb, depth).depth
    np.testing.assert_allclose(out, np.kron(depth, np.ones((4, 4))), rtol=1e-5)


def test_the_second_pass_runs_its_own_network_when_there_is_one(fake_network, network_name, monkeypatch):
    def load_network(backbone, scale, weights=None):
        return NearestNet(scale, 0.25 if weights == "second.safetensors" else 0.0).eval()

    monkeypatch.setattr(weights_module, "load_network", load_network)
    rgb, depth = _frame((60, 80), (15, 20))
    own = _pipeline(network_name, weights="first.safetensors", second_pass_weights="second.safetensors")
    same = _pipeline(network_name, weights="first.safetensors", second_pass_weights="same")
    assert own.second_pass_weights == "second.safetensors" and same.second_pass_weights is None
    first = own.process(rgb, depth).depth
    np.testing.assert_array_equal(first, same.process(rgb, depth).depth)
    np.testing.assert_array_equal(same.process(rgb, depth, second_pass=True).depth, first)
    second = own.process(rgb, depth, second_pass=True).depth
    span = np.nanmax(depth) - np.nanmin(depth)  # the offset is added to the normalised output, then clamped to 1
    lifted = (second - first)[np.isfinite(first)]
    assert (lifted >= 0).all() and np.isclose(np.median(lifted), 0.25 * span, rtol=1e-4)


def test_a_classic_backbone_has_no_second_pass_network():
    pipeline = _pipeline("bicubic", second_pass_weights="second.safetensors")
    assert pipeline.second_pass_weights is None and pipeline.second_pass_upsampler is pipeline.upsampler
