"""`depth-sr train --config YAML [--resume] [--out DIR] [--device cuda] [--time-budget-s S] ...`:
train or fine-tune a network backbone.

The YAML holds a `depth_sr_ros.train.loop.TrainConfig`; see docs/training.md. The options
override the config. The weights and their model card are written to `OUT/<backbone>_x<scale>.*`
during and at the end of the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import yaml

from depth_sr_ros.optional import require_torch_weights
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    bounded,
    existing_dir,
    existing_file,
    output_dir,
)

if TYPE_CHECKING:
    from depth_sr_ros.train.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (config/train/*.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/resume.safetensors if present "
                        "(model, optimiser, schedule, step, data order, random generators); else start the run")
    parser.add_argument("--out", help="output directory (default: the config's `out`)")
    parser.add_argument("--steps", type=bounded(int, 1), help="most training steps (default: the config's; its `steps: "
                        "0` leaves the end to the time budget)")
    parser.add_argument("--time-budget-s", type=bounded(float, 0.0), help="stop after this many seconds of training; "
                        "the learning rate decays to its minimum at that point (default: the config's)")
    parser.add_argument("--stop-at", type=bounded(float, 0.0), metavar="UNIX_S",
                        help="end training by this wall-clock time (seconds since the epoch, e.g. $(date +%%s) + 400); "
                        "the time budget shrinks so that the weights are written by then")
    parser.add_argument("--stretch-s", type=bounded(float, 0.0), metavar="S",
                        help="train S seconds in this invocation, then save the resume state and exit (the schedule "
                        "is unaffected; continue with --resume)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the config's)")
    parser.add_argument("--data-root", help="folder the config's relative data paths are under (default: "
                        "$DEPTH_SR_DATA, else ../shared/data)")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), help="mixed precision on the device (default: the config's)")
    parser.add_argument("--threads", type=bounded(int, 1), help="torch CPU threads of this process (default: the config's)")
    parser.add_argument("--seed", type=int, help="seed of the batches and the initialisation (default: the config's)")
    parser.add_argument("--init-weights", help="start from these safetensors weights (fine-tuning; default: the config's)")
    add_no_progress(parser)


def load_config(args: argparse.Namespace) -> TrainConfig:
    """The training config with the command line's overrides; UsageError for a bad file or folder."""
    from depth_sr_ros.train.config import TrainConfig, resolve_root

    path = existing_file("--config", args.config, "config file")
    if args.out:
        output_dir("--out", args.out)
    if args.init_weights:
        existing_file("--init-weights", args.init_weights, "weights file")
    if args.data_root:
        existing_dir("--data-root", args.data_root, "data folder")
    try:
        config = TrainConfig.from_yaml(
            path, out=args.out, steps=args.steps, time_budget_s=args.time_budget_s, stop_at=args.stop_at,
            stretch_s=args.stretch_s, device=args.device,
            data_root=args.data_root, amp=args.amp, threads=args.threads, seed=args.seed,
            init_weights=args.init_weights, progress=False if args.no_progress else None)
    except (ValueError, TypeError, AttributeError, yaml.YAMLError) as err:  # syntax, unknown keys, wrong types
        raise UsageError(f"--config {path}: {err}") from None
    folders = [(f"train[{i}].root", source.root) for i, source in enumerate(config.train)]
    folders += [(f"val[{i}].root", val.root) for i, val in enumerate(config.val)]
    for key, folder in folders:
        resolved = resolve_root(folder, config.resolved_data_root)
        if not Path(resolved).exists():
            raise UsageError(f"--config {path}: {key} {resolved} does not exist (relative roots are under the data "
                             f"root {config.resolved_data_root}: --data-root or $DEPTH_SR_DATA)")
    if config.init_weights and not Path(config.init_weights).is_file():
        raise UsageError(f"--config {path}: init_weights {config.init_weights} does not exist")
    return config


def run(args: argparse.Namespace) -> int:
    require_torch_weights("depth-sr train (it writes safetensors weights)")  # before hours of training, not after
    from depth_sr_ros.train.checkpoint import ResumeError
    from depth_sr_ros.train.loop import train

    config = load_config(args)
    try:
        summary = train(config, resume=args.resume)
    except ResumeError as err:
        raise UsageError(f"--resume: {err}") from None
    summary.pop("history", None)
    if summary["rank"] == 0:  # under torchrun, one summary (rank 0's), not one per process
        print(json.dumps(summary, indent=2))
    if summary["world_size"] > 1:
        _end_distributed_worker()
    return 0


def _end_distributed_worker() -> NoReturn:
    """End a torchrun worker process now, after flushing its output, without interpreter
    finalization: gloo's worker threads can still be releasing the last collective's tensors,
    which takes the GIL, and a thread that takes the GIL while Python finalizes aborts the
    process ("terminate called without an active exception"; seen about once in 20 CPU runs,
    pytorch/pytorch#190489 and #179291). The weights and resume state are closed files by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)
