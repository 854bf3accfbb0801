"""One `depth-sr bench` record: one (backbone, backend, resolution, scale) timed stage by stage
through the node's `FrameProcessor` and `MessageBuilder`, beside its in-run baselines (a numpy
copy of each stage's bytes, bicubic for the network) and its memory. Stages and units: see
`depth_sr_ros.tools.bench`; times in milliseconds, sizes in bytes, memory in MiB.
"""

from __future__ import annotations

import dataclasses
import resource
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from depth_sr_ros.tools.bench_frames import SampleFrame

STAGES = ("decode", "register", "preprocess", "network", "postprocess", "confidence", "pointcloud", "encode",
          "msg_build")
OVERHEAD_STAGES = tuple(s for s in STAGES if s != "network")
CLASSIC_BACKEND = "numpy"


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
    confidence: bool = False  # compute the confidence map every frame (its stage is 0 otherwise)
    residual_m: tuple[float, float, float] | None = None  # a registration residual applied every frame
    second_pass: bool = True  # a network's second pass in the colour camera where the residual applies
    untrained: bool = False
    engine_cache_dir: str | None = None
    progress: bool = True


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


def stage_bytes(frame: SampleFrame, out: Any, sensor_view: bool = False, passes: int = 1) -> dict[str, int]:
    """Bytes each overhead stage reads plus writes, from the frame's actual arrays; "frame" is the
    input messages' bytes plus the output messages' (depth image and cloud). `sensor_view`: an
    applied residual went through the sensor's view (colour and output depth warped once each),
    not through the registered input; `passes`: 2 when the pipeline ran a second time in the colour
    camera (its input made from the reprojected output, then pre- and postprocessed again)."""
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
        "register": ((2 * (rgb_u8 + hr_f32) + (passes - 1) * (hr_f32 + lr_f32)) if sensor_view else 2 * lr_f32)
        if "register" in out.timings_ms else 0,
        "preprocess": passes * (rgb_u8 + lr_f32 + rgb_u8 * 4 + 2 * lr_f32),
        "postprocess": passes * (hr_f32 + hr_f32),
        "confidence": hr_f32 + hr_f32 if out.confidence is not None else 0,  # depth in, confidence out
        "pointcloud": hr_f32 + (rgb_u8 if coloured else 0) + cloud,
        "encode": hr_f32 + image,
        "msg_build": 2 * (image + cloud),
        "frame": frame.nbytes + image + cloud,
    }


def _passes(processor: Any, residual: Any) -> int:
    """How many times the processor's pipeline runs per frame (`FrameProcessor._to_colour`)."""
    from depth_sr_ros.core.sensor_view import runs_second_pass

    second = residual is not None and processor.pipeline.is_network and runs_second_pass(
        processor.pipeline.scale, processor.output.second_pass)
    return 2 if second else 1


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def build_processor(backbone: str, backend: str, scale: int, settings: BenchSettings, weights: Path | None):
    """The node's objects for one record: FrameProcessor(DepthSR(SRConfig)) and OutputConfig."""
    from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
    from depth_sr_ros.core.limits import DEFAULT_MAX_PIXELS, InputBounds
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
                          point_stride=settings.point_stride, confidence=settings.confidence,
                          second_pass=settings.second_pass)
    bounds = InputBounds(max(DEFAULT_MAX_PIXELS, settings.width * settings.height))  # the size asked for
    return FrameProcessor(DepthSR(config), output, bounds)


def time_frames(processor, frames: list[SampleFrame], builder, warmup: int, count: int, label: str,
                want_points: bool = True, progress: bool = True, residual: Any = None):
    """Per-stage times (ms) of `count` frames after `warmup`, per-frame totals, the last FrameOutput.
    `residual`: the registration residual (an `Extrinsic`) applied to every frame, or None."""
    times: dict[str, list[float]] = {stage: [] for stage in STAGES}
    totals: list[float] = []
    out = None
    for i in tqdm(range(warmup + count), desc=label, leave=False, disable=None if progress else True):
        frame = frames[i % len(frames)]
        start = time.perf_counter()
        out = processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, want_points=want_points,
                                residual=residual)
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


def network_weights(processor) -> str | None:
    """The weights file a network record ran with (given, or the shipped one DepthSR found); None
    for a classic upsampler."""
    found = processor.pipeline.network_weights
    return str(found) if found else None


def frame_alloc_peak_mb(processor, frame: SampleFrame, builder, want_points: bool = True, residual: Any = None) -> float:
    """Peak of Python/numpy allocations during one frame (tracemalloc), MiB."""
    tracemalloc.start()
    try:
        out = processor.process(frame.rgb, frame.rgb_info, frame.depth, frame.depth_info, want_points=want_points,
                                residual=residual)
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
    residual = None
    if settings.residual_m is not None:
        from depth_sr_ros.core.projection import Extrinsic

        residual = Extrinsic(np.eye(3), np.asarray(settings.residual_m, dtype=np.float64))
    cuda = settings.device.startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    run_medians: list[dict[str, float]] = []
    pooled: dict[str, list[float]] = {key: [] for key in (*STAGES, "overhead", "total")}
    copies: list[dict[str, float]] = []
    for index in range(settings.repeats):
        warmup = settings.warmup if index == 0 else 0
        times, totals, out = time_frames(processor, frames, builder, warmup, settings.frames, label,
                                         settings.points != "none", settings.progress, residual)
        times["overhead"] = [sum(times[s][i] for s in OVERHEAD_STAGES) for i in range(len(totals))]
        times["total"] = totals
        run_medians.append({key: _percentile(values, 50) for key, values in times.items()})
        for key, values in times.items():
            pooled[key] += values
        sizes = stage_bytes(frames[0], out, processor.pipeline.is_network, _passes(processor, residual))
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
        "weights": network_weights(processor),
        "untrained": bool(weights is not None),
        "height": settings.height,
        "width": settings.width,
        "scale": scale,
        "precision": settings.precision,
        "device": settings.device,
        "frames": settings.frames,
        "warmup": settings.warmup,
        "runs": settings.repeats,
        "residual_m": list(settings.residual_m) if settings.residual_m is not None else None,
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
                                                             settings.points != "none", residual), 2),
            "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        },
    }
