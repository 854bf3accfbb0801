"""Our network weights: a safetensors file with a JSON model card beside it.

Layout (see docs/models.md):
    <name>.safetensors   tensors of the network's own parameters and buffers (frozen foundation
                         models are not stored: they load from the user's local files)
    <name>.card.json     `ModelCard` as JSON (`card.py`): backbone, scale, config, training data,
                         evaluation protocol and numbers, sha256 of the safetensors file, ...

Loading never unpickles: tensors come from safetensors only, and the card is checked first
(backbone, scale, sha256), then the network its config describes, built on torch's `meta`
device (shapes, no memory), against every tensor name and shape in the file's header, so a
card asking for a network larger than its file is refused before anything is allocated; only
then are the tensors read and the network built. Problems raise `WeightsError` saying what to do
(`WeightsNotFound`, also a `FileNotFoundError`, for a missing file or card); `depth-sr` prints
them as one line, exit 2. Torch and safetensors (the `[torch]` extra) are needed to load or save;
a missing one is a `MissingExtra` naming the pip command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import reprlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from depth_sr_ros.models import zoo
from depth_sr_ros.models.card import (
    CARD_SUFFIX,
    FOUNDATION_PREFIX,
    WEIGHTS_SUFFIX,
    ModelCard,
    WeightsError,
    WeightsNotFound,
    card_path,
    read_card,
    sha256_file,
)
from depth_sr_ros.models.safetensors_header import Shapes, check_safetensors_header, corrupt, tensor_shapes
from depth_sr_ros.optional import require_torch_weights

if TYPE_CHECKING:  # cards are read without torch (`depth-sr models` stays fast); tensors need it
    import torch
    from torch import nn

__all__ = [  # the card's names too: callers import them from here
    "CARD_SUFFIX", "FOUNDATION_PREFIX", "WEIGHTS_SUFFIX", "ModelCard", "WeightsError", "WeightsNotFound",
    "card_path", "check_safetensors_header", "load_network", "network_state_dict", "read_card", "save_weights",
    "sha256_file",
]
EXTRA_TENSORS = 64  # tensors a build may register beyond the file's (non-persistent buffers) before it is stopped


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
    require_torch_weights("saving weights")
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


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise corrupt(path, str(exc)) from None


def _check_shapes(expected: Shapes, found: Shapes, path: Path) -> None:
    """WeightsError naming every tensor the network (`expected`) and the file (`found`) disagree on."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: file {found[k]} vs network {expected[k]}"
        for k in sorted(set(expected) & set(found))
        if found[k] != expected[k]
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


def _shapes_of(model: nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in network_state_dict(model).items()}


@contextlib.contextmanager
def _registration_limit(limit: int, path: Path) -> Iterator[None]:
    """Stop a network build (this thread's) once it registers more than `limit` tensors or
    4 x `limit` modules: a card's config can ask for millions of blocks, which cost memory and
    time even on the meta device."""
    from torch.nn.modules import module as torch_module

    thread, counts = threading.get_ident(), {"tensors": 0, "modules": 0}

    def count(kind: str, most: int) -> Any:
        def hook(*_: Any) -> None:
            if threading.get_ident() != thread:
                return
            counts[kind] += 1
            if counts[kind] > most:
                raise WeightsError(f"{card_path(path)} asks for a network of more than {most} {kind}; "
                                   f"{path.name} holds {limit - EXTRA_TENSORS} tensors")
        return hook

    handles = [
        torch_module.register_module_parameter_registration_hook(count("tensors", limit)),
        torch_module.register_module_buffer_registration_hook(count("tensors", limit)),
        torch_module.register_module_module_registration_hook(count("modules", 4 * limit)),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _planned_shapes(factory: Any, scale: int, config: dict[str, Any], kwargs: dict[str, Any], path: Path,
                    file_tensors: int) -> Shapes | None:
    """The tensor shapes the network built by `factory(scale=scale, **config, **kwargs)` stores, from
    a build on torch's meta device (no memory); None where that build needs foundation weights
    from the user's files (they load in the real build, which checks the shapes afterwards).

    A config the factory does not take (an unknown key, a value of the wrong type) is a
    WeightsError naming the card."""
    import torch

    from depth_sr_ros.models.foundation import FoundationWeightsMissing

    target = getattr(factory, "target", "")  # a LazyFactory: import its module outside the meta device
    if target:
        importlib.import_module(target.partition(":")[0])
    # Foundation weights the caller names by path would load from disk here: left to the real build.
    meta_kwargs = {**config, **{k: v for k, v in kwargs.items() if not isinstance(v, (str, Path))}}
    try:
        with _registration_limit(file_tensors + EXTRA_TENSORS, path), torch.device("meta"):
            return _shapes_of(factory(scale=scale, **meta_kwargs))
    except FoundationWeightsMissing:
        return None
    except WeightsError:
        raise
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:  # a negative width: RuntimeError
        shown = reprlib.repr(config)  # a hostile card's config can be megabytes long
        raise WeightsError(f"{card_path(path)}: its config {shown} does not build the network ({exc}); a card "
                           "holds the config its weights were saved with (save_weights writes it)") from None


def load_network(backbone: str, scale: int, weights: str | Path | None = None, **kwargs: Any) -> nn.Module:
    """Build `backbone` for `scale` from its card's config, load its weights strictly, eval mode.

    weights: a `*.safetensors` file with its card beside it; None picks the shipped weights for
    (backbone, scale) (see `depth_sr_ros.models.zoo`). kwargs go to the backbone factory on top of
    the card's config, e.g. foundation weight paths (`depth_anything=...`, `dinov2=...`).
    """
    from depth_sr_ros.core.backbones import load_backbones

    require_torch_weights(f"loading the {backbone} x{scale} network from its weights")
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
        tensor_shapes(path)  # a file whose header does not hold gets the "truncated or corrupt" message
        raise WeightsError(
            f"{path} does not match its card: sha256 {digest[:12]}... vs {card.sha256[:12]}... in "
            f"{card_path(path).name}. The file was modified or replaced; re-copy both files together"
        )
    stored = tensor_shapes(path)
    config = {k: v for k, v in card.config.items() if k != "scale"}
    planned = _planned_shapes(spec.factory, scale, config, kwargs, path, len(stored))
    if planned is not None:
        _check_shapes(planned, stored, path)  # before any memory is spent on the network
    tensors = _read_tensors(path)
    model = spec.factory(scale=scale, **{**config, **kwargs})
    _check_shapes(_shapes_of(model), stored, path)
    foundation = {k: v for k, v in model.state_dict().items() if k.startswith(FOUNDATION_PREFIX)}
    model.load_state_dict({**foundation, **tensors}, strict=True)
    return model.eval()
