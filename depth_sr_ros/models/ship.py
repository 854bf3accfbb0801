"""Write the ONNX file shipped beside a weights file (`shipped_onnx.py` finds and checks it).

`ship_onnx(weights)` exports the weights' network with dynamic height and width (opset
`SHIP_OPSET`), checks ONNX Runtime against torch, and records the file's sha256 in the card.
Needs the `[torch]` extra (torch, safetensors, onnx, onnxscript) and onnxruntime:

    depth-sr export-onnx --ship            # every shipped weights file
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from depth_sr_ros.models.card import card_path, read_card, sha256_file
from depth_sr_ros.models.shipped_onnx import onnx_path
from depth_sr_ros.models.weights import load_network

SHIP_OPSET = 17
TRACE_SIZE = (480, 640)  # output size traced for the export; divisible by every scale (2-16)
PARITY_LR_SIZE = (31, 41)  # checked after export besides the traced size: an odd low-res size, any scale
PARITY_MAX_ABS = 1e-4  # normalised depth, ONNX Runtime CPU vs torch


def ship_onnx(weights: str | Path, opset: int = SHIP_OPSET) -> tuple[Path, float]:
    """Export `weights` (its card's backbone and scale) to `onnx_path(weights)` with dynamic height
    and width, check ONNX Runtime against torch at `TRACE_SIZE` and at `PARITY_LR_SIZE` low-res
    pixels, and record the file's sha256 in the card. Returns (path, max absolute parity error). Needs torch, onnx and onnxruntime."""
    from depth_sr_ros.models.export import compare_onnxruntime, export_onnx

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

