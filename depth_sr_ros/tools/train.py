"""`depth-sr train --config YAML [--resume] [--out DIR]`: train or fine-tune a network backbone.

The YAML holds a `depth_sr_ros.train.loop.TrainConfig`; see docs/training.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from depth_sr_ros.tools.usage import UsageError, add_no_progress, bounded, existing_file, output_dir

if TYPE_CHECKING:
    from depth_sr_ros.train.loop import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (config/train/*.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.* if present")
    parser.add_argument("--out", help="output directory (overrides the config's `out`)")
    parser.add_argument("--max-minutes", type=bounded(float, 0.0), help="stop after this many minutes (overrides)")
    parser.add_argument("--steps", type=bounded(int, 1), help="number of steps (overrides)")
    parser.add_argument("--init-weights", help="start from these safetensors weights (overrides; fine-tuning)")
    add_no_progress(parser)


def load_config(args: argparse.Namespace) -> TrainConfig:
    """The training config with the command line's overrides; UsageError for a bad file or folder."""
    from depth_sr_ros.train.loop import TrainConfig

    path = existing_file("--config", args.config, "config file")
    if args.out:
        output_dir("--out", args.out)
    if args.init_weights:
        existing_file("--init-weights", args.init_weights, "weights file")
    try:
        config = TrainConfig.from_yaml(path, out=args.out, max_minutes=args.max_minutes, steps=args.steps,
                                       init_weights=args.init_weights, progress=False if args.no_progress else None)
    except (ValueError, TypeError, AttributeError, yaml.YAMLError) as err:  # syntax, unknown keys, wrong types
        raise UsageError(f"--config {path}: {err}") from None
    folders = [(f"train[{i}].root", source.root) for i, source in enumerate(config.train)]
    for key, folder in [*folders, ("val_root", config.val_root)]:
        if not Path(folder).exists():
            raise UsageError(f"--config {path}: {key} {folder} does not exist (relative paths start in the "
                             f"current directory, {Path.cwd()})")
    return config


def run(args: argparse.Namespace) -> int:
    from depth_sr_ros.train.loop import export_best, train

    config = load_config(args)
    summary = train(config, resume=args.resume)
    if summary.get("rank", 0) == 0:
        summary["exported"] = export_best(config, summary)
    print(json.dumps(summary, indent=2))
    return 0
