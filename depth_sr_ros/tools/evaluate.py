"""`depth-sr evaluate`: score a backbone beside `bicubic` and `guided_filter` on an RGB-D folder.

    depth-sr evaluate --data ../shared/data/middlebury --scenes 15-20 --scale 4 --protocol gdsr \\
        [--backbone lite] [--weights models/lite_x4.safetensors] [--degrade tof] \\
        --json out/eval_x4.json [--previews out/previews]

Protocols are in `depth_sr_ros.eval.protocol`. Every method sees the same inputs: the real
`depth_lr/` when the folder has one, else the `--degrade` sensor model (default: the gdsr
protocol's PIL bicubic downsampling), drawn with one seed per frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.core.metrics import mean_metrics
from depth_sr_ros.eval.protocol import Method, gdsr_frame, make_input, metric_frame, network_method
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    check_backbone,
    existing_dir,
    existing_file,
    output_dir,
    output_file,
)
from depth_sr_ros.train.datasets import FolderDataset, parse_scenes, preset_for
from depth_sr_ros.train.degradations import DEGRADATIONS, get_degradation

LOG = logging.getLogger(__name__)
BASELINES = ("bicubic", "guided_filter")
# Published Middlebury figures (gdsr protocol, bicubic inputs, PROTOCOL.md) per scale.
PUBLISHED_MIDDLEBURY = {
    "dctnet": {4: 1.10, 8: 2.05, 16: 4.19},
    "sgnet": {4: 1.15, 8: 1.64, 16: 2.95},
    "naima": {4: 1.03, 8: 1.62, 16: 2.75},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder (rgb/, depth/, optional depth_lr/)")
    parser.add_argument("--scale", type=int, required=True, choices=(2, 4, 8, 16))
    parser.add_argument("--backbone", help="backbone to evaluate (default: the shipped default for the scale)")
    parser.add_argument("--weights", help="weights for a network backbone (default: the shipped ones)")
    parser.add_argument("--protocol", choices=("gdsr", "metric"), default="gdsr")
    parser.add_argument("--degrade", choices=sorted(DEGRADATIONS),
                        help="sensor model for the low-resolution input in place of the protocol's bicubic")
    parser.add_argument("--scenes", help="frames to use, e.g. 15-20 or 1000,1002 (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the degradation's randomness")
    parser.add_argument("--json", required=True, help="write the results here (a file path)")
    parser.add_argument("--previews", help="write one PNG per frame (inputs, predictions, error maps) here")
    parser.add_argument("--update-card", action="store_true",
                        help="record the numbers (and this command) in the model card of --weights")
    add_no_progress(parser)


def check_args(args: argparse.Namespace) -> FolderDataset:
    """Every flag checked before any network loads (UsageError naming the flag); the dataset."""
    data = existing_dir("--data", args.data, "dataset folder")
    try:
        scenes = parse_scenes(args.scenes)
    except ValueError:
        raise UsageError(f"--scenes {args.scenes!r}: expected frame names or ranges, e.g. 15-20 or 1000,1002") from None
    try:
        dataset = FolderDataset(preset_for(data, scenes))
    except FileNotFoundError as err:
        raise UsageError(f"--data {data}: {err} (a dataset folder holds rgb/ and depth/ with matching names)") from None
    if args.backbone is not None:
        check_backbone("--backbone", args.backbone)
    if args.weights is not None:
        existing_file("--weights", args.weights, "weights file")
    output_file("--json", args.json)
    if args.previews:
        output_dir("--previews", args.previews)
    if args.update_card and not args.weights:
        raise UsageError("--update-card needs --weights: the card to update is the one beside that file")
    return dataset


def build_method(name: str, scale: int, weights: str | None) -> Method:
    """The method for a backbone name; networks load through models.weights (None = shipped)."""
    spec = get_backbone(name)
    if spec.kind == "classic":
        return spec.factory().upsample
    from depth_sr_ros.models.weights import load_network

    return network_method(load_network(name, scale, weights))


def _default_backbone(scale: int) -> tuple[str, str | None]:
    from depth_sr_ros.models.zoo import default_backbone

    name, path = default_backbone(scale)
    return name, str(path) if path else None


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    dataset = check_args(args)
    backbone, weights = args.backbone, args.weights
    if backbone is None:
        backbone, default_weights = _default_backbone(args.scale)
        weights = weights or default_weights
    names = [backbone] + [b for b in BASELINES if b != backbone]
    methods = {name: build_method(name, args.scale, weights if name == backbone else None) for name in names}
    degradation = get_degradation(args.degrade) if args.degrade else None

    frames: list[dict[str, Any]] = []
    seconds = {name: 0.0 for name in names}
    bar = tqdm(dataset, desc=f"evaluate x{args.scale} {args.protocol}", disable=getattr(args, "no_progress", False))
    for index, frame in enumerate(bar):
        inp = make_input(frame, args.scale, degradation, np.random.default_rng([args.seed, index]))
        record: dict[str, Any] = {"name": frame.name, "source": inp.source, "methods": {}}
        predictions = {}
        for name, method in methods.items():
            start = time.perf_counter()
            if args.protocol == "gdsr":
                pred, rmse = gdsr_frame(method, frame, inp, args.scale)
                metrics = {"rmse": rmse}
            else:
                pred, metrics = metric_frame(method, inp, args.scale)
            seconds[name] += time.perf_counter() - start
            record["methods"][name] = metrics
            predictions[name] = pred
        frames.append(record)
        if args.previews:
            _write_preview(Path(args.previews), frame, inp, predictions, record["methods"], args)

    summary: dict[str, dict[str, float]] = {}
    for name in names:
        per_frame = [f["methods"][name] for f in frames]
        if args.protocol == "gdsr":
            stats = {"rmse": float(np.mean([m["rmse"] for m in per_frame]))}
        else:
            stats = mean_metrics(per_frame)
            edges = [m["edge_rmse"] for m in per_frame if np.isfinite(m["edge_rmse"])]
            stats["edge_rmse"] = float(np.mean(edges)) if edges else float("nan")
        stats["ms_per_frame"] = 1000.0 * seconds[name] / max(len(frames), 1)
        summary[name] = stats
    return {
        "protocol": args.protocol,
        "scale": args.scale,
        "data": str(args.data),
        "scenes": [f["name"] for f in frames],
        "degrade": args.degrade or ("depth_lr" if frames and frames[0]["source"] == "depth_lr" else "bicubic"),
        "seed": args.seed,
        "backbone": backbone,
        "weights": weights,
        "units": _units(args.protocol, dataset.config.gdsr_style),
        "methods": summary,
        "frames": frames,
    }


def _units(protocol: str, style: str) -> str:
    if protocol == "metric":
        return "metres (Middlebury: pseudo-metres = value x 0.01)" if style == "middlebury" else "metres"
    return "0-255 disparity scale" if style == "middlebury" else "centimetres (6 px border crop)"


def _write_preview(folder: Path, frame: Any, inp: Any, predictions: dict[str, np.ndarray],
                   scores: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """The comparison figure of one frame (core/preview_figure.py), in the unit its RMSE is scored in.

    frame: the dataset's `Frame`; inp: its `FrameInput`; scores: method -> the frame's metrics."""
    from depth_sr_ros.core.preview import DisplayUnit, depth_range, write_png
    from depth_sr_ros.core.preview_figure import FigureStyle, PreviewFrame, render_preview

    if args.protocol == "metric":
        unit = DisplayUnit("m", 1.0)
    elif frame.gdsr_style == "middlebury":
        unit = DisplayUnit("(0-255)", 1.0 / frame.depth_unit_m)
    else:
        unit = DisplayUnit("cm", 100.0)
    lo, hi = depth_range(inp.gt)
    rmse = {name: float(s["rmse"]) for name, s in scores.items()}
    lr = np.where(inp.valid_lr, inp.lr, np.nan)
    figure = render_preview(
        PreviewFrame(inp.rgb, predictions, lr, inp.gt, rmse, f"{frame.name}   x{args.scale} {args.protocol}"),
        FigureStyle(error_max_m=0.05 * (hi - lo), unit=unit))
    write_png(folder / f"{frame.name}_x{args.scale}.png", figure)


def print_table(result: dict[str, Any]) -> None:
    names = list(result["methods"])
    columns = ["rmse"] if result["protocol"] == "gdsr" else ["rmse", "mae", "absrel", "delta1", "edge_rmse"]
    reference = result["methods"].get("guided_filter", {}).get("rmse")
    print(f"\n{result['protocol']} x{result['scale']} on {result['data']} ({len(result['frames'])} frames, "
          f"input: {result['degrade']}, units: {result['units']})")
    header = f"{'method':<16}" + "".join(f"{c:>11}" for c in columns) + f"{'vs guided':>11}{'ms/frame':>11}"
    print(header)
    print("-" * len(header))
    for name in names:
        stats = result["methods"][name]
        gain = f"{100 * (1 - stats['rmse'] / reference):+.1f}%" if reference else "n/a"
        print(f"{name:<16}" + "".join(f"{stats[c]:>11.4f}" for c in columns) + f"{gain:>11}"
              + f"{stats['ms_per_frame']:>11.1f}")


def command_line(args: argparse.Namespace) -> str:
    """The `depth-sr evaluate` command that reproduces `args`."""
    parts = ["depth-sr evaluate"]
    for key, value in vars(args).items():
        if value is None or value is False:
            continue
        parts.append(f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}"))
    return " ".join(parts)


def update_card(weights: str, result: dict[str, Any], command: str) -> dict[str, float]:
    """Merge `result` into the card beside `weights`: `<protocol>_<input>_<method>_rmse` for every
    method; for gdsr with bicubic inputs also `val_rmse` (what the zoo ranks by) and, on
    Middlebury, the published figures and our gap to them. Returns the metrics added."""
    import dataclasses

    from depth_sr_ros.models.weights import card_path, read_card

    card = read_card(weights)
    prefix = f"{result['protocol']}_{result['degrade']}"
    added = {f"{prefix}_{name}_{key}": float(value) for name, stats in result["methods"].items()
             for key, value in stats.items() if key != "ms_per_frame" and np.isfinite(value)}
    ours = result["methods"][result["backbone"]]["rmse"]
    if result["protocol"] == "gdsr" and result["degrade"] == "bicubic":
        added["val_rmse"] = float(ours)
        if result["units"].startswith("0-255"):
            for method, figures in PUBLISHED_MIDDLEBURY.items():
                if result["scale"] in figures:
                    added[f"published_{method}_rmse"] = figures[result["scale"]]
                    added[f"gap_to_{method}_rmse"] = float(ours - figures[result["scale"]])
    line = f"[{prefix}, {len(result['frames'])} frames: {', '.join(result['scenes'])}] {command}"
    if result["degrade"] in DEGRADATIONS and result["degrade"] != "bicubic":
        line += f" | input degradation: {get_degradation(result['degrade'])}"
    if any(key.startswith("published_") for key in added):
        line += (" | published figures are means over all 30 Middlebury scenes of the gdsr protocol; ours over the "
                 "frames named here (on Middlebury 15-20 bicubic scores 2.48/4.37/7.16 at x4/x8/x16, against "
                 "2.28/3.98/6.37 on the 30), so the gaps are conservative")
    notes = "\n".join(n for n in (card.notes, line) if n)
    card = dataclasses.replace(card, metrics={**card.metrics, **added}, notes=notes)
    card_path(weights).write_text(card.to_json(), encoding="utf-8")
    return added


def run(args: argparse.Namespace) -> int:
    result = evaluate(args)
    if args.update_card:
        if not result["weights"] or get_backbone(result["backbone"]).kind != "network":
            raise UsageError("--update-card needs a network --backbone and its --weights file")
        update_card(result["weights"], result, command_line(args))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nwrote {out}" + (f" and previews in {args.previews}" if args.previews else ""))
    return 0
