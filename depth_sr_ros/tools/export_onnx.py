"""`depth-sr export-onnx`: export a network backbone to ONNX and check it against PyTorch.

    depth-sr export-onnx --backbone lite --scale 4 --height 480 --width 640 --out lite_x4.onnx
    depth-sr export-onnx --backbone gta_dinov2 --scale 4 --dinov2 ~/models/dinov2-small ...
    depth-sr export-onnx --ship [DIR]     # every weights file in DIR (default: the repository's
                                          # models/) that needs no foundation model -> <name>.onnx
                                          # beside it, dynamic H x W, sha256 in its card

`--ship` is how the ONNX files that run without torch are made: run it after re-training or
re-shipping weights (`depth_sr_ros/models/shipped_onnx.py`), then commit the .onnx and .card.json files.

Weights: `--weights W` (a *.safetensors file with its card), else the shipped weights for the
backbone and scale, or `--untrained` for a network at its initial weights (for timing only). The summary
reports the maximum and relative L2 error of ONNX Runtime (CPU) against PyTorch on a random input.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from depth_sr_ros.core.backbones import load_backbones
from depth_sr_ros.models.export import compare_onnxruntime, export_onnx
from depth_sr_ros.models.ship import SHIP_OPSET, ship_onnx
from depth_sr_ros.models.weights import WEIGHTS_SUFFIX, card_path, load_network, read_card
from depth_sr_ros.models.zoo import REPO_MODELS
from depth_sr_ros.tools.usage import (
    UsageError,
    bounded,
    check_backbone,
    existing_dir,
    existing_file,
    output_file,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ship", nargs="?", type=Path, const=REPO_MODELS, default=None, metavar="DIR",
                        help="export every weights file in DIR that needs no foundation model to <name>.onnx "
                        f"(dynamic size) and record its sha256 in the card (default DIR: {REPO_MODELS})")
    parser.add_argument("--backbone", help="network backbone name (see `depth-sr models`; required unless --ship)")
    parser.add_argument("--scale", type=int, choices=(2, 4, 8, 16), help="upsampling factor (required unless --ship)")
    parser.add_argument("--weights", type=Path, help="*.safetensors with its .card.json (default: shipped)")
    parser.add_argument("--untrained", action="store_true",
                        help="export the network at its initial weights (timing only)")
    parser.add_argument("--height", type=bounded(int, 1), help="output (RGB) height in pixels (required unless --ship)")
    parser.add_argument("--width", type=bounded(int, 1), help="output (RGB) width in pixels (required unless --ship)")
    parser.add_argument("--out", type=Path, help="ONNX file to write (required unless --ship)")
    parser.add_argument("--dynamic", action="store_true", help="symbolic height and width")
    parser.add_argument("--opset", type=bounded(int, 17), default=17, help="ONNX opset (17 or later)")
    parser.add_argument("--dinov2", type=Path, help="local DINOv2 ViT-S/14 directory (gta_dinov2)")
    parser.add_argument("--depth-anything", type=Path, help="local Depth Anything V2 Small directory (nafnet_adain)")


def check_args(args: argparse.Namespace) -> None:
    """UsageError naming the flag for anything that cannot be exported, before any work."""
    if args.ship is not None:
        existing_dir("--ship", args.ship, "weights folder")
        return
    missing = [f"--{name}" for name in ("backbone", "scale", "height", "width", "out") if getattr(args, name) is None]
    if missing:
        raise UsageError(f"{', '.join(missing)} required (or --ship)")
    check_backbone("--backbone", args.backbone, kind="network")
    if args.height % args.scale or args.width % args.scale:
        raise UsageError(f"--height {args.height} and --width {args.width} must be divisible by --scale {args.scale}")
    if args.untrained and args.weights:
        raise UsageError("--weights and --untrained exclude each other")
    if args.weights:
        existing_file("--weights", args.weights, "weights file")
    for flag, folder in (("--dinov2", args.dinov2), ("--depth-anything", args.depth_anything)):
        if folder:
            existing_dir(flag, folder, "foundation weights folder")
    output_file("--out", args.out)


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    foundation = {k: v for k, v in (("dinov2", args.dinov2), ("depth_anything", args.depth_anything)) if v}
    if args.untrained:
        return load_backbones().get(args.backbone).factory(scale=args.scale, **foundation).eval()
    return load_network(args.backbone, args.scale, args.weights, **foundation)


def ship(directory: Path) -> int:
    """`--ship`: export and record every foundation-free weights file in `directory`."""
    targets = sorted(path for path in directory.glob(f"*{WEIGHTS_SUFFIX}") if not read_card(path).foundation)
    if not targets:
        raise UsageError(f"--ship: no weights (*{WEIGHTS_SUFFIX} with a card, no foundation model) in {directory}")
    for weights in targets:
        start = time.perf_counter()
        path, error = ship_onnx(weights)
        card = read_card(weights)
        print(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB, {card.backbone} x{card.scale}, opset {SHIP_OPSET}, "
              f"dynamic H x W) in {time.perf_counter() - start:.1f} s; onnxruntime vs torch max abs error "
              f"{error:.1e}; sha256 {card.onnx_sha256[:12]}... in {card_path(weights).name}")
    print(f"{len(targets)} ONNX files shipped in {directory}; commit them with their cards")
    return 0


def run(args: argparse.Namespace) -> int:
    check_args(args)
    if args.ship is not None:
        return ship(args.ship)
    model = build_model(args)  # WeightsError: a UsageError (exit 2); --untrained exports without weights
    start = time.perf_counter()
    path = export_onnx(model, args.out, args.height, args.width, args.scale, dynamic=args.dynamic, opset=args.opset)
    seconds = time.perf_counter() - start
    max_error, rel_l2 = compare_onnxruntime(model, path, args.height, args.width, args.scale)
    params = sum(p.numel() for p in model.parameters())
    lr_h, lr_w = args.height // args.scale, args.width // args.scale
    print(f"exported {args.backbone} x{args.scale} -> {path} ({path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s")
    print(f"  opset {args.opset}, {'dynamic' if args.dynamic else 'static'} shapes: rgb 1x3x{args.height}x{args.width}, "
          f"depth/mask 1x1x{lr_h}x{lr_w} -> depth_hr 1x1x{args.height}x{args.width}")
    print(f"  weights: {'untrained' if args.untrained else args.weights or 'shipped'}; {params / 1e6:.2f}M parameters")
    print(f"  onnxruntime CPU vs PyTorch: max abs error {max_error:.2e}, relative L2 error {rel_l2:.2e}")
    return 0
