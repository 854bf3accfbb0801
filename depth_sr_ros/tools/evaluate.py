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
from depth_sr_ros.train.datasets import FolderDataset, parse_scenes, preset_for
from depth_sr_ros.train.degradations import DEGRADATIONS, get_degradation

LOG = logging.getLogger(__name__)
BASELINES = ("bicubic", "guided_filter")


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
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--previews", help="write one PNG per frame (inputs, predictions, error maps) here")


def build_method(name: str, scale: int, weights: str | None) -> tuple[Method, str | None]:
    """(method, weights path) for a backbone name; networks load through models.weights."""
    spec = get_backbone(name)
    if spec.kind == "classic":
        return spec.factory().upsample, None
    from depth_sr_ros.models.weights import load_network

    model = load_network(name, scale, weights)
    return network_method(model), str(weights) if weights else "shipped"


def _default_backbone(scale: int) -> tuple[str, str | None]:
    from depth_sr_ros.models.zoo import default_backbone

    name, path = default_backbone(scale)
    return name, str(path) if path else None


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    backbone, weights = args.backbone, args.weights
    if backbone is None:
        backbone, default_weights = _default_backbone(args.scale)
        weights = weights or default_weights
    names = [backbone] + [b for b in BASELINES if b != backbone]
    methods = {name: build_method(name, args.scale, weights if name == backbone else None)[0] for name in names}
    dataset = FolderDataset(preset_for(args.data, parse_scenes(args.scenes)))
    degradation = get_degradation(args.degrade) if args.degrade else None

    frames: list[dict[str, Any]] = []
    seconds = {name: 0.0 for name in names}
    for index, frame in enumerate(tqdm(dataset, desc=f"evaluate x{args.scale} {args.protocol}")):
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
            _write_preview(Path(args.previews), frame.name, inp, predictions, args.scale)

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


def _write_preview(folder: Path, name: str, inp, predictions: dict[str, np.ndarray], scale: int) -> None:
    from depth_sr_ros.core.preview import colorize_depth, colorize_error, depth_range, side_by_side, write_png

    lo, hi = depth_range(inp.gt)
    vmax = 0.05 * (hi - lo)
    lr_up = np.kron(inp.lr, np.ones((scale, scale), dtype=np.float32))
    panels = [("rgb", inp.rgb[..., ::-1].copy()), ("gt", colorize_depth(inp.gt, lo, hi)),
              (f"input ({inp.source})", colorize_depth(lr_up, lo, hi))]
    for method, pred in predictions.items():
        panels.append((method, colorize_depth(pred, lo, hi)))
    for method, pred in predictions.items():
        panels.append((f"|err| {method}", colorize_error(pred, inp.gt, vmax)))
    write_png(folder / f"{name}_x{scale}.png", side_by_side(panels))


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


def run(args: argparse.Namespace) -> int:
    result = evaluate(args)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nwrote {out}" + (f" and previews in {args.previews}" if args.previews else ""))
    return 0
