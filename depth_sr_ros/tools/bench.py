"""`depth-sr bench`: time every stage of the node's per-frame work, per backend and backbone.

    depth-sr bench --backbones bicubic lite --backends onnxruntime torch --height 480 --width 640 \\
        --scale 4 --frames 50 --warmup 5 --json bench.json --markdown bench.md

The real sample frames (samples/tum_fr1, TUM RGB-D fr1) become `rosbags` sensor_msgs messages
(rgb8 RGB, 16UC1 millimetre depth decimated by the scale, CameraInfo for both), so the decode and
encode stages run the node's own code on real messages. Each frame goes through the node's
`FrameProcessor` and `DepthSR`, then its outputs become Image, CameraInfo and PointCloud2
messages through `MessageBuilder` with the node's rclpy adapters (`ros/rclpy_messages.py`: one
copy of the data into `array.array`), over the rosbags message classes since rclpy is absent
here. Stages, in milliseconds:

  decode      Image/CameraInfo fields -> arrays, camera checks      (FrameProcessor)
  register    an applied registration residual; 0 unless --residual (FrameProcessor: a network
              in the depth sensor's view, core/sensor_view.py; a classic upsampler's input
              re-registered, core/reprojection.py)
  preprocess  resampling, hole fill, normalisation, NCHW tensors    (DepthSR)
  network     the backbone (a network via its inference backend, or a classic upsampler)
  postprocess de-normalise, crop, hole policy                       (DepthSR)
  confidence  per-pixel confidence map; 0 unless --confidence         (FrameProcessor)
  pointcloud  organised PointCloud2 fields                          (FrameProcessor)
  encode      depth -> Image fields, CameraInfo rescaled            (FrameProcessor)
  msg_build   field sets -> Image, CameraInfo, PointCloud2 messages (MessageBuilder)

Median and p90 over `--frames` frames after `--warmup` frames; with `--repeats R` each record
is timed R times and its figures are the median of the R run medians (p90 over all frames). Baselines measured in the same
run, beside every figure: the network against bicubic upsampling of the same frames (the
`bicubic` backbone's network stage), and every other stage against one numpy copy of the bytes
that stage reads plus the bytes it writes. The whole-frame copy baseline copies the input
messages' bytes plus the output messages' bytes (depth image and point cloud). The overhead is
every stage but the network (the confidence included with `--confidence`). Memory: the
process's peak RSS after the record, the peak of Python/numpy allocations during one frame
(tracemalloc; memory held inside ONNX Runtime or torch is not seen by it), and the CUDA peak
of torch's allocator where a GPU runs (TensorRT's I/O buffers are torch tensors; its own
activation memory and ONNX Runtime's CUDA arena are not counted). The machine (CPU model, cores, load average before and after, library
versions) is written with the results: the load average tells whether others were running.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from depth_sr_ros.tools.bench_frames import node_builder, sample_frames
from depth_sr_ros.tools.bench_machine import machine_info, machine_label
from depth_sr_ros.tools.bench_record import CLASSIC_BACKEND, BenchSettings, bench_record
from depth_sr_ros.tools.bench_report import markdown, summary
from depth_sr_ros.tools.soak import add_soak_arguments, run_soak
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    add_second_pass_argument,
    add_table_argument,
    bounded,
    check_backbone,
    output_file,
    table_type,
)

LOG = logging.getLogger(__name__)

POINT_CHOICES = ("none", "xyz", "xyzrgb")
DEFAULT_POINTS = "xyzrgb"  # the node's point_cloud_rgb default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbones", nargs="+", default=[], help="default: every backbone that can run")
    parser.add_argument("--backends", nargs="+", default=[], help="default: every backend available here")
    parser.add_argument("--height", type=bounded(int, 1), default=480, help="output (RGB) height")
    parser.add_argument("--width", type=bounded(int, 1), default=640, help="output (RGB) width")
    parser.add_argument("--scale", type=table_type("scale"), nargs="+", default=[4], help="one or more upsampling factors")
    parser.add_argument("--frames", type=bounded(int, 1), default=30, help="timed frames per record")
    parser.add_argument("--warmup", type=bounded(int, 0), default=5, help="untimed frames before them")
    parser.add_argument("--repeats", type=bounded(int, 1), default=1,
                        help="runs of --frames frames per record; figures are the median of the run medians")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--points", choices=POINT_CHOICES, default=DEFAULT_POINTS,
                        help=f"point cloud fields, or none (default {DEFAULT_POINTS}, the node's)")
    add_table_argument(parser, "--point-stride", "point_stride", "point cloud stride")
    parser.add_argument("--confidence", action="store_true",
                        help="compute the confidence map every frame (as the node does for a depth_sr/confidence "
                             "subscriber); its stage is in the overhead")
    parser.add_argument("--residual", type=float, nargs=3, metavar=("TX", "TY", "TZ"), default=None,
                        help="apply this residual pose of the depth sensor (metres, colour optical frame) to every "
                             "frame, as registration tf or an applied auto estimate does; its cost is the register stage")
    add_second_pass_argument(parser)
    parser.add_argument("--untrained", action="store_true",
                        help="time networks without shipped weights at their initial weights (speed only)")
    parser.add_argument("--cache-dir", default=None, help="ONNX/engine cache (default: the node's)")
    parser.add_argument("--json", type=Path, default=None, help="write the records as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write BENCHMARKS.md-style tables here")
    add_no_progress(parser)
    add_soak_arguments(parser)


def default_backends(device: str) -> list[str]:
    """Every backend that can run on `device` here, fastest first (`auto`'s order)."""
    from depth_sr_ros.backends import BackendConfig, plan_chain

    chain, _ = plan_chain("auto", BackendConfig(device=device))
    names: list[str] = []
    for candidate in chain:
        if candidate.device == device and candidate.name not in names:
            names.append(candidate.name)
    return names


def untrained_weights(backbone: str, scale: int, directory: Path) -> Path:
    """Weights file of the backbone's default network at its initial weights (for timing only)."""
    import torch

    from depth_sr_ros.core.backbones import get_backbone
    from depth_sr_ros.models.weights import ModelCard, save_weights

    torch.manual_seed(0)
    model = get_backbone(backbone).factory(scale=scale)
    card = ModelCard(backbone=backbone, scale=scale, notes="untrained: depth-sr bench timing only")
    return save_weights(model, directory / f"{backbone}-x{scale}-untrained.safetensors", card)


def plan_backbones(settings: BenchSettings, scale: int, scratch: Path) -> tuple[list[tuple[str, Path | None]], list[str]]:
    """(backbone, weights override) to run at `scale`, and why the others are skipped."""
    from depth_sr_ros.core.backbones import load_backbones
    from depth_sr_ros.models import zoo

    registry = load_backbones()
    names = settings.backbones or registry.names()
    plan: list[tuple[str, Path | None]] = []
    skipped: list[str] = []
    for name in names:
        spec = registry.get(name)
        if spec.kind == "classic" or zoo.find_weights(name, scale) is not None:
            plan.append((name, None))
        elif spec.requires_foundation:
            skipped.append(f"{name} x{scale}: needs foundation weights")
        elif settings.untrained:
            plan.append((name, untrained_weights(name, scale, scratch)))
        else:
            skipped.append(f"{name} x{scale}: no shipped weights (use --untrained to time it anyway)")
    return plan, skipped


def run_bench(settings: BenchSettings) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Every record for `settings`, the skipped combinations and the machine description."""
    from depth_sr_ros.core.backbones import get_backbone

    machine = machine_info()
    builder = node_builder()
    backends = settings.backends or default_backends(settings.device)
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="depth_sr_bench_") as scratch:
        for scale in settings.scales:
            frames = sample_frames(settings.height, settings.width, scale)
            bicubic = bench_record("bicubic", CLASSIC_BACKEND, scale, frames, builder, settings, None, None,
                                   f"bicubic x{scale}")
            bicubic_ms = bicubic["network_ms"]
            plan, why = plan_backbones(settings, scale, Path(scratch))
            skipped += why
            for backbone, weights in plan:
                classic = get_backbone(backbone).kind == "classic"
                for backend in [CLASSIC_BACKEND] if classic else backends:
                    label = f"{backbone} {backend} x{scale}"
                    if backbone == "bicubic":
                        bicubic["bicubic_baseline_ms"], bicubic["network_vs_bicubic"] = bicubic_ms, 1.0
                        records.append(bicubic)
                        continue
                    try:
                        record = bench_record(backbone, backend, scale, frames, builder, settings, weights,
                                              bicubic_ms, label)
                    except (FileNotFoundError, ValueError, RuntimeError) as exc:
                        skipped.append(f"{label}: {exc}")
                        LOG.warning("skipping %s: %s", label, exc)
                        continue
                    records.append(record)
    machine["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    label = machine_label(machine)
    for record in records:
        record["machine"] = label
    return records, skipped, machine


def check_args(args: argparse.Namespace) -> None:
    """UsageError naming the flag for an unknown backbone or backend or an unusable output path."""
    from depth_sr_ros.backends import load_backends

    for name in args.backbones:
        check_backbone("--backbones", name)
    known = load_backends().names()
    for name in args.backends:
        if name not in known:
            raise UsageError(f"--backends {name}: not an inference backend; choose from {', '.join(known)}")
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path:
            output_file(flag, path)


def run(args: argparse.Namespace) -> int:
    check_args(args)  # flag mistakes first, also where torch is missing
    import torch

    if args.soak:
        return run_soak(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = BenchSettings(
        backbones=list(args.backbones), backends=list(args.backends), height=args.height, width=args.width,
        scales=list(args.scale), frames=args.frames, warmup=args.warmup, repeats=args.repeats, precision=args.precision, device=device,
        points=args.points, point_stride=args.point_stride, confidence=args.confidence, untrained=args.untrained,
        engine_cache_dir=args.cache_dir, progress=not args.no_progress,
        residual_m=tuple(args.residual) if args.residual is not None else None, second_pass=not args.no_second_pass,
    )
    records, skipped, machine = run_bench(settings)
    command = "depth-sr bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": machine, "command": command, "records": records, "skipped": skipped}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(records, machine, command, skipped))
    print(f"{len(records)} records on {machine_label(machine)} (load {machine['load_average_1min']} -> "
          f"{machine['load_average_1min_after']})")
    print(summary(records))
    for line in skipped:
        print(f"skipped: {line}")
    for path in (args.json, args.markdown):
        if path:
            print(f"wrote {path}")
    return 0 if records else 1
