"""`depth-sr confidence`: score the confidence map (core/confidence.py) on an RGB-D folder.

    depth-sr confidence --data ../shared/data/rgbdd_dev --scale 4 [--split heldout] \\
        [--degrade real_tof] [--json out/confidence.json] [--png out/confidence.png] [--sweep]

Every frame goes through the robot pipeline (`DepthSR`, the backbone `auto` picks for the scale
unless `--backbone`/`--weights` say otherwise): the input is the gdsr protocol's bicubic
downsampling of the ground truth, or the `--degrade` sensor model (`eval/protocol.make_input`,
seeded per frame), and the output is scored in metres against the ground truth. Per frame: the
RMSE, the sparsification curve of the confidence (core/sparsification.py), its AUSE, and the
relative RMSE cut after removing the 10 % least-confident pixels; the figures are the means
over frames, and the PNG shows the mean curve. A recognised set (eval/splits.py) is scored on
its held-out split unless `--split` says otherwise.

`--sweep` also scores every combination of `SWEEP` (the confidence weights) and ranks them by
relative AUSE: how the shipped `ConfidenceConfig` defaults were chosen, on the training split
(docs/confidence.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from depth_sr_ros.core.confidence import ConfidenceConfig, input_confidence
from depth_sr_ros.core.sparsification import SparsificationCurve, sparsification, summarise
from depth_sr_ros.core.sparsification_plot import write_sparsification_png
from depth_sr_ros.optional import has_torch, missing_torch
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    bounded,
    check_backbone,
    existing_dir,
    existing_file,
    output_file,
)

if TYPE_CHECKING:
    from depth_sr_ros.train.degradations import Degradation

LOG = logging.getLogger(__name__)
CUT_FRACTIONS = (0.1, 0.2)
SWEEP: dict[str, tuple[float, ...]] = {
    "range_weight": (0.5, 1.0, 2.0),
    "noise_m_per_m2": (0.0, 0.002, 0.005, 0.01),
    "invalid_rel": (0.0, 0.01, 0.05),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder (rgb/, depth/, dataset.json)")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 4, 8, 16))
    parser.add_argument("--backbone", default="auto", help="backbone the pipeline runs ('auto': the shipped default)")
    parser.add_argument("--weights", help="weights for a network backbone (default: the shipped ones)")
    parser.add_argument("--split", choices=("heldout", "train", "all"),
                        help="frames of a recognised set (default: heldout for a recognised set, else all)")
    parser.add_argument("--scenes", help="frames to use, e.g. 15-20 or 1000,1002 (default: all)")
    parser.add_argument("--degrade", metavar="NAME",
                        help="sensor model for the input in place of bicubic (real_tof, phone_tof, ...; needs torch)")
    parser.add_argument("--misregistration", type=bounded(float, 0.0, 50.0), metavar="PX",
                        help="fix the --degrade model's misregistration at PX pixels (default: its 0-3 px mix)")
    parser.add_argument("--seed", type=bounded(int, 0), default=0, help="seed of the degradation's randomness")
    parser.add_argument("--json", help="write the figures, the mean curve and the sweep here")
    parser.add_argument("--png", help="write the mean sparsification curve here")
    parser.add_argument("--sweep", action="store_true", help="also score every combination of the confidence weights")
    add_no_progress(parser)


def check_args(args: argparse.Namespace) -> Degradation | None:
    """Every flag checked before the pipeline loads (UsageError naming the flag); the degradation."""
    existing_dir("--data", args.data, "dataset folder")
    if args.backbone != "auto":
        check_backbone("--backbone", args.backbone)
    if args.weights is not None:
        existing_file("--weights", args.weights, "weights file")
    for flag, path in (("--json", args.json), ("--png", args.png)):
        if path:
            output_file(flag, path)
    if args.misregistration is not None and not args.degrade:
        raise UsageError("--misregistration needs --degrade (real_tof, phone_tof or misregistration)")
    if not args.degrade:
        return None
    if not has_torch():
        raise missing_torch(f"--degrade {args.degrade}")
    from depth_sr_ros.train.sensor_presets import get_degradation

    try:
        return get_degradation(args.degrade, args.misregistration)
    except (KeyError, ValueError) as err:
        raise UsageError(f"--degrade {args.degrade}: {str(err).strip(chr(34) + chr(39))}") from None


def sweep_configs(sweep: bool) -> list[ConfidenceConfig]:
    """The shipped defaults first, then (with `sweep`) every other combination of `SWEEP`."""
    configs = [ConfidenceConfig()]
    if sweep:
        for values in itertools.product(*SWEEP.values()):
            config = ConfidenceConfig(**dict(zip(SWEEP, values)))
            if config not in configs:
                configs.append(config)
    return configs


def score(args: argparse.Namespace, degradation: Degradation | None) -> dict[str, Any]:
    """Run the pipeline over the selected frames and score each configuration's confidence."""
    from depth_sr_ros.core.metrics import depth_metrics
    from depth_sr_ros.core.pipeline import DepthSR, SRConfig
    from depth_sr_ros.eval.protocol import make_input
    from depth_sr_ros.tools.evaluate import select_frames

    dataset, selection = select_frames(args.data, args.scenes, args.split)
    pipeline = DepthSR(SRConfig(scale=args.scale, backbone=args.backbone, weights=args.weights))
    sr = pipeline.config
    configs = sweep_configs(args.sweep)
    curves: list[list[SparsificationCurve]] = [[] for _ in configs]
    rmse: list[float] = []
    bar = tqdm(dataset, desc=f"confidence x{args.scale}", disable=True if args.no_progress else None)
    for index, frame in enumerate(bar):
        inp = make_input(frame, args.scale, degradation, np.random.default_rng([args.seed, index]))
        depth = pipeline.process(inp.rgb, inp.lr).depth
        rmse.append(depth_metrics(depth, inp.gt)["rmse"])
        for config, frame_curves in zip(configs, curves):
            confidence = input_confidence(depth, inp.lr, args.scale, sr.min_depth, sr.max_depth, config)
            frame_curves.append(sparsification(depth, inp.gt, confidence))
    results = []
    for config, frame_curves in zip(configs, curves):
        summary = summarise(frame_curves, CUT_FRACTIONS)
        results.append({"config": dataclasses.asdict(config), "ause_m": summary.ause,
                        "ause_relative": summary.ause_relative,
                        "rmse_cut": {str(f): cut for f, cut in summary.rmse_cut.items()}, "summary": summary})
    return {"selection": selection, "backbone": pipeline.backbone_name,
            "weights": str(pipeline.network_weights) if pipeline.network_weights else None, "rmse_m": float(np.mean(rmse)),
            "results": results}


def report(args: argparse.Namespace, scored: dict[str, Any]) -> dict[str, Any]:
    """The JSON record: the shipped configuration's figures and mean curve, and the sweep."""
    shipped = scored["results"][0]
    curve = shipped["summary"]
    selection = scored["selection"]
    return {
        "command": "depth-sr " + " ".join(sys.argv[1:]),
        "data": str(args.data), "set": selection["set"], "split": selection["split"], "frames": selection["frames"],
        "scale": args.scale, "backbone": scored["backbone"], "weights": scored["weights"],
        "input": args.degrade or "bicubic", "misregistration_px": args.misregistration, "seed": args.seed,
        "rmse_m": scored["rmse_m"],
        "config": shipped["config"], "ause_m": shipped["ause_m"], "ause_relative": shipped["ause_relative"],
        "rmse_cut": shipped["rmse_cut"],
        "curve": curve.curve_dict(),
        "sweep": sorted(({k: v for k, v in r.items() if k != "summary"} for r in scored["results"]),
                        key=lambda r: r["ause_relative"]) if args.sweep else [],
    }


def run(args: argparse.Namespace) -> int:
    degradation = check_args(args)
    scored = score(args, degradation)
    record = report(args, scored)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
    if args.png:
        title = (f"{record['backbone']} x{args.scale}, {record['set']} {record['split']} ({record['frames']} frames), "
                 f"{record['input']} input")
        write_sparsification_png(args.png, scored["results"][0]["summary"], title, record["ause_m"])
    for row in record["sweep"]:
        config = ", ".join(f"{k} {row['config'][k]:g}" for k in SWEEP)
        print(f"  {config}: AUSE {row['ause_m'] * 100:.3f} cm ({row['ause_relative']:.3f} of RMSE), "
              f"10% removed cuts RMSE {row['rmse_cut']['0.1']:.1%}")
    print(f"{record['backbone']} x{args.scale} on {record['set']} {record['split']} ({record['frames']} frames, "
          f"{record['input']} input): RMSE {record['rmse_m'] * 100:.3f} cm, AUSE {record['ause_m'] * 100:.3f} cm "
          f"({record['ause_relative']:.3f} of RMSE); removing the 10% least-confident pixels cuts RMSE by "
          f"{record['rmse_cut']['0.1']:.1%}, 20% by {record['rmse_cut']['0.2']:.1%}")
    for flag, path in (("json", args.json), ("png", args.png)):
        if path:
            print(f"wrote {path}")
    return 0
