"""`depth-sr train --config YAML [--resume] [--out DIR]`: train or fine-tune a network backbone.

The YAML holds a `depth_sr_ros.train.loop.TrainConfig`; see docs/training.md.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (config/train/*.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.* if present")
    parser.add_argument("--out", help="output directory (overrides the config's `out`)")
    parser.add_argument("--max-minutes", type=float, help="stop after this many minutes (overrides)")
    parser.add_argument("--steps", type=int, help="number of steps (overrides)")
    parser.add_argument("--init-weights", help="start from these safetensors weights (overrides; fine-tuning)")


def run(args: argparse.Namespace) -> int:
    from depth_sr_ros.train.loop import TrainConfig, export_best, train

    config = TrainConfig.from_yaml(args.config, out=args.out, max_minutes=args.max_minutes, steps=args.steps,
                                  init_weights=args.init_weights)
    summary = train(config, resume=args.resume)
    if summary.get("rank", 0) == 0:
        summary["exported"] = export_best(config, summary)
    print(json.dumps(summary, indent=2))
    return 0
