"""What a training run writes: the resume state and the shippable weights with their model card.

The resume state is one file, `OUT/resume.safetensors`, written atomically (a `.partial` file
renamed over the old one), so a run killed at any moment leaves either the previous state or the
new one, never a mix. It holds, as tensors, the network (`model/<name>`), the optimiser's
per-parameter state (`optim/<index>/<key>`: AdamW's step, exp_avg, exp_avg_sq) and the torch
random generators (`rng/cpu`, `rng/cuda`); and, as JSON in the safetensors metadata, the run's
progress (step, training seconds, stretches, loss history), the optimiser's hyper-parameters,
the gradient scaler and the recipe (the config keys that decide the result). Nothing is pickled:
`load_resume` reads tensors and JSON only. `OUT/progress.json` is a readable copy of the
progress. The batch of step `t` depends only on (seed, rank, t) (train/batches.py), so the step
restores the data order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from depth_sr_ros.train.config import TrainConfig

RESUME_FILE = "resume.safetensors"
PROGRESS_FILE = "progress.json"
FORMAT = "depth_sr_ros.train.resume/1"
# config keys that decide a run's result: a resume with other values would not continue the same run
RECIPE_KEYS = ("backbone", "scale", "model", "train", "synthetic_scenes", "synthetic_size", "synthetic_weight",
               "degradations", "range_jitter", "patch", "batch", "steps", "lr", "min_lr", "warmup_steps",
               "weight_decay", "loss", "loss_weight", "seed", "zero_init", "amp")


class ResumeError(ValueError):
    """The resume state cannot continue this run (another recipe, other data, a damaged file)."""


def recipe(config: TrainConfig, world: int) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues (JSON-ready)."""
    values = {key: getattr(config, key) for key in RECIPE_KEYS}
    values["train"] = [dataclasses.asdict(s) for s in config.train]
    values["synthetic_size"] = list(config.synthetic_size)
    values["world_size"] = world
    return json.loads(json.dumps(values))


def data_digest(names: list[str]) -> str:
    """A digest of the training frames in order (their names with source): other data, another order."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


@dataclass
class ResumeState:
    """What `load_resume` gives back: the progress dict and the recipe it was saved with."""

    progress: dict[str, Any]
    recipe: dict[str, Any]


def save_resume(out: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, progress: dict[str, Any], run_recipe: dict[str, Any]) -> Path:
    """Write `out/resume.safetensors` (atomically) and `out/progress.json`; returns the former."""
    from safetensors.torch import save_file

    tensors = {f"model/{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    plain: dict[str, dict[str, Any]] = {}
    for index, entry in optim["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim/{index}/{key}"] = value.detach().cpu().contiguous().clone()
            else:
                plain.setdefault(str(index), {})[key] = value
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    metadata = {
        "format": FORMAT,
        "progress": json.dumps(progress),
        "recipe": json.dumps(run_recipe),
        "param_groups": json.dumps(optim["param_groups"]),
        "optim_plain": json.dumps(plain),
        "scaler": json.dumps(scaler.state_dict()),
    }
    path = out / RESUME_FILE
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)
    readable = out / PROGRESS_FILE
    readable.with_name(readable.name + ".partial").write_text(json.dumps(progress, indent=2))
    os.replace(readable.with_name(readable.name + ".partial"), readable)
    return path


def load_resume(out: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, run_recipe: dict[str, Any]) -> ResumeState:
    """Restore model, optimiser, scaler and random generators from `out/resume.safetensors`;
    ResumeError when the file is damaged or was written by another recipe (naming the keys)."""
    from safetensors import SafetensorError, safe_open

    path = out / RESUME_FILE
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not iterable)
    except (SafetensorError, OSError, ValueError) as err:
        raise ResumeError(f"{path}: unreadable resume state ({err}); delete it to start the run afresh") from None
    if metadata.get("format") != FORMAT:
        raise ResumeError(f"{path}: not a resume state of this trainer (format {metadata.get('format')!r})")
    saved = json.loads(metadata["recipe"])
    changed = sorted(k for k in set(saved) | set(run_recipe) if saved.get(k) != run_recipe.get(k))
    if changed:
        raise ResumeError(f"{path}: the run was started with other {', '.join(changed)}; resume it with the config "
                          "that started it, or train into another --out")
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entry in json.loads(metadata["optim_plain"]).items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    scaler.load_state_dict(json.loads(metadata["scaler"]))
    torch.set_rng_state(tensors["rng/cpu"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return ResumeState(json.loads(metadata["progress"]), saved)
