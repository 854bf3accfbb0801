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

Long runs go in stretches: `stretch_s` ends this invocation after so many seconds of training
without touching the schedule, and `resume` continues from `OUT/resume.safetensors`
(train/checkpoint.py: model, optimiser, scaler, random generators, step, seconds so far).

Frames of a recognised set's held-out split (eval/splits.py) are never trained on: a source that
would include one is an error.

Determinism: the batch of step `t` depends only on (seed, rank, world, t) (train/batches.py), so a
run and a resumed run see the same data; with a step-based schedule (`steps`, no time budget) on
the same device and settings, a run cut off at any checkpoint and resumed ends with the same
weights as one that ran straight through (test/test_train_resume.py). A time budget ties the
schedule to the clock, so such a run is only as repeatable as its timing. Runs on CPU (`threads`
threads), on CUDA (`device: cuda`), and under `torchrun` with DistributedDataParallel
(`WORLD_SIZE` > 1; gloo on CPU, nccl on CUDA; `batch` is the global batch, split evenly over
the processes). This module imports nothing beyond torch, numpy, OpenCV, Pillow, PyYAML,
safetensors and tqdm unless a source is a rosbag2 (then `rosbags`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.eval.protocol import gdsr_frame, make_input, network_method
from depth_sr_ros.train.batches import BatchMaker, TrainFrame
from depth_sr_ros.train.card import training_card
from depth_sr_ros.train.checkpoint import (
    RESUME_FILE,
    ResumeError,
    data_digest,
    load_resume,
    recipe,
    save_resume,
)
from depth_sr_ros.train.config import (
    DATA_ROOT_ENV,
    DEFAULT_DATA_ROOT,
    GIVEN_INPUT,
    SourceConfig,
    TrainConfig,
    ValConfig,
    resolve_root,
)
from depth_sr_ros.train.datasets import Frame
from depth_sr_ros.train.losses import get_loss
from depth_sr_ros.train.prefetch import Prefetcher
from depth_sr_ros.train.sensor_presets import get_degradation

__all__ = ["DATA_ROOT_ENV", "DEFAULT_DATA_ROOT", "FINISH_S", "SourceConfig", "TrainConfig", "ValConfig",
           "build_model", "learning_rate", "load_frames", "resolve_root", "train", "training_card", "validate"]

LOG = logging.getLogger(__name__)
FINISH_S = 10.0  # what a run needs after its last step: validation, final checkpoint (stop_at keeps it free)


def load_frames(config: TrainConfig) -> tuple[list[TrainFrame], list[dict[str, float]]]:
    """All training frames (weight of each source split over its frames) and each source's mix."""
    frames: list[TrainFrame] = []
    mixes: list[dict[str, float]] = []
    groups: list[tuple[list[Frame], float, dict[str, float]]] = []
    for source in config.train:
        groups.append((source.frames(config.resolved_data_root, cache=config.frame_cache), source.weight,
                       source.degradations or config.degradations))
    if config.synthetic_scenes:
        from depth_sr_ros.train.synthetic import SyntheticConfig, make_scene

        h, w = config.synthetic_size
        scenes = [make_scene(SyntheticConfig(height=h, width=w), seed=config.seed * 100003 + i)
                  for i in range(config.synthetic_scenes)]
        groups.append((scenes, config.synthetic_weight, config.degradations))
    for index, (group, weight, mix) in enumerate(groups):
        for name in mix:
            if name != GIVEN_INPUT:
                get_degradation(name)  # unknown names fail here, before any training
        mixes.append(mix)
        usable = []
        for frame in group:
            valid = float(np.isfinite(frame.depth).mean())
            if valid < 0.5:
                LOG.warning("skipping training frame %s: %.0f%% valid depth", frame.name, 100 * valid)
            else:
                usable.append(frame)
        if GIVEN_INPUT in mix:
            frames.extend(_second_pass_frames(config, usable, index, weight))
        else:
            frames.extend(TrainFrame(f.name, f.rgb, f.depth, index, weight / len(usable)) for f in usable)
    return frames, mixes


def _second_pass_frames(config: TrainConfig, group: list[Frame], source: int, weight: float) -> list[TrainFrame]:
    """`config.second_pass_poses` training frames per frame of `group`, each with the second pass's
    input for one simulated sensor (`train/second_pass.py`), made with `config.second_pass_of`."""
    from depth_sr_ros.models.weights import load_network
    from depth_sr_ros.train.second_pass import SecondPassSensors, second_pass_input

    assert config.second_pass_of is not None  # TrainConfig.check
    first = network_method(load_network(config.backbone, config.scale, config.second_pass_of))
    sensors = SecondPassSensors(kinds=tuple(config.second_pass_sensors))
    share = weight / (len(group) * config.second_pass_poses)
    frames = []
    for i, frame in enumerate(tqdm(group, desc="second-pass inputs", disable=not config.progress, mininterval=5.0)):
        for pose in range(config.second_pass_poses):
            inp = second_pass_input(frame, first, config.scale, np.random.default_rng([config.seed, source, i, pose]),
                                    sensors)
            frames.append(TrainFrame(f"{frame.name}#{pose}", inp.rgb, inp.gt, source, share, inp.lr))
    return frames


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


def _utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _should_stop(config: TrainConfig, step: int, elapsed: float, stretch: float, world: int) -> tuple[bool, bool]:
    """(stop now, the run is finished): at `steps`, at the time budget, or at the end of the
    stretch (stopped, not finished). Every process of a distributed run takes rank 0's decision."""
    finished = (config.steps > 0 and step >= config.steps) or (0 < config.time_budget_s <= elapsed)
    paused = 0 < config.stretch_s <= stretch
    if world > 1:
        flags = torch.tensor([int(finished), int(paused)])
        torch.distributed.broadcast(flags, src=0)
        finished, paused = bool(flags[0]), bool(flags[1])
    return finished or paused, finished


def _start_progress() -> dict[str, Any]:
    """The progress of a new run (saved in the resume state and OUT/progress.json)."""
    return {"step": 0, "samples": 0, "elapsed_s": 0.0, "wall_s": 0.0, "finished": False, "best": None,
            "best_step": -1, "history": [], "stretches": []}


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train per `config` (continuing OUT's resume state when `resume`); returns a summary
    (steps, seconds, throughput, validation, weights)."""
    began, began_utc = time.monotonic(), _utc()
    config.check()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if config.batch % world:
        raise ValueError(f"batch {config.batch} must split evenly over {world} processes")
    device = _resolve_device(config, world)
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.device(device).type == "cuda" else "gloo")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        (out / "config.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))

    model = build_model(config).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    fused = torch.device(device).type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    scaler = torch.amp.GradScaler(enabled=config.amp == "fp16")
    run_recipe = recipe(config, world)
    progress = _start_progress()
    if resume and (out / RESUME_FILE).exists():
        progress = load_resume(out, model, optimizer, scaler, run_recipe).progress
        LOG.info("resumed %s at step %d (%.1f min of training so far)", out, progress["step"],
                 progress["elapsed_s"] / 60)
    elif resume:
        LOG.info("%s holds no %s: starting the run", out, RESUME_FILE)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    loading = time.monotonic()
    frames, mixes = load_frames(config)
    digest = data_digest([f"{f.source}:{f.name}" for f in frames])
    if progress.get("data", digest) != digest:
        raise ResumeError(f"{out}: the training frames differ from those the run started with; resume with the "
                          "same data, or train into another --out")
    progress["data"] = digest
    maker = BatchMaker(frames, mixes, config.scale, config.patch, config.batch, device, config.seed, rank,
                       config.range_jitter, world=world)
    count = len(frames)
    del frames  # the maker holds them (on the device) now
    val_sets = {v.label: (v, v.frames(config.resolved_data_root)) for v in config.val} if rank == 0 else {}
    loss_fn = get_loss(config.loss)
    LOG.info("%d training frames from %d sources, %d validation sets, %d parameters, device %s, data ready in "
             "%.1f s", count, len(mixes), len(val_sets), sum(p.numel() for p in model.parameters()), device,
             time.monotonic() - loading)

    resumed_s = progress["elapsed_s"]
    config = _fit_budget(config, resumed_s)
    start = time.monotonic() - resumed_s
    stretch_start = last_checkpoint = time.monotonic()
    step = first_step = progress["step"]
    stretch = {"started": began_utc, "ended": began_utc, "from_step": step, "to_step": step, "train_s": 0.0,
               "wall_s": 0.0, "device": device, "threads": config.threads, "world_size": world}
    progress["stretches"].append(stretch)
    wall_before = progress["wall_s"]

    def save(final: bool) -> str:
        now = time.monotonic()
        stretch.update(ended=_utc(), to_step=step, train_s=round(now - stretch_start, 1), wall_s=round(now - began, 1))
        progress.update(step=step, samples=step * config.batch, elapsed_s=now - start,
                        wall_s=round(wall_before + now - began, 1), finished=finished)
        return _checkpoint(config, model, optimizer, scaler, progress, run_recipe, device, final)

    running = torch.zeros((), device=device)
    prefetcher = Prefetcher(maker.batch, config.prefetch, config.threads)
    bar = tqdm(total=config.steps or None, initial=step, desc=f"train {config.backbone} x{config.scale}",
               disable=rank != 0 or not config.progress, mininterval=5.0)
    while True:
        elapsed = time.monotonic() - start
        stop, finished = _should_stop(config, step, elapsed, time.monotonic() - stretch_start, world)
        if stop:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, elapsed)
        batch = prefetcher.get(step)
        rgb = batch.rgb.contiguous(memory_format=torch.channels_last) if config.channels_last else batch.rgb
        with _autocast(config, device):
            pred = net(rgb, batch.depth, batch.mask)
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
            progress["history"].append({"step": step, "loss": mean_loss, "seconds": round(time.monotonic() - start, 1)})
            bar.set_postfix(loss=f"{mean_loss:.4f}")
        if rank == 0 and config.val_every and step % config.val_every == 0 and val_sets:
            _validation_point(config, model, progress, val_sets, step, device)
        if rank == 0 and config.checkpoint_every_s and time.monotonic() - last_checkpoint >= config.checkpoint_every_s:
            save(final=False)
            last_checkpoint = time.monotonic()
    prefetcher.close()
    bar.close()
    seconds = time.monotonic() - start
    summary: dict[str, Any] = {"steps": step, "finished": finished, "seconds": round(seconds, 1), "device": device,
                               "rank": rank, "world_size": world}
    if rank == 0:
        trained = step - first_step
        summary["steps_per_s"] = round(trained / max(seconds - resumed_s, 1e-9), 2) if trained else 0.0
        summary["samples_per_s"] = round(summary["steps_per_s"] * config.batch, 1)
        progress["throughput"] = {"steps_per_s": summary["steps_per_s"], "samples_per_s": summary["samples_per_s"]}
        if val_sets:
            validated = any(h.get("step") == step and any(k.startswith("val_") for k in h) for h in progress["history"])
            summary["validation"] = (progress["validation"] if validated else
                                     _validation_point(config, model, progress, val_sets, step, device))
        summary["weights"] = save(final=finished)
        summary["history"] = progress["history"]
        LOG.info("%s: %d steps (%d in this stretch) in %.0f s of training (%.1f steps/s, %.0f samples/s) on %s; "
                 "weights %s%s", "done" if finished else "paused", step, trained, seconds, summary["steps_per_s"],
                 summary["samples_per_s"], device, summary["weights"],
                 "" if finished else f"; continue with --resume (resume state in {out / RESUME_FILE})")
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


def _validation_point(config: TrainConfig, model: torch.nn.Module, progress: dict[str, Any],
                      val_sets: dict[str, tuple[ValConfig, list[Frame]]], step: int, device: str) -> dict[str, float]:
    """Validate, record the figures, and keep the best weights when `select: best`."""
    results = validate(model, val_sets, config.scale, device)
    progress["history"].append({"step": step, **{f"val_{k}": v for k, v in results.items()}})
    progress["validation"] = results
    first = next(iter(results.values()))
    LOG.info("step %d: validation %s", step, ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    if progress["best"] is None or first < progress["best"]:
        progress["best"], progress["best_step"] = first, step
        if config.select == "best":
            _save_tensors(Path(config.out) / "best.safetensors", model)
    return results


def _save_tensors(path: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import save_file

    partial = path.with_name(path.name + ".partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(partial))
    os.replace(partial, path)


def _checkpoint(config: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, progress: dict[str, Any], run_recipe: dict[str, Any], device: str,
                final: bool) -> str:
    """Write the resume state (OUT/resume.safetensors, progress.json) and the shippable weights with
    their card (the best checkpoint's when `select: best`); returns the weights' path."""
    from depth_sr_ros.models.weights import save_weights

    out = Path(config.out)
    save_resume(out, model, optimizer, scaler, progress, run_recipe)
    export = model
    if config.select == "best" and (out / "best.safetensors").exists():
        from safetensors.torch import load_file

        export = build_model(replace(config, init_weights=None, zero_init=[]))
        export.load_state_dict(load_file(out / "best.safetensors"))
    path = out / f"{config.backbone}_x{config.scale}.safetensors"
    save_weights(export, path, training_card(config, progress, device, final))
    return str(path)
