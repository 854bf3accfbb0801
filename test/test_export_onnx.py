"""ONNX export of every registered network: onnxruntime CPU matches PyTorch (relative L2 < 1e-4).

Each test prints the measured error (`pytest -s` shows it).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import onnx
import torch
from test_models import NETWORKS, SCALES, tiny_depth_anything, tiny_network

from depth_sr_ros.cli import main
from depth_sr_ros.models.export import INPUT_NAMES, example_inputs, export_onnx, is_exportable, set_exportable

ort = pytest.importorskip("onnxruntime")
TOLERANCE = 1e-4


def onnx_error(path, model: torch.nn.Module, height: int, width: int, scale: int, seed: int = 1) -> float:
    """Relative L2 error of onnxruntime (CPU) against PyTorch on a random input of the given size."""
    inputs = example_inputs(height, width, scale, seed=seed)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs)})[0]
    with torch.no_grad():
        want = model(*inputs).numpy()
    assert got.shape == want.shape == (1, 1, height, width)
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("scale", SCALES)
def test_static_export_matches_pytorch(tmp_path, name: str, scale: int) -> None:
    model = tiny_network(name, scale)
    height, width = 3 * 16, 5 * 16
    path = export_onnx(model, tmp_path / f"{name}.onnx", height, width, scale)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == list(INPUT_NAMES)
    assert [o.name for o in graph.output] == ["depth_hr"]
    dims = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]
    assert dims == [[1, 3, height, width], [1, 1, height // scale, width // scale], [1, 1, height // scale, width // scale]]
    error = onnx_error(path, model, height, width, scale)
    print(f"\n{name} x{scale} static {width}x{height}: onnxruntime vs PyTorch relative L2 error {error:.2e}")
    assert error < TOLERANCE


@pytest.mark.parametrize("name", NETWORKS)
def test_dynamic_export_runs_other_sizes(tmp_path, name: str) -> None:
    scale = 4
    model = tiny_network(name, scale)
    path = export_onnx(model, tmp_path / f"{name}.onnx", 32, 48, scale, dynamic=True)
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[:2] == [1, 3] and all(isinstance(d, str) for d in dims[2:])
    for height, width in ((32, 48), (36, 20), (44, 52)):  # includes sizes that need internal padding
        error = onnx_error(path, model, height, width, scale)
        print(f"\n{name} x{scale} dynamic, run at {width}x{height}: relative L2 error {error:.2e}")
        assert error < TOLERANCE


def test_export_with_depth_anything_guide(tmp_path) -> None:
    model = tiny_network("nafnet_adain", 4, depth_anything=tiny_depth_anything())
    path = export_onnx(model, tmp_path / "n.onnx", 48, 64, 4)
    error = onnx_error(path, model, 48, 64, 4)
    print(f"\nnafnet_adain x4 + Depth Anything guide, static 64x48: relative L2 error {error:.2e}")
    assert error < TOLERANCE


def test_newer_opset(tmp_path) -> None:
    model = tiny_network("nafnet_adain", 2)
    path = export_onnx(model, tmp_path / "n.onnx", 32, 32, 2, opset=18)
    assert onnx.load(str(path)).opset_import[0].version == 18
    assert onnx_error(path, model, 32, 32, 2) < TOLERANCE
    with pytest.raises(ValueError, match="opset 13 is too old"):
        export_onnx(model, tmp_path / "old.onnx", 32, 32, 2, opset=13)


def test_export_leaves_the_switch_off(tmp_path) -> None:
    model = tiny_network("nafnet_adain", 2)
    with set_exportable(False):
        export_onnx(model, tmp_path / "n.onnx", 16, 16, 2)
        assert not is_exportable()
    with pytest.raises(ValueError, match="divisible by the scale"):
        export_onnx(model, tmp_path / "n.onnx", 18, 16, 4)


def test_export_command_prints_a_summary(tmp_path, capsys) -> None:
    from depth_sr_ros.tools import export_onnx as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    out = tmp_path / "lite.onnx"
    args = parser.parse_args(["--backbone", "lite", "--scale", "4", "--untrained", "--height", "32",
                              "--width", "48", "--out", str(out), "--dynamic"])
    assert command.run(args) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "dynamic shapes" in text and "relative L2 error" in text
    rel_error = float(text.split("relative L2 error ")[1].split()[0])
    assert rel_error < TOLERANCE


def test_export_command_without_weights_says_what_to_do(tmp_path, capsys, monkeypatch) -> None:
    from depth_sr_ros.models import zoo

    monkeypatch.setattr(zoo, "model_dirs", list)
    assert main(["export-onnx", "--backbone", "nafnet_adain", "--scale", "4", "--height", "32", "--width", "48",
                 "--out", str(tmp_path / "x.onnx")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("depth-sr export-onnx: error: no weights for nafnet_adain x4")
