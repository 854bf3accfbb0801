"""Where shipped weights live, and which backbone to use when the user names none.

Weights (`<name>.safetensors` + `<name>.card.json`, see `weights.py`) are searched, in order, in:
  1. every directory in `$DEPTH_SR_MODELS` (os.pathsep-separated),
  2. the repository's `models/` directory next to the package (source checkouts, `pip install -e`),
  3. `<sys.prefix>/share/depth_sr_ros/models` (pip install of the package's data files),
  4. `<prefix>/share/depth_sr_ros/models` for the prefix the package is installed under
     (`<prefix>/lib/pythonX.Y/site-packages/depth_sr_ros`: a colcon install, found even without a
     sourced workspace),
  5. `<ament share>/depth_sr_ros/models` when `ament_index_python` is importable (colcon install).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

from depth_sr_ros.models.card import CARD_SUFFIX, WEIGHTS_SUFFIX, ModelCard, WeightsError, read_card
from depth_sr_ros.models.shipped_onnx import verified_onnx
from depth_sr_ros.optional import has_torch_weights

LOG = logging.getLogger(__name__)

PACKAGE = "depth_sr_ros"
# Without shipped weights: the classic backbone that scored best on Middlebury 01-20 (gdsr protocol,
# docs/pipeline.md). At x2 no guided filter setting beat plain bicubic (1.26 vs 1.12 RMSE).
FALLBACK_BACKBONES = {2: "bicubic"}
FALLBACK_BACKBONE = "guided_filter"
RANK_METRIC = "val_rmse"
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"  # the weights shipped in the repository


def _ament_models_dir() -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE)) / "models"
    except (PackageNotFoundError, OSError):  # OSError: no ROS environment sourced (AMENT_PREFIX_PATH unset)
        return None


def model_dirs() -> list[Path]:
    """Existing weight directories, in search order, without duplicates."""
    candidates = [Path(p) for p in os.environ.get("DEPTH_SR_MODELS", "").split(os.pathsep) if p]
    candidates.append(REPO_MODELS)
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "models")
    package = Path(__file__).resolve().parents[1]
    if package.parent.name in ("site-packages", "dist-packages"):  # <prefix>/lib/pythonX.Y/site-packages
        candidates.append(package.parents[3] / "share" / PACKAGE / "models")
    ament = _ament_models_dir()
    if ament is not None:
        candidates.append(ament)
    seen: list[Path] = []
    for directory in candidates:
        if directory.is_dir() and directory.resolve() not in seen:
            seen.append(directory.resolve())
    return seen


def shipped_weights() -> list[tuple[ModelCard, Path]]:
    """Every (card, weights path) found in `model_dirs()`; unreadable cards are logged and skipped."""
    found = []
    for directory in model_dirs():
        for card_file in sorted(directory.glob(f"*{CARD_SUFFIX}")):
            weights = card_file.with_name(card_file.name.removesuffix(CARD_SUFFIX) + WEIGHTS_SUFFIX)
            if not weights.is_file():
                LOG.warning("model card %s has no weights file %s; skipped", card_file, weights.name)
                continue
            try:
                found.append((read_card(weights), weights))
            except WeightsError as exc:
                LOG.warning("skipping %s: %s", card_file, exc)
    return found


def _rank(card: ModelCard) -> float:
    value = card.metrics.get(RANK_METRIC)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def find_weights(backbone: str, scale: int) -> Path | None:
    """The shipped weights for (backbone, scale) with the lowest validation RMSE, or None."""
    matches = [(card, path) for card, path in shipped_weights() if (card.backbone, card.scale) == (backbone, scale)]
    if not matches:
        return None
    return min(matches, key=lambda item: _rank(item[0]))[1]


def default_backbone(scale: int) -> tuple[str, Path | None]:
    """The best shipped network for `scale` that needs no foundation weights and can run here (in
    torch where the `[torch]` extra is installed, else through its shipped ONNX file), lowest `val_rmse` in its card, as (backbone,
    weights path); else the classic fallback for the scale (`bicubic` at x2, `guided_filter` above)."""
    usable = [(card, path) for card, path in shipped_weights() if card.scale == scale and not card.foundation
              and (has_torch_weights() or verified_onnx(path) is not None)]
    if not usable:
        return FALLBACK_BACKBONES.get(scale, FALLBACK_BACKBONE), None
    card, path = min(usable, key=lambda item: _rank(item[0]))
    return card.backbone, path


def describe_missing(backbone: str, scale: int) -> str:
    """Message for "no shipped weights for (backbone, scale)": what is shipped and what needs none."""
    from depth_sr_ros.core.backbones import load_backbones

    registry = load_backbones()
    classic = [name for name in registry.names() if registry.get(name).kind == "classic"]
    shipped = [f"{card.backbone} x{card.scale} ({path})" for card, path in shipped_weights()]
    return (
        f"no weights for {backbone} x{scale}: pass a *.safetensors file (with its .card.json) or put "
        f"them in one of {[str(d) for d in model_dirs()] or 'the model directories'} / $DEPTH_SR_MODELS. "
        f"Shipped: {', '.join(shipped) or 'none'}. "
        f"Backbones that need no weights: {', '.join(classic) or 'none'}."
    )
