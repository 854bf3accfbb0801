"""The ONNX files shipped beside the weights: their cards vouch for them, they are the weights'
network (parity with torch, and `depth-sr export-onnx --ship` regenerates them byte for byte),
and networks run from them through ONNX Runtime without torch.

The torch-free checks run in every install; parity and regeneration need the torch extra.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_sr_ros import optional
from depth_sr_ros.backends import BackendUnavailableError
from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.models import zoo
from depth_sr_ros.models.ship import PARITY_LR_SIZE, ship_onnx
from depth_sr_ros.models.shipped_onnx import onnx_path, verified_onnx
from depth_sr_ros.models.weights import card_path, read_card, sha256_file
from depth_sr_ros.optional import TORCH_INSTALL, MissingExtra

SHIPPED = sorted(path for path in zoo.REPO_MODELS.glob("*.safetensors") if not read_card(path).foundation)
LITE_SCALES = (2, 4, 8, 16)


def copy_shipped(name: str, to: Path) -> Path:
    """The weights, card and ONNX file of shipped `name` (e.g. "lite_x4") copied into `to`."""
    for suffix in (".safetensors", ".card.json", ".onnx"):
        shutil.copy(zoo.REPO_MODELS / f"{name}{suffix}", to / f"{name}{suffix}")
    return to / f"{name}.safetensors"


def test_every_foundation_free_network_ships_an_onnx_file_its_card_vouches_for():
    assert {(read_card(p).backbone, read_card(p).scale) for p in SHIPPED} >= {("lite", s) for s in LITE_SCALES}
    for weights in SHIPPED:
        card = read_card(weights)
        assert onnx_path(weights).is_file(), f"{weights.name}: run `depth-sr export-onnx --ship`"
        assert card.onnx_sha256 == sha256_file(onnx_path(weights)), f"{weights.name}: run `depth-sr export-onnx --ship`"
        assert card.sha256 == sha256_file(weights)
        assert verified_onnx(weights) == onnx_path(weights)


@pytest.mark.parametrize("damage", ["onnx_bytes", "card_digest", "weights_bytes", "no_onnx"])
def test_an_onnx_file_that_does_not_match_its_card_is_not_used(tmp_path, caplog, damage):
    weights = copy_shipped("lite_x4", tmp_path)
    if damage == "onnx_bytes":
        data = bytearray(onnx_path(weights).read_bytes())
        data[len(data) // 2] ^= 0xFF
        onnx_path(weights).write_bytes(bytes(data))
    elif damage == "card_digest":  # what `save_weights` leaves after new weights: no digest
        card_path(weights).write_text(card_path(weights).read_text().replace(read_card(weights).onnx_sha256, ""))
    elif damage == "weights_bytes":
        weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    else:
        onnx_path(weights).unlink()
    with caplog.at_level(logging.WARNING):
        assert verified_onnx(weights) is None
    if damage != "no_onnx":
        assert "depth-sr export-onnx --ship" in caplog.text


def hide_modules(monkeypatch, *names: str) -> None:
    """Behave as an install without `names` ("torch", "safetensors"): `depth_sr_ros.optional`
    answers that they are not installed, so no torch network is loaded and no torch backend runs."""
    installed = optional.has_module
    monkeypatch.setattr(optional, "has_module", lambda name: name not in names and installed(name))


@pytest.fixture(params=[("torch", "safetensors"), ("safetensors",)], ids=["no_torch", "torch_without_safetensors"])
def without_torch_weights(request, monkeypatch):
    """An install without torch, or with a system torch but without safetensors (no [torch] extra)."""
    def no_network(*args, **kwargs):
        raise AssertionError("a torch network was loaded on an install without the torch extra")

    hide_modules(monkeypatch, *request.param)
    monkeypatch.setattr("depth_sr_ros.models.weights.load_network", no_network)
    return request.param


def _frame(scale: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(scale)
    h, w = PARITY_LR_SIZE
    rgb = rng.integers(0, 256, (h * scale, w * scale, 3), dtype=np.uint8)
    depth = (1.0 + 3.0 * rng.random((h, w))).astype(np.float32)
    return rgb, depth


@pytest.mark.parametrize("scale", LITE_SCALES)
def test_auto_runs_lite_from_its_shipped_onnx_without_torch(without_torch_weights, scale):
    sr = DepthSR(SRConfig(scale=scale, backbone="auto", device="cpu"))
    assert sr.backbone_name == "lite"
    assert sr.upsampler.backend.onnx_path == zoo.REPO_MODELS / f"lite_x{scale}.onnx"
    rgb, depth = _frame(scale)
    out = sr.process(rgb, depth).depth
    assert sr.upsampler.backend.describe() == "onnxruntime[CPUExecutionProvider]"
    assert out.shape == rgb.shape[:2] and np.isfinite(out).mean() > 0.99
    assert np.nanmin(out) >= depth.min() - 1e-4 and np.nanmax(out) <= depth.max() + 1e-4


def test_a_named_torch_backend_without_the_extra_is_refused_naming_it(without_torch_weights):
    """Refused when the pipeline is built (the node's configure fails before anything else is set up)."""
    with pytest.raises(BackendUnavailableError, match=r"no torch network loaded .*pip install 'depth_sr_ros\[torch\]'"):
        DepthSR(SRConfig(scale=4, backbone="lite", inference_backend="torch", device="cpu"))
    assert DepthSR(SRConfig(scale=4, backbone="lite", inference_backend="onnxruntime")).upsampler.backend.onnx_path


@pytest.mark.parametrize(("installed", "named", "label"), [((), "torch", "PyTorch"), (("torch",), "safetensors", "safetensors")])
def test_without_the_extra_or_onnx_a_network_says_what_to_install(tmp_path, monkeypatch, installed, named, label):
    """No torch, or a system torch without safetensors (faked: the error comes before torch is imported)."""
    weights = copy_shipped("lite_x4", tmp_path)
    onnx_path(weights).unlink()  # e.g. weights trained by the user: no ONNX file beside them
    monkeypatch.setattr(optional, "has_module", lambda name: name in installed)
    with pytest.raises(MissingExtra, match=rf"needs {label}, which is not installed: pip install 'depth_sr_ros\[torch\]'") as err:
        DepthSR(SRConfig(backbone="lite", weights=str(weights)))
    assert err.value.name == named and "lite x4" in str(err.value)
    assert isinstance(err.value, ModuleNotFoundError) and isinstance(err.value, UsageError)


def test_building_a_network_without_torch_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "depth_sr_ros.models.lite", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as it does without torch
    with pytest.raises(ModuleNotFoundError, match=r"building the network 'lite' needs PyTorch.*pip install"):
        get_backbone("lite").factory(scale=4)


@pytest.mark.parametrize("scale", LITE_SCALES)
def test_shipped_onnx_matches_the_safetensors_network(scale):
    pytest.importorskip("torch", reason="the parity check needs the optional torch extra")
    from depth_sr_ros.models.export import compare_onnxruntime
    from depth_sr_ros.models.weights import load_network

    model = load_network("lite", scale, zoo.REPO_MODELS / f"lite_x{scale}.safetensors")
    for height, width in ((480, 640), (PARITY_LR_SIZE[0] * scale, PARITY_LR_SIZE[1] * scale)):
        max_abs, rel_l2 = compare_onnxruntime(model, zoo.REPO_MODELS / f"lite_x{scale}.onnx", height, width, scale)
        assert max_abs < 1e-4 and rel_l2 < 1e-5, (height, width, max_abs, rel_l2)


def test_ship_regenerates_the_committed_file_byte_for_byte(tmp_path):
    pytest.importorskip("torch", reason="exporting needs the optional torch extra")
    weights = copy_shipped("lite_x4", tmp_path)
    committed = sha256_file(onnx_path(weights))
    onnx_path(weights).unlink()
    card_path(weights).write_text(card_path(weights).read_text().replace(committed, ""))
    path, error = ship_onnx(weights)
    assert path == onnx_path(weights) and error < 1e-4
    assert sha256_file(path) == committed == read_card(weights).onnx_sha256
    assert verified_onnx(weights) == path


def test_new_weights_clear_the_onnx_digest(tmp_path):
    pytest.importorskip("torch", reason="saving weights needs the optional torch extra")
    from depth_sr_ros.models.weights import load_network, save_weights

    weights = copy_shipped("lite_x4", tmp_path)
    model = load_network("lite", 4, weights)
    save_weights(model, weights, read_card(weights))
    assert read_card(weights).onnx_sha256 == ""
    assert verified_onnx(weights) is None  # the old ONNX file is never run with the new weights


HIDDEN_CLI = """
import sys

class Hide:  # every import finder answers "not installed" for the hidden packages, as on a machine without them
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        return None if name.split(".")[0] in {hidden!r} else self.finder.find_spec(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
from depth_sr_ros.cli import main
sys.exit(main(sys.argv[1:]))
"""


def depth_sr_without(hidden: set[str], *argv: str) -> subprocess.CompletedProcess:
    """`depth-sr ARGV` in a fresh interpreter where the `hidden` packages cannot be imported."""
    return subprocess.run([sys.executable, "-c", HIDDEN_CLI.format(hidden=hidden), *argv], capture_output=True,
                          text=True, timeout=600, check=False, cwd=Path(__file__).resolve().parents[1])


def test_a_system_torch_without_the_extra_runs_the_demo_and_names_the_extra_for_training(tmp_path):
    """The robot install of issue 20: torch installed first, the package without extras (no safetensors)."""
    pytest.importorskip("torch", reason="a system torch without safetensors: needs torch installed")
    demo = depth_sr_without({"safetensors"}, "demo", "--out", str(tmp_path / "demo"), "--no-progress")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "onnxruntime runs lite_x4.onnx" in demo.stderr and "Traceback" not in demo.stderr
    assert json.loads((tmp_path / "demo" / "metrics.json").read_text())["pairs_processed"] == 3
    train = depth_sr_without({"safetensors"}, "train", "--config", "config/train/ci_smoke.yaml",
                             "--out", str(tmp_path / "train"))
    assert train.returncode == 2 and "Traceback" not in train.stderr
    assert train.stderr.strip().splitlines()[-1] == (
        "depth-sr train: error: depth-sr train (it writes safetensors weights) needs safetensors, which is not "
        f"installed: {TORCH_INSTALL}")
    assert not (tmp_path / "train").exists()  # stopped before anything was written
