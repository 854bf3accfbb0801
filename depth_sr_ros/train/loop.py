"""The training loop behind `depth-sr train --config YAML`.

Random aligned crops of ground-truth frames are flipped/rotated, degraded to low resolution by a
degradation drawn per sample (`TrainConfig.degradations`: name -> probability), hole-filled and
normalised by the frame's ground-truth range (as the gdsr protocol does), and the network learns
to restore the crop. Validation runs the gdsr protocol (eval/protocol.py) on held-out frames and
keeps the best checkpoint; the best weights are exported with a model card at the end.

Determinism: sample `i` of step `t` draws from `np.random.default_rng([seed, rank, t, i])`, so a
run (and a resumed run) is reproducible on the same device, unless `max_minutes` ends it or
shortens the learning-rate schedule (it follows the larger of step and time progress).
Runs on CPU (`threads` threads), on CUDA when present, and under `torchrun` with DDP
(`WORLD_SIZE` > 1).
"""

from __future__ import annotations

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
from depth_sr_ros.core.resample import fill_holes
from depth_sr_ros.eval.protocol import gdsr_frame, make_input, network_method
from depth_sr_ros.train.datasets import BagConfig, FolderDataset, Frame, parse_scenes, preset_for, read_bag
from depth_sr_ros.train.degradations import get_degradation
from depth_sr_ros.train.losses import get_loss

LOG = logging.getLogger(__name__)


@dataclass
class SourceConfig:
    """One training source and its sampling weight.

    A dataset folder (`root`; preset chosen by folder name, `depth_unit_m` overrides its unit;
    `scenes` e.g. '01-14', None = all), or a rosbag2 (`root` = the bag, with `rgb_topic` and
    `depth_topic`, the ground truth).
    """

    root: str
    scenes: str | None = None
    weight: float = 1.0
    depth_unit_m: float | None = None
    rgb_topic: str | None = None
    depth_topic: str | None = None

    def frames(self) -> list[Frame]:
        if self.rgb_topic or self.depth_topic:
            if not (self.rgb_topic and self.depth_topic):
                raise ValueError(f"{self.root}: a bag source needs both rgb_topic and depth_topic")
            return read_bag(BagConfig(self.root, self.rgb_topic, self.depth_topic))
        config = preset_for(self.root, parse_scenes(self.scenes))
        if self.depth_unit_m is not None:
            config = replace(config, depth_unit_m=self.depth_unit_m)
        return list(FolderDataset(config))


@dataclass
class TrainConfig:
    backbone: str = "lite"
    scale: int = 4
    model: dict[str, Any] = field(default_factory=dict)
    train: list[SourceConfig] = field(default_factory=list)
    synthetic_scenes: int = 0
    synthetic_size: tuple[int, int] = (256, 320)
    synthetic_weight: float = 1.0
    val_root: str = ""  # required: the validation folder (gdsr layout), e.g. Middlebury
    val_scenes: str | None = "15-20"
    degradations: dict[str, float] = field(default_factory=lambda: {"bicubic": 1.0})
    patch: int = 96
    batch: int = 16
    steps: int = 10000
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    loss: str = "l1_sobel"
    loss_weight: float = 1.0
    val_every: int = 500
    log_every: int = 50
    seed: int = 0
    max_minutes: float = 0.0
    threads: int = 2
    init_weights: str | None = None
    zero_init: list[str] = field(default_factory=list)  # parameter-name prefixes to zero at start
    out: str = "runs/train"
    device: str = "auto"
    card: dict[str, Any] = field(default_factory=dict)  # extra ModelCard fields, e.g. notes
    progress: bool = True  # tqdm bar (depth-sr train --no-progress turns it off)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        raw["train"] = [SourceConfig(**s) for s in raw.get("train", [])]
        if "synthetic_size" in raw:
            raw["synthetic_size"] = tuple(raw["synthetic_size"])
        config = cls(**raw)
        if not config.train and not config.synthetic_scenes:
            raise ValueError(f"{path}: no training data (train: [...] or synthetic_scenes)")
        return config


@dataclass
class TrainFrame:
    """A training frame kept in memory: rgb float32 HxWx3 in [0, 1], gt metres (NaN invalid),
    and the ground truth's range used to normalise."""

    rgb: np.ndarray
    gt: np.ndarray
    lo: float
    hi: float


def load_frames(config: TrainConfig) -> tuple[list[TrainFrame], np.ndarray]:
    """All training frames and their sampling probabilities (source weight split over frames)."""
    frames: list[TrainFrame] = []
    weights: list[float] = []
    groups: list[tuple[list[Frame], float]] = []
    for source in config.train:
        groups.append((source.frames(), source.weight))
    if config.synthetic_scenes:
        from depth_sr_ros.train.synthetic import SyntheticConfig, make_scene

        h, w = config.synthetic_size
        scenes = [make_scene(SyntheticConfig(height=h, width=w), seed=config.seed * 100003 + i)
                  for i in range(config.synthetic_scenes)]
        groups.append((scenes, config.synthetic_weight))
    for group, weight in groups:
        for frame in group:
            valid = np.isfinite(frame.depth)
            if valid.mean() < 0.5:
                LOG.warning("skipping training frame %s: %.0f%% valid depth", frame.name, 100 * valid.mean())
                continue
            frames.append(TrainFrame(frame.rgb.astype(np.float32) / 255.0, frame.depth,
                                     float(np.nanmin(frame.depth)), float(np.nanmax(frame.depth))))
            weights.append(weight / len(group))
    p = np.asarray(weights, dtype=np.float64)
    return frames, p / p.sum()


class PatchSampler:
    """Degraded training crops: `batch(step)` -> (rgb, depth_lr, mask, gt, gt_valid) tensors."""

    def __init__(self, config: TrainConfig, frames: list[TrainFrame], probs: np.ndarray, rank: int = 0) -> None:
        self.config, self.frames, self.probs, self.rank = config, frames, probs, rank
        self.names = list(config.degradations)
        p = np.asarray([config.degradations[n] for n in self.names], dtype=np.float64)
        self.degradation_probs = p / p.sum()
        self.degradations = {n: get_degradation(n) for n in self.names}
        if config.patch % config.scale:
            raise ValueError(f"patch {config.patch} must be a multiple of scale {config.scale}")

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        s, p = self.config.scale, self.config.patch
        for _ in range(20):
            frame = self.frames[rng.choice(len(self.frames), p=self.probs)]
            h, w = frame.gt.shape
            y = int(rng.integers(0, (h - p) // s + 1)) * s
            x = int(rng.integers(0, (w - p) // s + 1)) * s
            gt = frame.gt[y : y + p, x : x + p]
            rgb = frame.rgb[y : y + p, x : x + p]
            k = int(rng.integers(0, 4))
            gt, rgb = np.rot90(gt, k), np.rot90(rgb, k)
            if rng.random() < 0.5:
                gt, rgb = gt[:, ::-1], rgb[:, ::-1]
            gt = np.ascontiguousarray(gt)
            if np.isfinite(gt).mean() < 0.7:
                continue
            name = self.names[rng.choice(len(self.names), p=self.degradation_probs)]
            lr = self.degradations[name](gt, s, rng)
            valid = np.isfinite(lr)
            if valid.mean() < 0.5:
                continue
            lr = fill_holes(np.nan_to_num(lr), valid)
            span = frame.hi - frame.lo if frame.hi > frame.lo else 1.0
            return (np.ascontiguousarray(rgb.transpose(2, 0, 1)), (lr - frame.lo) / span,
                    valid.astype(np.float32), (gt - frame.lo) / span)
        raise RuntimeError("could not draw a usable training crop in 20 tries; check the data")

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        samples = [self.sample(np.random.default_rng([self.config.seed, self.rank, step, i]))
                   for i in range(self.config.batch)]
        rgb, lr, mask, gt = (np.stack(parts).astype(np.float32) for parts in zip(*samples))
        gt_t = torch.from_numpy(gt)[:, None]
        return (torch.from_numpy(rgb), torch.from_numpy(lr)[:, None], torch.from_numpy(mask)[:, None],
                torch.nan_to_num(gt_t), torch.isfinite(gt_t))


def validate(model: torch.nn.Module, frames: list[Frame], scale: int, device: str) -> float:
    """Mean per-image gdsr RMSE (bicubic inputs) on `frames`."""
    was_training = model.training
    model.eval()
    method = network_method(model, device)
    rmse = [gdsr_frame(method, f, make_input(f, scale), scale)[1] for f in frames]
    model.train(was_training)
    return float(np.mean(rmse))


def learning_rate(config: TrainConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then cosine decay to `min_lr` over the larger of step and time progress."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = step / config.steps
    if config.max_minutes > 0:
        progress = max(progress, elapsed_s / (60.0 * config.max_minutes))
    progress = min(progress, 1.0)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def _save_state(out: Path, name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, out / f"{name}.safetensors")
    torch.save(optimizer.state_dict(), out / f"{name}.optim.pt")  # our own optimizer state only
    (out / f"{name}.json").write_text(json.dumps(state, indent=2))


def build_model(config: TrainConfig) -> torch.nn.Module:
    spec = get_backbone(config.backbone)
    if spec.kind != "network":
        raise ValueError(f"{config.backbone} is a {spec.kind} backbone; only networks train")
    model = spec.factory(scale=config.scale, **config.model)
    zeroed = [p for name, p in model.named_parameters() if any(name.startswith(z) for z in config.zero_init)]
    if config.zero_init and not zeroed:
        raise ValueError(f"zero_init {config.zero_init} matches no parameter of {config.backbone}")
    with torch.no_grad():
        for p in zeroed:
            p.zero_()  # e.g. the output head: the network starts as its bicubic residual base
    if config.init_weights:
        from safetensors.torch import load_file

        state = load_file(config.init_weights)
        own = model.state_dict()
        matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(matched, strict=False)
        LOG.info("initialised %d/%d tensors from %s", len(matched), len(own), config.init_weights)
    return model


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train per `config`; returns a summary (best validation RMSE, steps, minutes, paths)."""
    if not config.val_root:
        raise ValueError("the training config sets no val_root (a validation folder, e.g. Middlebury)")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))

    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state: dict[str, Any] = {"step": 0, "best_rmse": float("inf"), "best_step": -1, "history": []}
    if resume and (out / "last.json").exists():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(out / "last.safetensors"))
        optimizer.load_state_dict(torch.load(out / "last.optim.pt", weights_only=True))
        state = json.loads((out / "last.json").read_text())
        LOG.info("resumed from step %d (best RMSE %.4f)", state["step"], state["best_rmse"])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    frames, probs = load_frames(config)
    sampler = PatchSampler(config, frames, probs, rank)
    val_frames = list(FolderDataset(preset_for(config.val_root, parse_scenes(config.val_scenes))))
    loss_fn = get_loss(config.loss)
    LOG.info("%d training frames, %d validation frames, %d parameters, device %s", len(frames),
             len(val_frames), sum(p.numel() for p in model.parameters()), device)

    if rank == 0 and not state["history"]:
        initial = validate(model, val_frames, config.scale, device)
        state["history"].append({"step": 0, "val_rmse": initial, "minutes": 0.0})
        LOG.info("step 0: validation gdsr RMSE %.4f", initial)
    start = time.monotonic() - state.get("elapsed_s", 0.0)
    running = 0.0
    bar = tqdm(range(state["step"], config.steps), initial=state["step"], total=config.steps,
               desc=f"train {config.backbone} x{config.scale}", disable=rank != 0 or not config.progress)
    step = state["step"]
    for step in bar:
        elapsed = time.monotonic() - start
        if config.max_minutes > 0 and elapsed > 60.0 * config.max_minutes:
            LOG.info("time limit of %.1f min reached at step %d", config.max_minutes, step)
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, elapsed)
        rgb, lr, mask, gt, gt_valid = (t.to(device) for t in sampler.batch(step))
        loss = loss_fn(net(rgb, lr, mask), gt, gt_valid, config.loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.item()
        if (step + 1) % config.log_every == 0:
            bar.set_postfix(loss=f"{running / config.log_every:.4f}", best=f"{state['best_rmse']:.3f}")
            running = 0.0
        if rank == 0 and ((step + 1) % config.val_every == 0 or step + 1 == config.steps):
            _checkpoint(config, model, optimizer, state, val_frames, step + 1, time.monotonic() - start, device)
    else:
        step = config.steps
    if rank == 0 and state["step"] != step and step > 0:
        _checkpoint(config, model, optimizer, state, val_frames, step, time.monotonic() - start, device)
    if world > 1:
        torch.distributed.destroy_process_group()
    summary = {"best_rmse": state["best_rmse"], "best_step": state["best_step"], "steps": state["step"],
               "minutes": round(state.get("elapsed_s", 0.0) / 60.0, 2), "out": str(out),
               "best": str(out / "best.safetensors"), "device": device, "rank": rank,
               "history": state["history"]}
    LOG.info("summary: %s", summary)
    return summary


def _checkpoint(config: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                state: dict[str, Any], val_frames: list[Frame], step: int, elapsed_s: float, device: str) -> None:
    rmse = validate(model, val_frames, config.scale, device)
    state["step"], state["elapsed_s"] = step, elapsed_s
    state["history"].append({"step": step, "val_rmse": rmse, "minutes": round(elapsed_s / 60.0, 2)})
    out = Path(config.out)
    if rmse < state["best_rmse"]:
        state["best_rmse"], state["best_step"] = rmse, step
        _save_state(out, "best", model, optimizer, state)
    _save_state(out, "last", model, optimizer, state)
    LOG.info("step %d: validation gdsr RMSE %.4f (best %.4f at %d), %.1f min", step, rmse,
             state["best_rmse"], state["best_step"], elapsed_s / 60.0)


def training_card(config: TrainConfig, summary: dict[str, Any]):
    """The model card of a training run's best checkpoint (validation: gdsr, bicubic inputs)."""
    from depth_sr_ros.models.weights import ModelCard

    sources = [f"{Path(s.root).name} {s.scenes or 'all'} (weight {s.weight})" for s in config.train]
    if config.synthetic_scenes:
        sources.append(f"{config.synthetic_scenes} synthetic scenes (weight {config.synthetic_weight})")
    degradations = ", ".join(f"{name} {p:g}" for name, p in config.degradations.items())
    device = summary["device"]
    trained_on = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU (2 shared cores)"
    return ModelCard(
        backbone=config.backbone,
        scale=config.scale,
        training_data=f"{'; '.join(sources)}; degradations: {degradations}; {summary['steps']} steps of "
        f"{config.batch} x {config.patch}px crops, {config.loss}, {summary['minutes']} min"
        + (f"; fine-tuned from {config.init_weights}" if config.init_weights else ""),
        evaluation_protocol=f"gdsr (PROTOCOL.md), bicubic inputs, {Path(config.val_root).name} "
        f"{config.val_scenes}, 0-255 scale, mean per-image RMSE",
        metrics={"val_rmse": summary["best_rmse"]},
        trained_on=trained_on,
        **config.card,
    )


def export_best(config: TrainConfig, summary: dict[str, Any]) -> str:
    """Export the best checkpoint as `OUT/<backbone>_x<scale>.safetensors` with its model card
    (models/weights.py); returns the path."""
    from safetensors.torch import load_file

    from depth_sr_ros.models.weights import save_weights

    model = build_model(TrainConfig(**{**asdict(config), "init_weights": None, "train": []}))
    model.load_state_dict(load_file(summary["best"]))
    path = Path(config.out) / f"{config.backbone}_x{config.scale}.safetensors"
    save_weights(model, path, training_card(config, summary))
    return str(path)
