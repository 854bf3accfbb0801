"""The node's live pipeline, without ROS: built and warmed up before it is swapped in.

The slot also holds the node's `InputBounds` (`core/limits.py`): the pixel limit
(`max_image_pixels`) and the sizes of the input streams since their first good frame, shared by
every FrameProcessor it builds and by the CameraInfo intake, so a rebuild keeps them.

`PipelineSlot.build(params)` builds a complete pipeline (model, weights, inference backend) and,
when the RGB size is known (`input_width`/`input_height`, or the size the slot last ran at),
warms it up there: the ONNX Runtime session or TensorRT engine is built and run once, so the
first frame does not wait for it. Only then is it swapped in; a failed build leaves the slot as
it was. `warm_up(width, height)` does the same for a running pipeline when the first RGB
CameraInfo tells the size. `describe()` says what actually runs, e.g.
"backbone lite x4 (lite_x4.safetensors) on onnxruntime[CPUExecutionProvider], 1 thread, cpu, fp32",
and for `backbone: auto` why it runs that, e.g. "backbone bicubic x2 on numpy/OpenCV, cpu; auto: no
trained model for x2: classic fallback bicubic".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from depth_sr_ros.core.limits import InputBounds
from depth_sr_ros.ros.parameters import NodeParams, output_config, sr_config

Size = tuple[int, int]  # (width, height) of the RGB image in pixels


class PipelineSlot:
    """Holds the live pipeline and FrameProcessor; a replacement is built first and swapped on success.

    The worker reads `processor` once per frame, so a swap takes effect between two frames.
    """

    def __init__(
        self,
        build_pipeline: Callable[[NodeParams], Any] | None = None,
        build_processor: Callable[[Any, NodeParams, InputBounds], Any] | None = None,
    ) -> None:
        self._build_pipeline = build_pipeline or _build_pipeline
        self._build_processor = build_processor or _build_processor
        self.bounds = InputBounds()
        self.pipeline: Any = None
        self.processor: Any = None
        self.warm_size: Size | None = None  # the RGB size the live pipeline is built for

    def build(self, params: NodeParams) -> float | None:
        """Build (and warm up, when a size is known) a new pipeline, then swap it in.

        Returns the warm-up time in seconds, or None when no size was known. Raises whatever
        the build raises (missing weights, no CUDA, engine build error); the slot is unchanged then.
        """
        pipeline = self._build_pipeline(params)
        processor = self._build_processor(pipeline, params, self.bounds)
        size = (params.input_width, params.input_height) if params.input_width else self.warm_size
        seconds = None if size is None else warm_up(pipeline, size)
        replacing = self.pipeline is not None
        self.pipeline, self.processor, self.warm_size = pipeline, processor, size
        self.bounds.max_pixels = params.max_image_pixels
        if replacing:  # the old pipeline is unreferenced now: hand its cached GPU memory back
            release_gpu_memory()
        return seconds

    def warm_up(self, size: Size) -> float | None:
        """Warm the live pipeline up for `size` unless it already is; seconds taken, or None."""
        if self.pipeline is None or size == self.warm_size:
            return None
        seconds = warm_up(self.pipeline, size)
        self.warm_size = size
        return seconds

    def set_output(self, params: NodeParams) -> None:
        if self.pipeline is None:
            raise RuntimeError("no pipeline: configure the node first")
        self.processor = self._build_processor(self.pipeline, params, self.bounds)
        self.bounds.max_pixels = params.max_image_pixels

    def release(self) -> None:
        self.pipeline = self.processor = self.warm_size = None
        release_gpu_memory()

    def describe(self) -> str:
        return "no pipeline" if self.pipeline is None else describe_pipeline(self.pipeline)


def warm_up(pipeline: Any, size: Size) -> float:
    """Run `pipeline` once on a synthetic frame of `size` (a depth ramp from 1 to 3 m on the
    model grid), and its second pass's own network when it has one: backends build their session
    or engine for these shapes. Seconds taken."""
    from depth_sr_ros.core.resample import grid_shape

    width, height = size
    start = time.perf_counter()
    rows, cols = grid_shape((height, width), pipeline.scale)
    depth = np.linspace(1.0, 3.0, rows * cols, dtype=np.float32).reshape(rows, cols)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    pipeline.process(rgb, depth)
    if pipeline.second_pass_weights is not None:
        pipeline.process(rgb, depth, second_pass=True)
    return time.perf_counter() - start


def describe_pipeline(pipeline: Any) -> str:
    """What runs: backbone, scale, weights file, and for a network the backend that was built
    (its execution provider), CPU threads, device and precision."""
    backend = getattr(pipeline.upsampler, "backend", None)
    if backend is None:
        return f"backbone {pipeline.backbone_name} x{pipeline.scale} on numpy/OpenCV, cpu" + _auto_note(pipeline)
    from depth_sr_ros.backends import cpu_threads

    weights = pipeline.network_weights
    head = f"backbone {pipeline.backbone_name} x{pipeline.scale}" + (f" ({Path(weights).name}" if weights else "")
    second = pipeline.second_pass_weights
    head += (f"; second pass {Path(second).name}" if second else "") + (")" if weights else "")

    active = getattr(backend, "active", backend)  # FallbackBackend: the candidate that built
    config = active.config
    threads = cpu_threads(config)
    cpu = f", {threads} thread{'s' if threads > 1 else ''}" if config.device == "cpu" else ""
    if active.shapes is None:  # nothing built yet: the backend it will try first
        return (f"{head} on {active.name} (built at the first RGB frame){cpu}, {config.device}, "
                f"{config.precision}{_auto_note(pipeline)}")
    return f"{head} on {active.describe()}{cpu}, {config.device}, {config.precision}{_auto_note(pipeline)}"


def _auto_note(pipeline: Any) -> str:
    """"; auto: <why>" when `backbone: auto` chose the backbone (zoo.auto_choice: e.g. "no trained
    model for x2: classic fallback bicubic"), else ""."""
    if getattr(getattr(pipeline, "config", None), "backbone", None) != "auto":
        return ""
    from depth_sr_ros.models.zoo import auto_choice

    return f"; auto: {auto_choice(pipeline.scale).reason}"


def _build_pipeline(params: NodeParams) -> Any:
    from depth_sr_ros.core.pipeline import DepthSR

    return DepthSR(sr_config(params))


def _build_processor(pipeline: Any, params: NodeParams, bounds: InputBounds) -> Any:
    from depth_sr_ros.core.frame_processor import FrameProcessor

    return FrameProcessor(pipeline, output_config(params), bounds)


def release_gpu_memory() -> None:
    """Return cached CUDA memory to the driver, only if torch is loaded and CUDA was initialised."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
