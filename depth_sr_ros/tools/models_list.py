"""`depth-sr models [--flops] [--json PATH] [--record-fps BENCH.json]`: the backbones, the shipped
weights with their model card figures, and what `auto` picks per scale and why (`zoo.AUTO_RULE`:
the most accurate shipped network holding 10 FPS for 640x480 through ONNX Runtime on one CPU thread;
where none qualifies, the classic fallback, said plainly).

Fast by default (no torch, no network built): backbone names come from the node's parameter
table, weights from the `*.card.json` files the zoo finds (`depth_sr_ros.models.zoo`), each
card's fields read generically (every metric it holds goes to `--json`; the table shows the one
the zoo ranks by, `val_rmse`, and the FPS `auto` requires). `--record-fps` first writes the FPS of
a `depth-sr bench --json` result into the cards (`eval/speed_figures.py`). `--flops` also builds
every network to count its parameters and GFLOPs at 640x480 output per scale (2 FLOPs per
multiply-accumulate, foundation model included where used; counting those needs the optional
`transformers` package): seconds to minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from depth_sr_ros.models import zoo
from depth_sr_ros.models.weights import ModelCard
from depth_sr_ros.ros.parameters import CLASSIC_BACKBONES, NETWORK_BACKBONES, SCALES
from depth_sr_ros.tools.usage import UsageError, existing_file, output_file

LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write everything as one JSON document to PATH ('-' = standard output only)")
    parser.add_argument("--flops", action="store_true",
                        help="build every network to count parameters and GFLOPs per scale (slow)")
    parser.add_argument("--record-fps", default=None, metavar="BENCH_JSON",
                        help="first write the FPS of a `depth-sr bench --json` result (ONNX Runtime, one CPU thread, "
                        "640x480) into the cards of the weights it ran: the figure auto's speed bar reads")


def weights_entry(card: ModelCard, path: Path) -> dict[str, Any]:
    """One shipped weights file and its card's figures (every card field except the free text)."""
    return {"file": str(path), "backbone": card.backbone, "scale": card.scale, "parameters": card.parameters,
            "rank_metric": zoo.RANK_METRIC, "rank_value": card.metrics.get(zoo.RANK_METRIC),
            "fps": card.metrics.get(zoo.SPEED_METRIC), "benchmark_test_frames": card.benchmark_test_frames,
            "metrics": dict(card.metrics), "foundation": list(card.foundation), "trained_on": card.trained_on,
            "training_data": card.training_data, "evaluation_protocol": card.evaluation_protocol}


def auto_choices() -> dict[str, dict[str, Any]]:
    """What `backbone: auto` runs at each scale (`zoo.auto_choice`): the shipped weights it picks or
    the classic fallback, why, and why each other shipped weights file of the scale lost."""
    choices = {}
    for scale in SCALES:
        choice = zoo.auto_choice(scale)
        choices[str(scale)] = {"backbone": choice.backbone, "weights": str(choice.weights) if choice.weights else None,
                               "fallback": choice.fallback, "reason": choice.reason,
                               "passed_over": list(choice.passed_over)}
    return choices


def _costs(spec: Any, foundation: tuple[str, ...]) -> dict[str, Any] | None:
    """Parameters and GFLOPs per scale, or None where `transformers` is missing for the foundation."""
    from depth_sr_ros.models.flops import measure
    from depth_sr_ros.models.foundation import FoundationWeightsMissing

    try:
        costs = [measure(spec.name, scale, foundation) for scale in SCALES]
    except FoundationWeightsMissing as exc:
        LOG.debug("%s: %s", spec.name, exc)
        return None
    return {
        "parameters": costs[0].parameters,
        "foundation_parameters": costs[0].foundation_parameters,
        "gflops": {str(c.scale): round(c.gflops, 2) for c in costs},
    }


def describe(name: str, flops: bool) -> dict[str, Any]:
    """One backbone as a JSON-ready dict; with `flops`, its registry entry and measured costs."""
    entry: dict[str, Any] = {"name": name, "kind": "network" if name in NETWORK_BACKBONES else "classic"}
    if not flops:
        return entry
    from depth_sr_ros.core.backbones import get_backbone

    spec = get_backbone(name)
    entry.update(description=spec.description, foundation=list(spec.foundation),
                 requires_foundation=spec.requires_foundation)
    if spec.kind == "network":
        entry["default"] = _costs(spec, spec.foundation if spec.requires_foundation else ())
        if spec.foundation and not spec.requires_foundation:
            entry["with_foundation"] = _costs(spec, spec.foundation)
    return entry


def _gflops_text(costs: dict[str, Any] | None) -> str:
    if costs is None:
        return "n/a (pip install 'depth_sr_ros[foundation]' to count)"
    return " / ".join(f"{costs['gflops'][str(s)]:.1f}" for s in SCALES)


def _params_text(costs: dict[str, Any] | None) -> str:
    if costs is None:
        return "n/a"
    text = f"{costs['parameters'] / 1e6:.2f}M"
    if costs["foundation_parameters"]:
        text += f" + {costs['foundation_parameters'] / 1e6:.1f}M frozen"
    return text


def print_flops(entries: list[dict[str, Any]]) -> None:
    from depth_sr_ros.models.flops import OUTPUT_HEIGHT, OUTPUT_WIDTH

    print(f"\nGFLOPs at {OUTPUT_WIDTH}x{OUTPUT_HEIGHT} output for x{' / x'.join(map(str, SCALES))} (1 FLOP = 2 MAC)")
    print(f"{'backbone':<16}{'parameters':<24}{'GFLOPs':<34}foundation weights")
    for entry in entries:
        if entry["kind"] == "classic":
            continue
        need = "needs" if entry["requires_foundation"] else "can use"
        weights = f"{need} {', '.join(entry['foundation'])}" if entry["foundation"] else "none"
        print(f"{entry['name']:<16}{_params_text(entry['default']):<24}{_gflops_text(entry['default']):<34}{weights}")
        if "with_foundation" in entry:
            extra = entry["with_foundation"]
            print(f"{'':<16}{_params_text(extra):<24}{_gflops_text(extra):<34}with {', '.join(entry['foundation'])}")


def print_tables(document: dict[str, Any]) -> None:
    backbones = document["backbones"]
    classic = [b["name"] for b in backbones if b["kind"] == "classic"]
    networks = [b["name"] for b in backbones if b["kind"] == "network"]
    print(f"backbones: classic (numpy, no weights) {', '.join(classic)}; networks {', '.join(networks)}")
    print(f"\nshipped weights ({len(document['weights'])}), lower {zoo.RANK_METRIC} is better; FPS: 640x480, ONNX "
          "Runtime, 1 CPU thread (depth-sr bench):")
    wide = max([30] + [len(Path(entry["file"]).name) + 2 for entry in document["weights"]])
    print(f"  {'file':<{wide}}{'backbone':<14}{'scale':<7}{'parameters':>11}{zoo.RANK_METRIC:>10}{'FPS':>7}"
          "  trained on / figures")
    for entry in document["weights"]:
        rank, fps = (f"{v:{f}}" if isinstance(v, (int, float)) else "-"
                     for v, f in ((entry["rank_value"], ".3f"), (entry["fps"], ".1f")))
        extra = f"{entry['trained_on'] or '?'}; {len(entry['metrics'])} figures in the card"
        print(f"  {Path(entry['file']).name:<{wide}}{entry['backbone']:<14}x{entry['scale']:<6}"
              f"{entry['parameters']:>11,}{rank:>10}{fps:>7}  {extra}")
    print(f"\nbackbone 'auto' picks ({zoo.AUTO_RULE}):")
    for scale, choice in document["auto"].items():
        source = Path(choice["weights"]).name + ": " if choice["weights"] else ""
        print(f"  x{scale:<4}{choice['backbone']:<14}({source}{choice['reason']})")
        for line in choice["passed_over"]:
            print(f"  {'':<19}passed over: {line}")
    print(f"\nmodel directories searched: {', '.join(document['model_dirs']) or 'none'}")
    if any("default" in b for b in backbones):
        print_flops(backbones)


def record_fps(bench_json: str) -> None:
    """`--record-fps`: the bench result's FPS into the cards, one line per card written or record passed over."""
    from depth_sr_ros.eval.speed_figures import record_fps as record

    try:
        written, passed = record(existing_file("--record-fps", bench_json, "depth-sr bench --json result"))
    except ValueError as err:
        raise UsageError(f"--record-fps {bench_json}: {err}") from None
    for line in written:
        print(f"recorded {line}")
    for line in passed:
        print(f"not recorded: {line}")
    if not written:
        raise UsageError(f"--record-fps {bench_json}: no record of shipped weights on ONNX Runtime, one CPU thread, "
                         "640x480, fp32; see the lines above")


def run(args: argparse.Namespace) -> int:
    if args.json and args.json != "-":
        output_file("--json", args.json)
    if args.record_fps:
        record_fps(args.record_fps)
    document = {
        "backbones": [describe(name, args.flops) for name in (*CLASSIC_BACKBONES, *NETWORK_BACKBONES)],
        "weights": [weights_entry(card, path) for card, path in zoo.shipped_weights()],
        "auto": auto_choices(),
        "model_dirs": [str(d) for d in zoo.model_dirs()],
    }
    text = json.dumps(document, indent=2) + "\n"
    if args.json == "-":
        sys.stdout.write(text)
        return 0
    print_tables(document)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
        print(f"wrote {args.json}")
    return 0
