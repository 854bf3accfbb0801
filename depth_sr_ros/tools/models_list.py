"""`depth-sr models [--json]`: every backbone with its parameters, GFLOPs at 640x480 output per
scale, and the foundation weights it needs or can use.

GFLOPs count 2 FLOPs per multiply-accumulate (see `depth_sr_ros.models.flops`) and include the
foundation model where one is used; counting those needs the optional `transformers` package.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from depth_sr_ros.core.backbones import BackboneSpec, load_backbones
from depth_sr_ros.models.flops import OUTPUT_HEIGHT, OUTPUT_WIDTH, measure
from depth_sr_ros.models.foundation import FoundationWeightsMissing

LOG = logging.getLogger(__name__)
SCALES = (2, 4, 8, 16)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")


def _costs(spec: BackboneSpec, foundation: tuple[str, ...]) -> dict[str, Any] | None:
    """Parameters and GFLOPs per scale, or None where `transformers` is missing for the foundation."""
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


def describe(spec: BackboneSpec) -> dict[str, Any]:
    """One backbone as a JSON-ready dict."""
    entry: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "foundation": list(spec.foundation),
        "requires_foundation": spec.requires_foundation,
    }
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


def print_table(entries: list[dict[str, Any]]) -> None:
    print(f"GFLOPs at {OUTPUT_WIDTH}x{OUTPUT_HEIGHT} output for x{' / x'.join(map(str, SCALES))} (1 FLOP = 2 MAC)")
    print(f"{'backbone':<16}{'kind':<9}{'parameters':<24}{'GFLOPs':<34}foundation weights")
    for entry in entries:
        if entry["foundation"]:
            need = "needs" if entry["requires_foundation"] else "can use"
            weights = f"{need} {', '.join(entry['foundation'])}"
        else:
            weights = "none"
        if entry["kind"] == "classic":
            print(f"{entry['name']:<16}{'classic':<9}{'-':<24}{'- (numpy, CPU)':<34}{weights}")
            continue
        default = entry["default"]
        print(f"{entry['name']:<16}{'network':<9}{_params_text(default):<24}{_gflops_text(default):<34}{weights}")
        if "with_foundation" in entry:
            extra = entry["with_foundation"]
            print(f"{'':<25}{_params_text(extra):<24}{_gflops_text(extra):<34}with {', '.join(entry['foundation'])}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    registry = load_backbones()
    names = tqdm(registry.names(), desc="counting", unit="backbone", leave=False)
    entries = [describe(registry.get(name)) for name in names]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    print_table(entries)
    networks = sum(entry["kind"] == "network" for entry in entries)
    print(f"{len(entries)} backbones: {networks} networks, {len(entries) - networks} classic")
    return 0
