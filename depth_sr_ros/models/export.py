"""ONNX export of network backbones, and the `set_exportable` switch for ONNX-safe code paths.

`set_exportable(True)` (timm style) makes the model code take operations that export cleanly:
plain matmul + softmax instead of `scaled_dot_product_attention`, and unconditional padding
(no shape-dependent branches). `export_onnx` turns it on while tracing.

Graph interface (what backends and TensorRT see):
    inputs  rgb      1 x 3 x H x W        float32 in [0, 1]
            depth    1 x 1 x H/s x W/s    float32 normalised depth, holes filled
            mask     1 x 1 x H/s x W/s    float32, 1 = valid input pixel
    output  depth_hr 1 x 1 x H x W        float32 normalised depth
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

LOG = logging.getLogger(__name__)

INPUT_NAMES = ("rgb", "depth", "mask")
OUTPUT_NAMES = ("depth_hr",)

_EXPORTABLE = False


def is_exportable() -> bool:
    """True while the model code must take its ONNX-safe paths."""
    return _EXPORTABLE


@contextlib.contextmanager
def set_exportable(enable: bool = True) -> Iterator[None]:
    """Context manager: take ONNX-safe code paths inside the block, restore the old setting after."""
    global _EXPORTABLE
    previous = _EXPORTABLE
    _EXPORTABLE = enable
    try:
        yield
    finally:
        _EXPORTABLE = previous


def example_inputs(height: int, width: int, scale: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random (rgb, depth, mask) of the graph's shapes; `height`, `width` are the output size."""
    if height % scale or width % scale:
        raise ValueError(f"output size {height}x{width} must be divisible by the scale {scale}")
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(1, 3, height, width, generator=generator)
    depth = torch.rand(1, 1, height // scale, width // scale, generator=generator)
    mask = (torch.rand(1, 1, height // scale, width // scale, generator=generator) > 0.1).float()
    return rgb, depth, mask


def export_onnx(
    model: nn.Module,
    out: str | Path,
    height: int,
    width: int,
    scale: int,
    dynamic: bool = False,
    opset: int = 17,
) -> Path:
    """Export `model` (a network backbone) to ONNX at output size `height x width` and check it.

    Static shapes by default (what TensorRT builds fastest); `dynamic=True` makes H, W (and the
    low-resolution h, w) symbolic. Uses the TorchScript-based exporter of `torch.onnx.export`
    (`dynamo=False`): it writes any opset from 17 on, exports our networks in about a second and
    handles the internal padding with dynamic shapes; the dynamo exporter emits opset 18 only
    (its down-conversion of Pad to 17 fails) and takes ~30x longer. The result is verified with
    `onnx.checker.check_model(full_check=True)`. Returns the written path.
    """
    import onnx

    if opset < 17:
        raise ValueError(f"opset {opset} is too old; use 17 or later")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    inputs = example_inputs(height, width, scale)
    dynamic_axes = None
    if dynamic:
        hr, lr = {2: "height", 3: "width"}, {2: "lr_height", 3: "lr_width"}
        dynamic_axes = {"rgb": hr, "depth": lr, "mask": lr, "depth_hr": hr}
    with set_exportable(True), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape checks that are constant per export
        torch.onnx.export(
            model,
            inputs,
            str(out),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )
    onnx.checker.check_model(str(out), full_check=True)
    LOG.info("exported %s (%dx%d, x%d, opset %d, %s shapes)", out, height, width, scale, opset,
             "dynamic" if dynamic else "static")
    return out


def compare_onnxruntime(model: nn.Module, path: str | Path, height: int, width: int, scale: int) -> tuple[float, float]:
    """(max absolute error, relative L2 error) of ONNX Runtime (CPU) against `model` in torch on one
    random input of output size `height x width`; (inf, inf) when the output shapes differ."""
    import numpy as np
    import onnxruntime as ort

    inputs = example_inputs(height, width, scale, seed=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs, strict=True)})[0]
    with torch.no_grad():
        want = model(*inputs).numpy()
    if got.shape != want.shape:
        return float("inf"), float("inf")
    diff = got.astype(np.float64) - want
    return float(np.abs(diff).max()), float(np.linalg.norm(diff) / max(float(np.linalg.norm(want)), 1e-12))
