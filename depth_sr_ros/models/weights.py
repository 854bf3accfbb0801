"""Our network weights: a safetensors file with a JSON model card beside it.

Layout (see docs/models.md):
    <name>.safetensors   tensors of the network's own parameters and buffers (frozen foundation
                         models are not stored: they load from the user's local files)
    <name>.card.json     `ModelCard` as JSON: backbone, scale, config, training data, evaluation
                         protocol and numbers, sha256 of the safetensors file, ...

Loading never unpickles: tensors come from safetensors only, and the card is checked first
(backbone, scale, sha256), then every tensor name and shape against the network the card's
config builds. Problems raise `WeightsError` saying what to do (`WeightsNotFound`, also a
`FileNotFoundError`, for a missing file or card); `depth-sr` prints them as one line, exit 2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.optional import has_torch, missing_torch

if TYPE_CHECKING:  # cards are read without torch (`depth-sr models` stays fast); tensors need it
    import torch
    from torch import nn

WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".card.json"
CARD_FORMAT = 1
FOUNDATION_PREFIX = "foundation."


class WeightsError(UsageError, ValueError):
    """A weights file or its model card is unusable; the message says why and what to do."""


class WeightsNotFound(WeightsError, FileNotFoundError):
    """A weights file, or the model card beside it, does not exist."""


@dataclass
class ModelCard:
    """What a weights file is, how it was made and how well it does.

    backbone, scale: the registered network and upsampling factor the weights are for.
    config: keyword arguments for the backbone factory (besides `scale`), e.g. width, blocks.
    training_data: data sets and degradation used for training.
    evaluation_protocol: data, crop, units and normalisation of `metrics`.
    metrics: measured numbers, e.g. {"val_rmse": 0.021} (metres unless the protocol says
        otherwise); `val_rmse` is what `zoo.default_backbone` ranks by.
    foundation: foundation weights the network needs at load time ("depth_anything_v2_small",
        "dinov2_vits14"); empty when it runs on its own.
    sha256: hex digest of the safetensors file (filled by `save_weights`).
    onnx_sha256: hex digest of the ONNX file exported from these weights and shipped beside them
        (`<name>.onnx`, dynamic height and width; `depth-sr export-onnx --ship`), "" when none is.
        ONNX Runtime runs that file, without torch, only while this digest matches it.
    parameters: number of stored parameters (filled by `save_weights`).
    trained_on: device of the training run, e.g. "NVIDIA H100 80GB" or "CPU".
    """

    backbone: str
    scale: int
    config: dict[str, Any] = field(default_factory=dict)
    training_data: str = ""
    evaluation_protocol: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    foundation: list[str] = field(default_factory=list)
    sha256: str = ""
    onnx_sha256: str = ""
    parameters: int = 0
    trained_on: str = ""
    notes: str = ""
    format: int = CARD_FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model card") -> ModelCard:
        """Parse and check a card; unknown or missing fields and wrong types are errors."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightsError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise WeightsError(f"{source} must hold a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted({"backbone", "scale", "sha256"} - set(data))
        if unknown or missing:
            raise WeightsError(f"{source}: unknown fields {unknown}, missing fields {missing}")
        if data.get("format", CARD_FORMAT) != CARD_FORMAT:
            raise WeightsError(f"{source} has card format {data['format']}, this version reads {CARD_FORMAT}")
        card = cls(**data)
        checks = {
            "backbone": isinstance(card.backbone, str),
            "scale": isinstance(card.scale, int) and card.scale in (2, 4, 8, 16),
            "config": isinstance(card.config, dict),
            "metrics": isinstance(card.metrics, dict)
            and all(isinstance(v, (int, float)) for v in card.metrics.values()),
            "foundation": isinstance(card.foundation, list),
            "sha256": isinstance(card.sha256, str) and len(card.sha256) == 64,
            "onnx_sha256": isinstance(card.onnx_sha256, str) and len(card.onnx_sha256) in (0, 64),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise WeightsError(f"{source}: invalid value for {', '.join(bad)}")
        return card


def card_path(weights: str | Path) -> Path:
    """`x.safetensors` -> `x.card.json` (the card lives beside the weights)."""
    weights = Path(weights)
    return weights.with_name(weights.name.removesuffix(WEIGHTS_SUFFIX) + CARD_SUFFIX)


def read_card(weights: str | Path) -> ModelCard:
    path = card_path(weights)
    if not path.is_file():
        raise WeightsNotFound(
            f"no model card for {weights}: expected {path} beside it. Weights without a card are not loaded; "
            "save weights with depth_sr_ros.models.weights.save_weights (depth-sr train does), which writes both"
        )
    return ModelCard.from_json(path.read_text(encoding="utf-8"), source=str(path))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def network_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors we store: everything except the frozen foundation model (`model.foundation`)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(FOUNDATION_PREFIX)}


def _config_dict(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    is_instance = dataclasses.is_dataclass(config) and not isinstance(config, type)
    values = dataclasses.asdict(config) if is_instance else dict(config)
    values.pop("scale", None)
    return json.loads(json.dumps(values))  # tuples -> lists, and proves it is JSON-serialisable


def save_weights(model: nn.Module, path: str | Path, card: ModelCard) -> Path:
    """Write `model`'s own tensors to `path` (*.safetensors) and the completed card beside it.

    `card.config` defaults to the model's `config` dataclass (without `scale`); `sha256` and
    `parameters` are filled in. A network holding a foundation model must name it in
    `card.foundation`. Returns the weights path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        raise ValueError(f"weights path must end in {WEIGHTS_SUFFIX}: {path}")
    if any(k.startswith(FOUNDATION_PREFIX) for k in model.state_dict()) and not card.foundation:
        raise WeightsError("the network holds a foundation model: name it in card.foundation")
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in network_state_dict(model).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata={"backbone": card.backbone, "scale": str(card.scale)})
    os.replace(partial, path)
    card = dataclasses.replace(
        card,
        config=card.config or _config_dict(model),
        sha256=sha256_file(path),
        onnx_sha256="",  # new weights: a shipped ONNX of the old ones no longer applies (export-onnx --ship)
        parameters=sum(p.numel() for n, p in model.named_parameters() if not n.startswith(FOUNDATION_PREFIX)),
    )
    card_file = card_path(path)
    partial_card = card_file.with_name(card_file.name + ".partial")
    partial_card.write_text(card.to_json(), encoding="utf-8")
    os.replace(partial_card, card_file)  # a run killed while writing never leaves half a card
    return path


def check_safetensors_header(path: Path) -> None:
    """WeightsError unless `path` starts like a safetensors file (an 8-byte little-endian header
    length, then that many bytes of JSON). Checked before the card, so that a pickled
    `.pt`/`.pth` checkpoint or another file is named for what it is."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        head = stream.read(9)
    length = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) < 9 or not 2 <= length <= size - 8 or head[8:9] != b"{":
        kind = "a zip archive (a torch.save checkpoint?)" if head[:2] == b"PK" else (
            "a pickle (a torch.save checkpoint?)" if head[:1] == b"\x80" else f"{size} bytes of something else")
        raise WeightsError(
            f"{path} is not a safetensors file ({kind}). Weights are loaded from *{WEIGHTS_SUFFIX} files with "
            f"a {CARD_SUFFIX} card only, never unpickled: convert a checkpoint with save_weights "
            "(depth_sr_ros.models.weights)"
        )


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(
            f"{path} is truncated or corrupt ({path.stat().st_size} bytes): {exc}. Copy the file again"
        ) from None


def _check_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    expected = network_state_dict(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{k}: file {tuple(tensors[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if tensors[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("wrong shapes", wrong), ("missing tensors", missing), ("unexpected tensors", unexpected)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{label}: {'; '.join(items[:5])}{more}")
        raise WeightsError(
            f"{path} does not fit the network its card describes ({len(expected)} tensors expected): "
            + " | ".join(parts)
        )


def load_network(backbone: str, scale: int, weights: str | Path | None = None, **kwargs: Any) -> nn.Module:
    """Build `backbone` for `scale` from its card's config, load its weights strictly, eval mode.

    weights: a `*.safetensors` file with its card beside it; None picks the shipped weights for
    (backbone, scale) (see `depth_sr_ros.models.zoo`). kwargs go to the backbone factory on top of
    the card's config, e.g. foundation weight paths (`depth_anything=...`, `dinov2=...`).
    """
    from depth_sr_ros.core.backbones import load_backbones
    from depth_sr_ros.models import zoo

    if not has_torch():
        raise missing_torch(f"loading the {backbone} x{scale} network from its weights")
    spec = load_backbones().get(backbone)
    if spec.kind != "network":
        raise ValueError(f"{backbone!r} is a classic backbone: it has no weights to load")
    if weights is None:
        found = zoo.find_weights(backbone, scale)
        if found is None:
            raise WeightsNotFound(zoo.describe_missing(backbone, scale))
        weights = found
    path = Path(weights).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise WeightsNotFound(f"weights file {path} {what}: give a *{WEIGHTS_SUFFIX} file with its {CARD_SUFFIX} "
                              "card beside it, or leave the weights out for the shipped ones")
    check_safetensors_header(path)
    card = read_card(path)
    if (card.backbone, card.scale) != (backbone, scale):
        raise WeightsError(
            f"{path} holds {card.backbone} x{card.scale} weights (per its card), not {backbone} x{scale}"
        )
    digest = sha256_file(path)
    if digest != card.sha256:
        _read_tensors(path)  # a file that does not parse gets the "truncated or corrupt" message
        raise WeightsError(
            f"{path} does not match its card: sha256 {digest[:12]}... vs {card.sha256[:12]}... in "
            f"{card_path(path).name}. The file was modified or replaced; re-copy both files together"
        )
    tensors = _read_tensors(path)
    config = {k: v for k, v in card.config.items() if k != "scale"}
    model = spec.factory(scale=scale, **{**config, **kwargs})
    _check_tensors(model, tensors, path)
    foundation = {k: v for k, v in model.state_dict().items() if k.startswith(FOUNDATION_PREFIX)}
    model.load_state_dict({**foundation, **tensors}, strict=True)
    return model.eval()
