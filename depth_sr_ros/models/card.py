"""A weights file's model card, read and checked without torch.

`<name>.card.json` beside `<name>.safetensors` says what the weights are (backbone, scale, the
factory config), how they were made and how well they do, and binds the files by their sha256
(see `weights.py` for loading, `shipped_onnx.py` for the ONNX file shipped beside them).
`depth-sr models`, the zoo and the torch-free ONNX path read cards through this module alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depth_sr_ros.core.errors import UsageError

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
    benchmark_test_frames: frames of benchmark test sets among the training data, per data folder
        (`depth_sr_ros.eval.test_frames`: rgbdd_dev = RGB-D-D test frames, nyu_test = NYU v2 test
        frames, middlebury = the Middlebury benchmark scenes), e.g. {"rgbdd_dev": 157}; {} = none;
        None = the card does not say. `depth-sr evaluate` sets no published test-set figure beside
        a model that saw frames of that test set.
    second_pass_for: the sha256 of the weights whose second pass in the colour camera these take
        (`core/sensor_view.py`: fine-tuned on that network's own reprojected output,
        `train/second_pass.py`); "" for a network of the sensor's input. Such weights are never
        picked for a sensor's input (`zoo.find_weights`, `auto`); the pipeline runs them for the
        second pass of the weights they name (`zoo.second_pass_weights`).
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
    benchmark_test_frames: dict[str, int] | None = None
    notes: str = ""
    second_pass_for: str = ""
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
            "second_pass_for": isinstance(card.second_pass_for, str) and len(card.second_pass_for) in (0, 64),
            "benchmark_test_frames": card.benchmark_test_frames is None
            or (isinstance(card.benchmark_test_frames, dict)
                and all(isinstance(v, int) and v >= 0 for v in card.benchmark_test_frames.values())),
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
