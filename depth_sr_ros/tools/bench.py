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
  preprocess  resampling, hole fill, normalisation, NCHW tensors    (DepthSR)
  network     the backbone (a network via its inference backend, or a classic upsampler)
  postprocess de-normalise, crop, hole policy                       (DepthSR)
  pointcloud  organised PointCloud2 fields                          (FrameProcessor)
  encode      depth -> Image fields, CameraInfo rescaled            (FrameProcessor)
  msg_build   field sets -> Image, CameraInfo, PointCloud2 messages (MessageBuilder)

Median and p90 over `--frames` frames after `--warmup` frames; with `--repeats R` each record
is timed R times and its figures are the median of the R run medians (p90 over all frames). Baselines measured in the same
run, beside every figure: the network against bicubic upsampling of the same frames (the
`bicubic` backbone's network stage), and every other stage against one numpy copy of the bytes
that stage reads plus the bytes it writes. The whole-frame copy baseline copies the input
messages' bytes plus the output messages' bytes (depth image and point cloud). Memory: the
process's peak RSS after the record, the peak of Python/numpy allocations during one frame
(tracemalloc; memory held inside ONNX Runtime or torch is not seen by it), and the CUDA peak
of torch's allocator where a GPU runs (TensorRT's I/O buffers are torch tensors; its own
activation memory and ONNX Runtime's CUDA arena are not counted). The machine (CPU model, cores, load average before and after, library
versions) is written with the results: the load average tells whether others were running.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from depth_sr_ros.tools.soak import add_soak_arguments, run_soak
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    add_table_argument,
    bounded,
    check_backbone,
    output_file,
    table_type,
)

LOG = logging.getLogger(__name__)

STAGES = ("decode", "preprocess", "network", "postprocess", "pointcloud", "encode", "msg_build")
OVERHEAD_STAGES = tuple(s for s in STAGES if s != "network")
CLASSIC_BACKEND = "numpy"
POINT_CHOICES = ("none", "xyz", "xyzrgb")
DEFAULT_POINTS = "xyzrgb"  # the node's point_cloud_rgb default


@dataclass
class BenchSettings:
    """What to measure. Empty `backbones`/`backends` mean every one that can run here."""

    backbones: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    height: int = 480
    width: int = 640
    scales: list[int] = field(default_factory=lambda: [4])
    frames: int = 30
    warmup: int = 5
    repeats: int = 1
    precision: str = "fp32"
    device: str = "cpu"
    points: str = "xyzrgb"  # "none", "xyz" or "xyzrgb" (the node's default)
    point_stride: int = 1
    untrained: bool = False
    engine_cache_dir: str | None = None
    progress: bool = True


@dataclass
class SampleFrame:
    """One synchronised quadruple of rosbags messages."""

    rgb: Any
    rgb_info: Any
    depth: Any
    depth_info: Any

    @property
    def nbytes(self) -> int:
        return int(self.rgb.data.nbytes + self.depth.data.nbytes)


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
    parser.add_argument("--untrained", action="store_true",
                        help="time networks without shipped weights at their initial weights (speed only)")
    parser.add_argument("--cache-dir", default=None, help="ONNX/engine cache (default: the node's)")
    parser.add_argument("--json", type=Path, default=None, help="write the records as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write BENCHMARKS.md-style tables here")
    add_no_progress(parser)
    add_soak_arguments(parser)


# ---------------------------------------------------------------- sample messages


def sample_frames(height: int, width: int, scale: int, typestore: str = "humble") -> list[SampleFrame]:
    """The sample frames as rosbags messages: `width`x`height` rgb8, depth 16UC1 at 1/`scale`."""
    from depth_sr_ros.core.camera_info import scaled_camera_info_fields
    from depth_sr_ros.core.image_msg import ImageFields
    from depth_sr_ros.core.msg_build import rosbags_builder
    from depth_sr_ros.replay.bag_io import load_typestore
    from depth_sr_ros.replay.sample_bag import (
        FRAMES,
        FRAMES_WITHOUT_DEPTH,
        SAMPLE_DIR,
        decimate_depth,
        read_sample_depth_mm,
        read_sample_rgb,
        rgb_camera_info,
    )

    store = load_typestore(typestore)
    build = rosbags_builder(store)
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="camera_color_optical_frame"
    )
    native_info = build.camera_info(header, rgb_camera_info(SAMPLE_DIR / "intrinsics.json"))
    rgb_info = build.camera_info(header, scaled_camera_info_fields(native_info, width, height))
    rows_lr, cols_lr = math.ceil(height / scale), math.ceil(width / scale)
    depth_info = build.camera_info(header, scaled_camera_info_fields(native_info, cols_lr, rows_lr))

    frames = []
    for name in FRAMES:
        if name in FRAMES_WITHOUT_DEPTH:
            continue
        rgb = read_sample_rgb(SAMPLE_DIR, name)
        depth_mm = read_sample_depth_mm(SAMPLE_DIR, name)
        if rgb.shape[:2] != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            depth_mm = cv2.resize(depth_mm, (width, height), interpolation=cv2.INTER_NEAREST)
        if scale % 2 == 0 and height % scale == 0 and width % scale == 0:
            depth_lr = decimate_depth(depth_mm, scale)
        else:
            depth_lr = cv2.resize(depth_mm, (cols_lr, rows_lr), interpolation=cv2.INTER_NEAREST)
        depth_lr = np.ascontiguousarray(depth_lr.astype("<u2"))
        rgb_fields = ImageFields(height, width, "rgb8", 0, width * 3, np.ascontiguousarray(rgb).reshape(-1))
        depth_fields = ImageFields(rows_lr, cols_lr, "16UC1", 0, cols_lr * 2, depth_lr.view(np.uint8).reshape(-1))
        frames.append(
            SampleFrame(build.image(header, rgb_fields), rgb_info, build.image(header, depth_fields), depth_info)
        )
    return frames


# ---------------------------------------------------------------- machine and baselines


def machine_info() -> dict[str, Any]:
    """CPU model, cores, load, library versions, GPU: what a benchmark row must name."""
    import onnxruntime
    import torch

    from depth_sr_ros.backends import BackendConfig, cpu_threads

    cpu, detail = platform.processor() or platform.machine(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "cpu family", "model", "cpu MHz", "flags") and key not in detail:
                detail[key] = value
        cpu = detail.get("model name", cpu)
    except OSError:
        pass
    simd = [flag for flag in ("avx2", "fma", "avx512f", "avx512_vnni", "neon") if flag in detail.get("flags", "").split()]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_detail": (
            f"family {detail.get('cpu family', '?')} model {detail.get('model', '?')}, "
            f"{float(detail.get('cpu MHz', 'nan')):.0f} MHz, {'/'.join(simd) or 'no AVX2'}"
        ),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "backend_cpu_threads": cpu_threads(BackendConfig(device="cpu")),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    return info


def machine_label(info: dict[str, Any]) -> str:
    gpu = f", {info['gpu']}" if info.get("gpu") else ", no GPU"
    return f"{info['cpu']} ({info['usable_cores']} cores){gpu}"


def copy_ms(nbytes: int, repeats: int = 15) -> float:
    """Median time of one numpy copy of `nbytes` bytes (fresh source and destination buffers)."""
    if nbytes <= 0:
        return 0.0
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def stage_bytes(frame: SampleFrame, out: Any) -> dict[str, int]:
    """Bytes each overhead stage reads plus writes, from the frame's actual arrays; "frame" is the
    input messages' bytes plus the output messages' (depth image and cloud)."""
    rows, cols = out.depth.shape
    hr_f32 = rows * cols * 4
    rgb_u8 = int(frame.rgb.data.nbytes)
    depth_in = int(frame.depth.data.nbytes)
    lr_f32 = int(frame.depth.height * frame.depth.width * 4)
    cloud = int(out.points.data.nbytes) if out.points is not None else 0
    image = int(out.image.data.nbytes)
    coloured = out.points is not None and any(f.name == "rgb" for f in out.points.fields)
    return {
        "decode": rgb_u8 + depth_in + rgb_u8 + lr_f32,
        "preprocess": rgb_u8 + lr_f32 + rgb_u8 * 4 + 2 * lr_f32,
        "postprocess": hr_f32 + hr_f32,
        "pointcloud": hr_f32 + (rgb_u8 if coloured else 0) + cloud,
        "encode": hr_f32 + image,
        "msg_build": 2 * (image + cloud),
        "frame": frame.nbytes + image + cloud,
    }


# ---------------------------------------------------------------- one record


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def build_processor(backbone: str, backend: str, scale: int, settings: BenchSettings, weights: Path | None):
    """The node's objects for one record: FrameProcessor(DepthSR(SRConfig)) and OutputConfig."""
    from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
    from depth_sr_ros.core.pipeline import DepthSR, SRConfig

    config = SRConfig(
        scale=scale,
        backbone=backbone,
        weights=str(weights) if weights else None,
        inference_backend=backend if backend != CLASSIC_BACKEND else "auto",
        precision=settings.precision,
        device=settings.device,
    )
    if settings.engine_cache_dir:
        config = dataclasses.replace(config, engine_cache_dir=settings.engine_cache_dir)
    output = OutputConfig(output_encoding="32FC1", point_cloud_rgb=settings.points == "xyzrgb",
                          point_stride=settings.point_stride)
    return FrameProcessor(DepthSR(config), output)


def time_frames(processor, frames: list[SampleFrame], builder, warmup: int, count: int, label: str,
                want_points: bool = True, progress: bool = True):
    """Per-stage times (ms) of `count` frames after `warmup`, per-frame totals, the last FrameOutput."""
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    totals: list[float] = []
    out = None
    for i in tqdm(range(warmup + count), desc=label, leave=False, disable=None if progress else True):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        out = processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, want_points=want_points)
        mark = time.perf_counter()
        header = frame.rgb.header
        builder.image(header, out.image)
        builder.camera_info(header, out.camera_info)
        if out.points is not None:
            builder.point_cloud(header, out.points)
        end = time.perf_counter()
        if i < warmup:
            continue
        stage_ms = {stage: float(out.timings_ms.get(stage, 0.0)) for stage in STAGES}
        stage_ms["msg_build"] = (end - mark) * 1e3
        for stage in STAGES:
            times[stage].append(stage_ms[stage])
        totals.append((end - start) * 1e3)
    return times, totals, out


def shipped_or_given_weights(processor, backbone: str, scale: int, weights: Path | None) -> str | None:
    """The weights file a network record ran with (given, or the shipped one DepthSR found)."""
    from depth_sr_ros.models import zoo

    if not hasattr(processor.pipeline.upsampler, "backend"):
        return None
    found = weights or processor.pipeline.weights or zoo.find_weights(backbone, scale)
    return str(found) if found else None


def frame_alloc_peak_mb(processor, frame: SampleFrame, builder, want_points: bool = True) -> float:
    """Peak of Python/numpy allocations during one frame (tracemalloc), MiB."""
    tracemalloc.start()
    try:
        out = processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, want_points=want_points)
        builder.image(frame.rgb.header, out.image)
        if out.points is not None:
            builder.point_cloud(frame.rgb.header, out.points)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def bench_record(
    backbone: str, backend: str, scale: int, frames: list[SampleFrame], builder, settings: BenchSettings,
    weights: Path | None, bicubic_ms: float | None, label: str,
) -> dict[str, Any]:
    """Time one (backbone, backend, resolution, scale) and summarise it as one JSON record."""
    import torch

    processor = build_processor(backbone, backend, scale, settings, weights)
    cuda = settings.device.startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    run_medians: list[dict[str, float]] = []
    pooled: dict[str, list[float]] = {key: [] for key in (*STAGES, "overhead", "total")}
    copies: list[dict[str, float]] = []
    for index in range(settings.repeats):
        warmup = settings.warmup if index == 0 else 0
        times, totals, out = time_frames(processor, frames, builder, warmup, settings.frames, label,
                                         settings.points != "none", settings.progress)
        times["overhead"] = [sum(times[s][i] for s in OVERHEAD_STAGES) for i in range(len(totals))]
        times["total"] = totals
        run_medians.append({key: _percentile(values, 50) for key, values in times.items()})
        for key, values in times.items():
            pooled[key] += values
        sizes = stage_bytes(frames[0], out)
        copies.append({key: copy_ms(nbytes) for key, nbytes in sizes.items()})

    def median(key: str, runs: list[dict[str, float]] = run_medians) -> float:
        return float(np.median([run[key] for run in runs]))

    upsampler = processor.pipeline.upsampler
    detail = upsampler.backend.describe() if hasattr(upsampler, "backend") else CLASSIC_BACKEND
    network_ms, overhead_ms, total_ms = median("network"), median("overhead"), median("total")
    frame_copy = median("frame", copies)
    return {
        "backbone": backbone,
        "backend": backend,
        "backend_detail": detail,
        "weights": shipped_or_given_weights(processor, backbone, scale, weights),
        "untrained": bool(weights is not None),
        "height": settings.height,
        "width": settings.width,
        "scale": scale,
        "precision": settings.precision,
        "device": settings.device,
        "frames": settings.frames,
        "warmup": settings.warmup,
        "runs": settings.repeats,
        "stages_ms": {s: round(median(s), 4) for s in STAGES},
        "stages_p90_ms": {s: round(_percentile(pooled[s], 90), 4) for s in STAGES},
        "network_ms": round(network_ms, 4),
        "network_p90_ms": round(_percentile(pooled["network"], 90), 4),
        "bicubic_baseline_ms": round(bicubic_ms, 4) if bicubic_ms is not None else None,
        "network_vs_bicubic": round(network_ms / bicubic_ms, 2) if bicubic_ms else None,
        "overhead_ms": round(overhead_ms, 4),
        "overhead_p90_ms": round(_percentile(pooled["overhead"], 90), 4),
        "copy_baseline_ms": round(frame_copy, 4),
        "overhead_vs_copy": round(overhead_ms / frame_copy, 1) if frame_copy else None,
        "stage_copy_baseline_ms": {s: round(median(s, copies), 4) for s in OVERHEAD_STAGES},
        "bytes": sizes,
        "run_medians_ms": {k: [round(run[k], 3) for run in run_medians] for k in ("network", "overhead", "total")},
        "total_ms": round(total_ms, 4),
        "total_p90_ms": round(_percentile(pooled["total"], 90), 4),
        "fps": round(1e3 / total_ms, 2) if total_ms else None,
        "memory": {
            "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "frame_alloc_peak_mb": round(frame_alloc_peak_mb(processor, frames[0], builder,
                                                             settings.points != "none"), 2),
            "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        },
    }


# ---------------------------------------------------------------- what to run


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


def node_builder(typestore: str = "humble"):
    """The node's MessageBuilder adapters (rclpy) over the rosbags message classes."""
    from depth_sr_ros.core.msg_build import MESSAGE_KEYS, MessageBuilder
    from depth_sr_ros.replay.bag_io import load_typestore
    from depth_sr_ros.ros.rclpy_messages import float_list, uint8_array

    store = load_typestore(typestore)
    types = {key: store.types[f"sensor_msgs/msg/{key}"] for key in MESSAGE_KEYS}
    return MessageBuilder(types, data_adapter=uint8_array, float_array_adapter=float_list)


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


# ---------------------------------------------------------------- reports


def markdown(records: list[dict[str, Any]], machine: dict[str, Any], command: str, skipped: list[str]) -> str:
    """Two tables (totals, then overhead stages against their copy baselines) naming the machine."""
    lines = [
        f"Machine: {machine_label(machine)} [{machine['cpu_detail']}]; {machine['backend_cpu_threads']} inference thread(s); torch {machine['torch']}, "
        f"onnxruntime {machine['onnxruntime']}, numpy {machine['numpy']}, OpenCV {machine['opencv']}"
        + (f", TensorRT {machine['tensorrt']}" if machine.get("tensorrt") else "")
        + f". Load average {machine['load_average_1min']} before, {machine['load_average_1min_after']} after.",
        "",
        f"Command: `{command}`",
        "",
        (
            "| backbone | backend (runs on) | output | scale | network ms (p90) | bicubic ms | overhead ms (p90) "
            "| copy baseline ms | overhead / copy | FPS | peak RSS MB |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['backbone']}{' (untrained)' if r['untrained'] else ''} | {r['backend']} ({r['backend_detail']}) "
            f"| {r['width']}x{r['height']} | x{r['scale']} | {r['network_ms']:.2f} ({r['network_p90_ms']:.2f}) "
            f"| {r['bicubic_baseline_ms']:.2f} | {r['overhead_ms']:.2f} ({r['overhead_p90_ms']:.2f}) "
            f"| {r['copy_baseline_ms']:.3f} | {r['overhead_vs_copy']:.1f} | {r['fps']:.1f} "
            f"| {r['memory']['rss_peak_mb']:.0f} |"
        )
    lines += [
        "",
        "Overhead stages, median ms (numpy copy of the stage's bytes read + written, ms):",
        "",
        "| backbone | backend | scale | " + " | ".join(OVERHEAD_STAGES) + " |",
        "|---|---|---|" + "---|" * len(OVERHEAD_STAGES),
    ]
    for r in records:
        cells = [f"{r['stages_ms'][s]:.2f} ({r['stage_copy_baseline_ms'][s]:.3f})" for s in OVERHEAD_STAGES]
        lines.append(f"| {r['backbone']} | {r['backend']} | x{r['scale']} | " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Not measured: " + "; ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


def summary(records: list[dict[str, Any]]) -> str:
    rows = [
        f"{r['backbone']:>16} {r['backend']:>12} x{r['scale']:<2} network {r['network_ms']:8.2f} ms  "
        f"overhead {r['overhead_ms']:6.2f} ms ({r['overhead_vs_copy']:.0f}x copy)  {r['fps']:6.1f} FPS"
        for r in records
    ]
    return "\n".join(rows)


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
        points=args.points, point_stride=args.point_stride, untrained=args.untrained,
        engine_cache_dir=args.cache_dir, progress=not args.no_progress,
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
