"""The ONNX file shipped beside a weights file: found and checked without torch (`ship.py` writes it).

`<name>.onnx` beside `<name>.safetensors` is the network of exactly those weights exported with
dynamic height and width (opset 17), so ONNX Runtime runs it at any resolution with no torch
installed. The model card binds the three files: `sha256` is the weights', `onnx_sha256` the
ONNX file's. `save_weights` clears `onnx_sha256`, so new weights never run with an old graph.

`ship.py` writes the file (it needs torch); regenerate every shipped ONNX file and its card digest
(after re-training or re-shipping weights) with:

    depth-sr export-onnx --ship            # needs torch: pip install -e ".[torch]"
"""

from __future__ import annotations

import logging
from pathlib import Path

from depth_sr_ros.models.card import WEIGHTS_SUFFIX, card_path, read_card, sha256_file

LOG = logging.getLogger(__name__)

ONNX_SUFFIX = ".onnx"


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
