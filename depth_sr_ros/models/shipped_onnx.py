"""The ONNX file shipped beside a weights file: found and checked without torch, written with it.

`<name>.onnx` beside `<name>.safetensors` is the network of exactly those weights exported with
dynamic height and width (opset 17), so ONNX Runtime runs it at any resolution with no torch
installed. The model card binds the three files: `sha256` is the weights', `onnx_sha256` the
ONNX file's. `save_weights` clears `onnx_sha256`, so new weights never run with an old graph.

Regenerate every shipped ONNX file and its card digest (after re-training or re-shipping weights):

    depth-sr export-onnx --ship            # needs torch: pip install -e ".[torch]"
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from depth_sr_ros.models.weights import WEIGHTS_SUFFIX, card_path, read_card, sha256_file

LOG = logging.getLogger(__name__)

ONNX_SUFFIX = ".onnx"
SHIP_OPSET = 17
TRACE_SIZE = (480, 640)  # output size traced for the export; divisible by every scale (2-16)
PARITY_LR_SIZE = (31, 41)  # checked after export besides the traced size: an odd low-res size, any scale
PARITY_MAX_ABS = 1e-4  # normalised depth, ONNX Runtime CPU vs torch


def onnx_path(weights: str | Path) -> Path:
    """`x.safetensors` -> `x.onnx` (the shipped graph lives beside the weights)."""
    weights = Path(weights)
    return weights.with_name(weights.name.removesuffix(WEIGHTS_SUFFIX) + ONNX_SUFFIX)


def verified_onnx(weights: str | Path) -> Path | None:
    """The shipped ONNX file of `weights` when it exists and its card vouches for it and for the
    weights (both sha256 digests match), else None; a file that is there but does not match is
    logged with the command that regenerates it."""
    path = onnx_path(weights)
    if not path.is_file():
        return None
    card = read_card(weights)
    problem = ""
    if not card.onnx_sha256:
        problem = f"{card_path(weights).name} records no onnx_sha256"
    elif sha256_file(path) != card.onnx_sha256:
        problem = f"its sha256 differs from onnx_sha256 in {card_path(weights).name}"
    elif sha256_file(weights) != card.sha256:
        problem = f"{Path(weights).name} differs from the sha256 in its card"
    if problem:
        LOG.warning("ignoring %s: %s; regenerate it with `depth-sr export-onnx --ship`", path, problem)
        return None
    return path


def ship_onnx(weights: str | Path, opset: int = SHIP_OPSET) -> tuple[Path, float]:
    """Export `weights` (its card's backbone and scale) to `onnx_path(weights)` with dynamic height
    and width, check ONNX Runtime against torch at `TRACE_SIZE` and at `PARITY_LR_SIZE` low-res pixels, and record the file's sha256
    in the card. Returns (path, max absolute parity error). Needs torch, onnx and onnxruntime."""
    from depth_sr_ros.models.export import compare_onnxruntime, export_onnx
    from depth_sr_ros.models.weights import load_network

    weights = Path(weights)
    card = read_card(weights)
    model = load_network(card.backbone, card.scale, weights)
    path = onnx_path(weights)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.onnx")
    try:
        export_onnx(model, partial, *TRACE_SIZE, scale=card.scale, dynamic=True, opset=opset)
        sizes = (TRACE_SIZE, (PARITY_LR_SIZE[0] * card.scale, PARITY_LR_SIZE[1] * card.scale))
        error = max(compare_onnxruntime(model, partial, height, width, card.scale)[0] for height, width in sizes)
        if not error <= PARITY_MAX_ABS:
            raise RuntimeError(f"{card.backbone} x{card.scale}: ONNX Runtime differs from torch by {error:.2e} "
                               f"(> {PARITY_MAX_ABS:.0e}); not shipped")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    card = dataclasses.replace(card, onnx_sha256=sha256_file(path))
    card_path(weights).write_text(card.to_json(), encoding="utf-8")
    return path, error

