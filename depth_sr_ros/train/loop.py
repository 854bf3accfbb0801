"""The training loop behind `depth-sr train --config YAML`.

Random aligned crops of ground-truth frames are flipped/rotated, degraded to low resolution by a
degradation drawn per crop from its source's mix, hole-filled and normalised by the frame's
ground-truth range (train/batches.py: all of it on the training device), and the network learns
to restore the crop. Training stops at `steps` or after `time_budget_s` seconds of training,
whichever comes first (`stop_at`, a wall-clock time, shrinks the budget so that the run ends by
then, whatever its start-up took); the learning rate warms up, then decays (cosine) to `min_lr` at that end,
so the final weights are the ones to ship (`select: last`; `select: best` keeps the checkpoint
with the lowest figure on the first validation set instead). Weights and their model card are
written to `OUT/<backbone>_x<scale>.safetensors` every `checkpoint_every_s` seconds and at the end,
so a run cut short still leaves weights. Validation (optional, `val`) runs the gdsr protocol
(eval/protocol.py) every `val_every` steps and at the end.

Frames of a recognised set's held-out split (eval/splits.py) are never trained on: a source that
would include one is an error.

Determinism: the batch of step `t` depends only on (seed, rank, t) (train/batches.py), so a run
and a resumed run see the same data on the same device; a time budget decides where it stops.
Runs on CPU (`threads` threads), on CUDA (`device: cuda`), and under `torchrun` with DDP
(`WORLD_SIZE` > 1). This module imports nothing beyond torch, numpy, OpenCV, Pillow, PyYAML,
safetensors and tqdm unless a source is a rosbag2 (then `rosbags`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.eval import splits
from depth_sr_ros.eval.protocol import gdsr_frame, make_input, network_method
from depth_sr_ros.train.batches import BatchMaker, TrainFrame
from depth_sr_ros.train.datasets import (
    BagConfig,
    FolderConfig,
    FolderDataset,
    Frame,
    describe_folder,
    parse_scenes,
    read_bag,
)
from depth_sr_ros.train.degradations import get_degradation
from depth_sr_ros.train.losses import get_loss

LOG = logging.getLogger(__name__)
DATA_ROOT_ENV = "DEPTH_SR_DATA"
FINISH_S = 10.0  # what a run needs after its last step: validation, final checkpoint (stop_at keeps it free)
DEFAULT_DATA_ROOT = "../shared/data"


def resolve_root(root: str, data_root: str) -> str:
    """A source path: absolute as given, else under `data_root`."""
    return root if Path(root).is_absolute() else str(Path(data_root) / root)


@dataclass
class SourceConfig:
    """One training source, its sampling weight and degradation mix.

    A dataset folder (`root`, under the config's `data_root` unless absolute; read by its
    dataset.json; `depth_unit_m` overrides the unit; `scenes` e.g. '01-14'; `split` "train" keeps
    only a recognised set's training frames), or a rosbag2 (`root` = the bag, with `rgb_topic` and
    `depth_topic`, the ground truth). `degradations` (name -> probability) overrides the config's
    mix for this source; `terms` (the data's licence) goes into the model card.
    """

    root: str
    scenes: str | None = None
    split: str = "all"
    weight: float = 1.0
    degradations: dict[str, float] | None = None
    depth_unit_m: float | None = None
    rgb_topic: str | None = None
    depth_topic: str | None = None
    terms: str = ""

    def frames(self, data_root: str = DEFAULT_DATA_ROOT, limit: int = 0) -> list[Frame]:
        """The source's frames (the first `limit`, 0 = all); raises ValueError when one is in a known
        set's held-out split."""
        root = resolve_root(self.root, data_root)
        if self.rgb_topic or self.depth_topic:
            if not (self.rgb_topic and self.depth_topic):
                raise ValueError(f"{root}: a bag source needs both rgb_topic and depth_topic")
            return read_bag(BagConfig(root, self.rgb_topic, self.depth_topic))
        config, names = self.folder_frames(data_root)
        return list(FolderDataset(replace(config, scenes=tuple(names[:limit] if limit else names))))

    def folder_frames(self, data_root: str) -> tuple[FolderConfig, list[str]]:
        """A folder source's description and the names of the frames it trains on; raises
        ValueError when one is in a known set's held-out split."""
        root = resolve_root(self.root, data_root)
        config, names, recognition = split_frames(root, self.scenes, self.split)
        if self.depth_unit_m is not None:
            config = replace(config, depth_unit_m=self.depth_unit_m)
        held_out = [n for n in names if recognition is not None and recognition.split_of.get(n) == "heldout"]
        if recognition is not None and held_out:
            raise ValueError(f"{root}: {len(held_out)} frames ({', '.join(held_out[:3])}, ...) are in the held-out split "
                             f"of {recognition.known.name} and are never trained on; use split: train")
        return config, names


def split_frames(root: str, scenes: str | None, split: str) -> tuple[FolderConfig, list[str], splits.Recognition | None]:
    """A folder's description, the names of its frames in `scenes` and `split` (of a recognised
    set; "all" otherwise), and the recognition; raises ValueError when none is left."""
    dataset = FolderDataset(describe_folder(root, parse_scenes(scenes)))
    recognition = splits.recognise(dataset.depth_files(), dataset.config.gdsr_style)
    names = splits.select(dataset.names, recognition, split)
    if not names:
        raise ValueError(f"{root}: no frames in split {split!r}")
    return dataset.config, names, recognition


@dataclass
class ValConfig:
    """A validation set scored with the gdsr protocol: a folder (`root` under `data_root`), its
    `split` of a recognised set ("heldout", "train" or "all") or `scenes`, at most `limit` frames
    (0 = all), with bicubic inputs or the degradation `degrade` (e.g. "real_tof@2px")."""

    root: str
    split: str = "heldout"
    scenes: str | None = None
    limit: int = 0
    degrade: str | None = None

    @property
    def label(self) -> str:
        """e.g. `rgbdd_dev_heldout_bicubic`, `middlebury_train_first4_real_tof_2px`."""
        first = f"_first{self.limit}" if self.limit else ""
        return f"{Path(self.root).name}_{self.split}{first}_{(self.degrade or 'bicubic').replace('@', '_')}"

    def frames(self, data_root: str) -> list[Frame]:
        config, names, _ = split_frames(resolve_root(self.root, data_root), self.scenes, self.split)
        return list(FolderDataset(replace(config, scenes=tuple(names[: self.limit] if self.limit else names))))


@dataclass
class TrainConfig:
    backbone: str = "lite"
    scale: int = 4
    model: dict[str, Any] = field(default_factory=dict)
    train: list[SourceConfig] = field(default_factory=list)
    synthetic_scenes: int = 0
    synthetic_size: tuple[int, int] = (256, 320)
    synthetic_weight: float = 1.0
    val: list[ValConfig] = field(default_factory=list)
    degradations: dict[str, float] = field(default_factory=lambda: {"bicubic": 1.0})
    range_jitter: float = 0.0
    patch: int = 96
    batch: int = 16
    steps: int = 10000
    time_budget_s: float = 0.0
    stop_at: float = 0.0  # seconds since the epoch: end training (and write the weights) by then; 0 = no
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    loss: str = "l1_sobel"
    loss_weight: float = 1.0
    val_every: int = 0
    select: str = "last"
    checkpoint_every_s: float = 60.0
    log_every: int = 50
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    amp: str = "off"
    init_weights: str | None = None
    zero_init: list[str] = field(default_factory=list)  # parameter-name prefixes to zero at start
    data_root: str = ""  # "" = $DEPTH_SR_DATA, else ../shared/data
    out: str = "runs/train"
    card: dict[str, Any] = field(default_factory=dict)  # extra ModelCard fields, e.g. notes
    progress: bool = True  # tqdm bar (depth-sr train --no-progress turns it off)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a config; `extends: OTHER.yaml` or `extends: [A.yaml, B.yaml]` (relative to this
        file, a later one's keys replacing an earlier one's) supplies defaults that this file's keys
        replace; `overrides` that are not None replace all of them."""
        raw = _read_yaml(Path(path))
        raw.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        raw["train"] = [SourceConfig(**s) for s in raw.get("train", [])]
        raw["val"] = [ValConfig(**v) for v in raw.get("val", [])]
        if "synthetic_size" in raw:
            raw["synthetic_size"] = tuple(raw["synthetic_size"])
        config = cls(**raw)
        config.check(str(path))
        return config

    def check(self, source: str = "config") -> None:
        """Refuse settings that cannot run, with what to change."""
        if not self.train and not self.synthetic_scenes:
            raise ValueError(f"{source}: no training data (train: [...] or synthetic_scenes)")
        if self.steps <= 0 and self.time_budget_s <= 0 and self.stop_at <= 0:
            raise ValueError(f"{source}: set steps or time_budget_s (or both): the run needs an end")
        if self.select not in ("last", "best") or (self.select == "best" and not self.val):
            raise ValueError(f"{source}: select must be 'last', or 'best' with a val set")
        if self.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"{source}: amp must be off, bf16 or fp16")
        if self.patch % self.scale:
            raise ValueError(f"{source}: patch {self.patch} must be a multiple of scale {self.scale}")

    @property
    def resolved_data_root(self) -> str:
        return self.data_root or os.environ.get(DATA_ROOT_ENV, "") or DEFAULT_DATA_ROOT


def _read_yaml(path: Path, depth: int = 0) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise TypeError(f"{path}: a training config is a mapping of keys, not a {type(raw).__name__}")
    parents = raw.pop("extends", None)
    if parents is None:
        return raw
    if depth > 4:
        raise ValueError(f"{path}: extends nests too deeply")
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged.update(_read_yaml(path.parent / parent, depth + 1))
    return {**merged, **raw}


def load_frames(config: TrainConfig) -> tuple[list[TrainFrame], list[dict[str, float]]]:
    """All training frames (weight of each source split over its frames) and each source's mix."""
    frames: list[TrainFrame] = []
    mixes: list[dict[str, float]] = []
    groups: list[tuple[list[Frame], float, dict[str, float]]] = []
    for source in config.train:
        groups.append((source.frames(config.resolved_data_root), source.weight,
                       source.degradations or config.degradations))
    if config.synthetic_scenes:
        from depth_sr_ros.train.synthetic import SyntheticConfig, make_scene

        h, w = config.synthetic_size
        scenes = [make_scene(SyntheticConfig(height=h, width=w), seed=config.seed * 100003 + i)
                  for i in range(config.synthetic_scenes)]
        groups.append((scenes, config.synthetic_weight, config.degradations))
    for index, (group, weight, mix) in enumerate(groups):
        for name in mix:
            get_degradation(name)  # unknown names fail here, before any training
        mixes.append(mix)
        usable = []
        for frame in group:
            valid = float(np.isfinite(frame.depth).mean())
            if valid < 0.5:
                LOG.warning("skipping training frame %s: %.0f%% valid depth", frame.name, 100 * valid)
            else:
                usable.append(frame)
        frames.extend(TrainFrame(f.name, f.rgb, f.depth, index, weight / len(usable)) for f in usable)
    return frames, mixes


def learning_rate(config: TrainConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to `min_lr` at the end of the run:
    progress is the larger of step / steps and elapsed / time_budget_s."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = 0.0
    if config.steps > 0:
        progress = step / config.steps
    if config.time_budget_s > 0:
        progress = max(progress, elapsed_s / config.time_budget_s)
    progress = min(progress, 1.0)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def build_model(config: TrainConfig) -> torch.nn.Module:
    spec = get_backbone(config.backbone)
    if spec.kind != "network":
        raise ValueError(f"{config.backbone} is a {spec.kind} backbone; only networks train")
    model = spec.factory(scale=config.scale, **config.model)
    if config.init_weights:
        from safetensors.torch import load_file

        state = load_file(config.init_weights)
        own = model.state_dict()
        matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(matched, strict=False)
        LOG.info("initialised %d/%d tensors from %s", len(matched), len(own), config.init_weights)
    zeroed = [p for name, p in model.named_parameters() if any(name.startswith(z) for z in config.zero_init)]
    if config.zero_init and not zeroed:
        raise ValueError(f"zero_init {config.zero_init} matches no parameter of {config.backbone}")
    with torch.no_grad():
        for p in zeroed:
            p.zero_()  # e.g. the output head: the network starts as its bicubic residual base
    return model


def validate(model: torch.nn.Module, sets: dict[str, tuple[ValConfig, list[Frame]]], scale: int,
             device: str) -> dict[str, float]:
    """Mean per-image gdsr RMSE per validation set (inputs seeded per frame as `depth-sr evaluate`)."""
    was_training = model.training
    model.eval()
    method = network_method(model, device)
    results = {}
    for label, (val, frames) in sets.items():
        degradation = get_degradation(val.degrade) if val.degrade else None
        rmse = [gdsr_frame(method, f, make_input(f, scale, degradation, np.random.default_rng([0, i])), scale)[1]
                for i, f in enumerate(frames)]
        results[label] = float(np.mean(rmse))
    model.train(was_training)
    return results


def _resolve_device(config: TrainConfig, world: int) -> str:
    device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda was asked for, but torch sees no CUDA device")
        if world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
    return device


def _autocast(config: TrainConfig, device: str) -> contextlib.AbstractContextManager:
    if config.amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train per `config`; returns a summary (steps, seconds, throughput, validation, weights)."""
    config.check()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = _resolve_device(config, world)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))

    model = build_model(config).to(device)
    fused = torch.device(device).type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    scaler = torch.amp.GradScaler(enabled=config.amp == "fp16")
    state: dict[str, Any] = {"step": 0, "elapsed_s": 0.0, "best": float("inf"), "best_step": -1, "history": []}
    if resume and (out / "last.json").exists():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(out / "last.safetensors"))
        optimizer.load_state_dict(torch.load(out / "last.optim.pt", weights_only=True))
        state = json.loads((out / "last.json").read_text())
        LOG.info("resumed from step %d", state["step"])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    loading = time.monotonic()
    frames, mixes = load_frames(config)
    maker = BatchMaker(frames, mixes, config.scale, config.patch, config.batch, device, config.seed, rank,
                       config.range_jitter)
    count = len(frames)
    del frames  # the maker holds them (on the device) now
    val_sets = {v.label: (v, v.frames(config.resolved_data_root)) for v in config.val} if rank == 0 else {}
    loss_fn = get_loss(config.loss)
    LOG.info("%d training frames from %d sources, %d validation sets, %d parameters, device %s, data ready in "
             "%.1f s", count, len(mixes), len(val_sets), sum(p.numel() for p in model.parameters()), device,
             time.monotonic() - loading)

    resumed_s = state["elapsed_s"]
    config = _fit_budget(config, resumed_s)
    start = time.monotonic() - resumed_s
    last_checkpoint = time.monotonic()
    step, first_step = state["step"], state["step"]
    running = torch.zeros((), device=device)
    bar = tqdm(total=config.steps or None, initial=step, desc=f"train {config.backbone} x{config.scale}",
               disable=rank != 0 or not config.progress, mininterval=5.0)
    while True:
        elapsed = time.monotonic() - start
        if (config.steps > 0 and step >= config.steps) or (config.time_budget_s > 0 and elapsed >= config.time_budget_s):
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, elapsed)
        batch = maker.batch(step)
        with _autocast(config, device):
            pred = net(batch.rgb, batch.depth, batch.mask)
        loss = loss_fn(pred.float(), batch.gt, batch.gt_valid, config.loss_weight)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        running += loss.detach()
        step += 1
        bar.update(1)
        if step % config.log_every == 0:
            mean_loss = float(running) / config.log_every
            running.zero_()
            state["history"].append({"step": step, "loss": mean_loss, "seconds": round(time.monotonic() - start, 1)})
            bar.set_postfix(loss=f"{mean_loss:.4f}")
        if rank == 0 and config.val_every and step % config.val_every == 0 and val_sets:
            _validation_point(config, model, optimizer, state, val_sets, step, device)
        if rank == 0 and config.checkpoint_every_s and time.monotonic() - last_checkpoint >= config.checkpoint_every_s:
            _checkpoint(config, model, optimizer, state, step, time.monotonic() - start, device, final=False)
            last_checkpoint = time.monotonic()
    bar.close()
    seconds = time.monotonic() - start
    summary: dict[str, Any] = {"steps": step, "seconds": round(seconds, 1), "device": device, "rank": rank}
    if rank == 0:
        trained = step - first_step
        summary["steps_per_s"] = round(trained / max(seconds - resumed_s, 1e-9), 2) if trained else 0.0
        summary["samples_per_s"] = round(summary["steps_per_s"] * config.batch, 1)
        state["throughput"] = {"steps_per_s": summary["steps_per_s"], "samples_per_s": summary["samples_per_s"]}
        if val_sets:
            validated = any(h.get("step") == step and any(k.startswith("val_") for k in h) for h in state["history"])
            summary["validation"] = (state["validation"] if validated else
                                     _validation_point(config, model, optimizer, state, val_sets, step, device))
        summary["weights"] = _checkpoint(config, model, optimizer, state, step, seconds, device, final=True)
        summary["history"] = state["history"]
        LOG.info("done: %d steps in %.0f s (%.1f steps/s, %.0f samples/s) on %s; weights %s", step, seconds,
                 summary["steps_per_s"], summary["samples_per_s"], device, summary["weights"])
    if world > 1:
        torch.distributed.destroy_process_group()
    return summary


def _fit_budget(config: TrainConfig, elapsed_s: float) -> TrainConfig:
    """The config with `time_budget_s` shrunk so that training ends `FINISH_S` seconds before
    `stop_at` (training seconds so far: `elapsed_s`)."""
    if config.stop_at <= 0:
        return config
    left = config.stop_at - time.time() - FINISH_S
    if left <= 0:
        raise RuntimeError(f"stop_at is {-left:.0f} s too close: no time left to train")
    fitted = elapsed_s + left
    if config.time_budget_s > 0 and config.time_budget_s <= fitted:
        return config
    LOG.info("time budget %.0f s to end by stop_at (training %.0f s more)", fitted, left)
    return replace(config, time_budget_s=fitted)


def _validation_point(config: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      state: dict[str, Any], val_sets: dict[str, tuple[ValConfig, list[Frame]]], step: int,
                      device: str) -> dict[str, float]:
    """Validate, record the figures, and keep the best weights when `select: best`."""
    results = validate(model, val_sets, config.scale, device)
    state["history"].append({"step": step, **{f"val_{k}": v for k, v in results.items()}})
    state["validation"] = results
    first = next(iter(results.values()))
    LOG.info("step %d: validation %s", step, ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    if first < state["best"]:
        state["best"], state["best_step"] = first, step
        if config.select == "best":
            _save_tensors(Path(config.out) / "best.safetensors", model)
    return results


def _save_tensors(path: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    partial = path.with_name(path.name + ".partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(partial))
    os.replace(partial, path)


def _checkpoint(config: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
                step: int, seconds: float, device: str, final: bool) -> str:
    """Write the resume state (last.*) and the shippable weights with their card; returns their path."""
    from depth_sr_ros.models.weights import save_weights

    out = Path(config.out)
    state["step"], state["elapsed_s"] = step, seconds
    _save_tensors(out / "last.safetensors", model)
    torch.save(optimizer.state_dict(), out / "last.optim.pt.partial")  # our own optimizer state only
    os.replace(out / "last.optim.pt.partial", out / "last.optim.pt")
    (out / "last.json").write_text(json.dumps(state, indent=2))
    export = model
    if config.select == "best" and (out / "best.safetensors").exists():
        from safetensors.torch import load_file

        export = build_model(replace(config, init_weights=None, zero_init=[]))
        export.load_state_dict(load_file(out / "best.safetensors"))
    path = out / f"{config.backbone}_x{config.scale}.safetensors"
    save_weights(export, path, training_card(config, state, device, final))
    return str(path)


def training_card(config: TrainConfig, state: dict[str, Any], device: str, final: bool):
    """The model card of the weights a run writes: data and its terms, recipe, device, and the
    validation figures when the run had validation sets."""
    from depth_sr_ros.models.weights import ModelCard

    sources = []
    for s in config.train:
        mix = ", ".join(f"{n} {p:g}" for n, p in (s.degradations or config.degradations).items())
        what = f"split {s.split}" if s.split != "all" else (s.scenes or "all")
        sources.append(f"{Path(s.root).name} {what} (weight {s.weight}; inputs: {mix})")
    if config.synthetic_scenes:
        sources.append(f"{config.synthetic_scenes} synthetic scenes (weight {config.synthetic_weight})")
    terms = sorted({s.terms for s in config.train if s.terms})
    minutes = state["elapsed_s"] / 60.0
    throughput = state.get("throughput", {})
    recipe = (f"{state['step']} steps of {config.batch} x {config.patch}px crops in {minutes:.1f} min"
              + (f" ({throughput['samples_per_s']:.0f} samples/s)" if throughput else "")
              + f", {config.loss}, AdamW lr {config.lr:g} -> {config.min_lr:g} (cosine to the end of the "
              f"{'time budget' if config.time_budget_s else 'steps'}), range jitter {config.range_jitter:g}, "
              f"seed {config.seed}" + (f"; fine-tuned from {config.init_weights}" if config.init_weights else ""))
    validation = state.get("validation", {})
    metrics = {f"train_val_{label}_rmse": value for label, value in validation.items()}
    protocol = ("gdsr (PROTOCOL.md), mean per-image RMSE, on " + ", ".join(validation)
                + f"; weights: {'the best checkpoint on the first set' if config.select == 'best' else 'the last step'}"
                if validation else "not evaluated during training: run depth-sr evaluate (docs/training.md)")
    notes = [n for n in (config.card.get("notes", ""),) if n]
    if not final:
        notes.append(f"checkpoint written during training at step {state['step']} ({minutes:.1f} min); the run "
                     "had not finished")
    if terms:
        notes.append("data terms: " + " | ".join(terms))
    extra = {k: v for k, v in config.card.items() if k != "notes"}
    trained_on = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    return ModelCard(
        backbone=config.backbone,
        scale=config.scale,
        training_data=f"{'; '.join(sources)}. {recipe}",
        evaluation_protocol=protocol,
        metrics=metrics,
        trained_on=trained_on,
        notes="\n".join(notes),
        **extra,
    )
