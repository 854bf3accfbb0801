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
from dataclasses import dataclass
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
# `auto`'s speed bar: the card's FPS for 640x480 output through ONNX Runtime on one CPU thread, as
# `depth-sr bench` measured it (written into the card, with the command and the machine, by
# `depth-sr models --record-fps BENCH.json`).
SPEED_METRIC = "fps_640x480_onnxruntime_1thread"
MIN_AUTO_FPS = 10.0
AUTO_RULE = (f"per scale, the shipped network with the lowest {RANK_METRIC} among those whose card records at least "
             f"{MIN_AUTO_FPS:g} FPS for 640x480 through ONNX Runtime on one CPU thread ({SPEED_METRIC}, measured by "
             "depth-sr bench) and that need no foundation weights; none: bicubic at x2, guided_filter above")
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


def _figure(card: ModelCard, key: str) -> float | None:
    value = card.metrics.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _rank(card: ModelCard) -> float:
    value = _figure(card, RANK_METRIC)
    return math.inf if value is None else value


@dataclass(frozen=True)
class AutoChoice:
    """What `backbone: auto` runs at one scale and why (`AUTO_RULE`).

    weights: the chosen weights file, None for the classic fallback; reason: the choice in words;
    passed_over: one line per other shipped weights file of the scale, saying why it lost."""

    scale: int
    backbone: str
    weights: Path | None
    reason: str
    passed_over: tuple[str, ...] = ()

    @property
    def fallback(self) -> bool:
        return self.weights is None


def _ineligible(card: ModelCard, path: Path) -> str:
    """Why `auto` may not pick these weights, or "" when it may."""
    fps = _figure(card, SPEED_METRIC)
    if card.second_pass_for:
        return "takes another network's second pass in the colour camera (second_pass_for)"
    if card.foundation:
        return f"needs foundation weights ({', '.join(card.foundation)})"
    if _figure(card, RANK_METRIC) is None:
        return f"no {RANK_METRIC} in its card"
    if fps is None:
        return f"no {SPEED_METRIC} in its card (depth-sr bench, then depth-sr models --record-fps)"
    if fps < MIN_AUTO_FPS:
        return f"{fps:.1f} FPS, under {MIN_AUTO_FPS:g}"
    if not has_torch_weights() and verified_onnx(path) is None:
        return "cannot run here: no torch and no verified ONNX file beside it"
    return ""


def auto_choice(scale: int) -> AutoChoice:
    """`AUTO_RULE` applied to the shipped weights of `scale`, read from their cards alone."""
    eligible, passed = [], []
    for card, path in shipped_weights():
        if card.scale != scale:
            continue
        why = _ineligible(card, path)
        if why:
            passed.append(f"{path.name}: {why}")
        else:
            eligible.append((card, path))
    if not eligible:
        name = FALLBACK_BACKBONES.get(scale, FALLBACK_BACKBONE)
        missing = f"no shipped model for x{scale} qualifies" if passed else f"no trained model for x{scale}"
        return AutoChoice(scale, name, None, f"{missing}: classic fallback {name}", tuple(passed))
    eligible.sort(key=lambda item: _rank(item[0]))
    card, path = eligible[0]
    for other, other_path in eligible[1:]:
        passed.append(f"{other_path.name}: {RANK_METRIC} {_rank(other):.4g}, above {_rank(card):.4g}")
    reason = (f"lowest {RANK_METRIC} ({_rank(card):.4g}) among the x{scale} networks at >= {MIN_AUTO_FPS:g} FPS "
              f"({_figure(card, SPEED_METRIC):.1f} FPS)")
    return AutoChoice(scale, card.backbone, path, reason, tuple(passed))


def find_weights(backbone: str, scale: int) -> Path | None:
    """The shipped weights for (backbone, scale) with the lowest validation RMSE, or None (weights
    made for a second pass, `ModelCard.second_pass_for`, are not for a sensor's input)."""
    matches = [(card, path) for card, path in shipped_weights()
               if (card.backbone, card.scale) == (backbone, scale) and not card.second_pass_for]
    if not matches:
        return None
    return min(matches, key=lambda item: _rank(item[0]))[1]


def second_pass_choice(choice: str, backbone: str, scale: int, weights: str | Path | None) -> str | Path | None:
    """`SRConfig.second_pass_weights` (`choice`: "auto", "same" or a weights file) resolved for the
    network (backbone, scale, `weights`; None = its shipped weights): the weights of its second
    pass's own network, or None when the second pass runs the network itself."""
    if choice == "same":
        return None
    if choice != "auto":
        return choice
    first = weights if weights is not None else find_weights(backbone, scale)
    return second_pass_weights(first) if first is not None else None


def second_pass_weights(weights: str | Path) -> Path | None:
    """The shipped weights made for the second pass in the colour camera of `weights` (their card's
    `second_pass_for` is the sha256 of `weights`), that can run here (torch, or their verified ONNX
    file); None when there are none, or `weights` have no readable card to match (loading them
    says why): the second pass then runs `weights` themselves."""
    try:
        first = read_card(weights)
    except WeightsError:
        return None
    for card, path in shipped_weights():
        if (card.second_pass_for == first.sha256 and (card.backbone, card.scale) == (first.backbone, first.scale)
                and (has_torch_weights() or verified_onnx(path) is not None)):
            return path
    return None


def default_backbone(scale: int) -> tuple[str, Path | None]:
    """What `backbone: auto` runs at `scale` (`auto_choice`, `AUTO_RULE`): the most accurate shipped
    network that holds `MIN_AUTO_FPS` and can run here (in torch where the `[torch]` extra is
    installed, else through its shipped ONNX file), as (backbone, weights path); else the classic
    fallback for the scale (`bicubic` at x2, `guided_filter` above) and None."""
    choice = auto_choice(scale)
    return choice.backbone, choice.weights


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
