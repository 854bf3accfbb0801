"""`depth-sr build-engine`: build (or verify) the TensorRT engine the node will load, offline.

    depth-sr build-engine --backbone lite --scale 4 --height 480 --width 640 --precision fp16

The engine lands in the same cache, under the same key, that the node's `tensorrt` backend
looks up for this backbone, weights, output size, scale and precision, so a robot's first
frame does not wait minutes for a build. The RGB size is padded up to a multiple of the scale,
as the pipeline does. After the build the engine runs once on random inputs and is compared
with the PyTorch model on the CPU (relative max error), and the time taken and the cache path
are printed.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import numpy as np

from depth_sr_ros.tools.usage import UsageError, bounded, check_backbone, existing_file, output_dir

LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from depth_sr_ros.backends import default_cache_dir

    parser.add_argument("--backbone", required=True, help="network backbone name (see `depth-sr models`)")
    parser.add_argument("--scale", type=int, required=True, choices=(2, 4, 8, 16),
                        help="upsampling factor the weights are for")
    parser.add_argument("--weights", default=None, help="safetensors weights; default: the shipped ones")
    parser.add_argument("--height", type=bounded(int, 1), required=True, help="output (RGB) height in pixels")
    parser.add_argument("--width", type=bounded(int, 1), required=True, help="output (RGB) width in pixels")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp16")
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N")
    parser.add_argument("--workspace-mb", type=bounded(int, 1), default=2048, help="TensorRT builder workspace limit")
    parser.add_argument("--cache-dir", default=None,
                        help=f"engine cache (default: the node's, $XDG_CACHE_HOME/depth_sr_ros/engines; now {default_cache_dir()})")


def engine_shapes(height: int, width: int, scale: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(rgb, depth, mask) NCHW shapes the pipeline feeds for an H x W RGB image at `scale`."""
    rows_lr, cols_lr = math.ceil(height / scale), math.ceil(width / scale)
    lr = (1, 1, rows_lr, cols_lr)
    return ((1, 3, rows_lr * scale, cols_lr * scale), lr, lr)


def run(args: argparse.Namespace) -> int:
    from depth_sr_ros.backends import (
        Availability,
        BackendBuildError,
        BackendConfig,
        GpuOutOfMemoryError,
        default_cache_dir,
    )
    from depth_sr_ros.backends.tensorrt_backend import TensorRTBackend

    check_backbone("--backbone", args.backbone, kind="network")
    if args.weights:
        existing_file("--weights", args.weights, "weights file")
    if args.device != "cuda" and not args.device.startswith("cuda:"):
        raise UsageError(f"--device {args.device}: TensorRT engines are built on a GPU; give cuda or cuda:N")
    cache_dir = output_dir("--cache-dir", args.cache_dir) if args.cache_dir else default_cache_dir()
    here = Availability.probe()
    missing = [what for what, ok in (("the `tensorrt` Python package", here.tensorrt),
                                     ("a CUDA GPU visible to torch", here.cuda)) if not ok]
    if missing:
        raise UsageError(
            f"building a TensorRT engine needs {' and '.join(missing)}, missing here. Install "
            "TensorRT 10 for your CUDA (JetPack on Jetson), or run the node with inference_backend "
            "onnxruntime or torch."
        )
    from depth_sr_ros.models.weights import load_network

    model = load_network(args.backbone, args.scale, args.weights)  # WeightsError: exit 2 with its message
    config = BackendConfig(
        precision=args.precision,
        device=args.device,
        engine_cache_dir=cache_dir,
        strict=True,
        workspace_mb=args.workspace_mb,
    )
    shapes = engine_shapes(args.height, args.width, args.scale)
    backend = TensorRTBackend(model, config)
    started = time.perf_counter()
    try:
        outcome = backend.build_engine(shapes)
        backend.prepare(shapes)
        rng = np.random.default_rng(0)
        rgb, depth = (rng.random(s, dtype=np.float32) for s in shapes[:2])
        mask = np.ones(shapes[2], dtype=np.float32)
        engine_out = backend.run(rgb, depth, mask)
    except (BackendBuildError, GpuOutOfMemoryError, RuntimeError) as exc:
        print(f"error: {exc}")
        return 1
    seconds = time.perf_counter() - started
    import torch

    with torch.inference_mode():
        reference = model.float().cpu()(*(torch.from_numpy(a) for a in (rgb, depth, mask))).numpy()
    error = float(np.abs(engine_out - reference).max() / max(np.abs(reference).max(), 1e-12))
    rows, cols = shapes[0][2:]
    print(f"engine   {outcome.engine_path}")
    print(f"status   {'built (' + outcome.reason + ')' if outcome.built else 'already cached, loaded'}")
    print(f"shapes   rgb {cols}x{rows}, depth {shapes[1][3]}x{shapes[1][2]}, x{args.scale}, {args.precision}")
    print(f"time     {seconds:.1f} s (build or load, context, warm-up)")
    print(f"check    max relative error vs torch fp32 on the CPU: {error:.2e}")
    if error > (5e-2 if args.precision == "fp16" else 1e-3):
        print("warning: the engine disagrees with PyTorch more than expected; do not deploy it unchecked")
        return 1
    return 0
