"""Everything the ROS 2 node decides, without ROS: parameters, topics, health, the callback body.

`depth_sr_ros.ros.node` only adapts rclpy to what is here, so all of it is tested without a ROS
installation (with `rosbags` message classes standing in for rclpy's).

Parameters
----------
`PARAMETERS` is the one table of node parameters (name, type, default, description, allowed
values or range, and when a change takes effect). The node's `ParameterDescriptor`s, the
launch file's argument choices and `config/sr.yaml` are all made from it.

Runtime changes (`plan_change`) follow one policy, by the parameter's `apply` class:
- `APPLY_REBUILD` (scale, backbone, weights, inference_backend, precision, device,
  engine_cache_dir, min_depth, max_depth): while the node is configured, the node builds a
  complete new pipeline with the new values first and swaps it in between two frames. If the
  build fails (missing weights, no CUDA, engine build error) the change is rejected with the
  build error as its reason and the old pipeline keeps running. Frames arriving during a rebuild
  wait in the subscription queues (sensor-data QoS keeps only the newest).
- `APPLY_LIVE` (output_encoding, publish_points, point_cloud_rgb, point_stride, tf_timeout):
  applied from the next frame on.
- `APPLY_ON_ACTIVATE` (queue_size, slop, exact_sync, input_mode, health_period): read when the
  node activates, because they shape the subscriptions and timers. While the node is active a
  change is refused with a reason that says to deactivate, set, and activate again.

Health
------
`HealthMonitor` counts per-input messages, synchronised pairs, published frames, end-to-end
latency (the pair's RGB header stamp to the moment of publishing, on the node's clock, so sim
time during bag replay) and per-reason frame skips, and renders a one-line summary every
`health_period` seconds.
"""

from __future__ import annotations

import math
import re
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, cast

from depth_sr_ros.core.errors import FrameError

NODE_NAME = "depth_sr_node"

from depth_sr_ros.ros.parameters import *  # noqa: F403 - moved; the node split finishes this (issue 10)
from depth_sr_ros.ros.topics import *  # noqa: F403


class ProcessorSlot:
    """Holds the live pipeline and FrameProcessor; a replacement is built first and swapped on success.

    `build` raising leaves the slot as it was, so a failed runtime rebuild keeps the old pipeline.
    """

    def __init__(
        self,
        build_pipeline: Callable[[NodeParams], Any] | None = None,
        build_processor: Callable[[Any, NodeParams], Any] | None = None,
    ) -> None:
        self._build_pipeline = build_pipeline or _build_pipeline
        self._build_processor = build_processor or _build_processor
        self.pipeline: Any = None
        self.processor: Any = None

    def build(self, params: NodeParams) -> None:
        pipeline = self._build_pipeline(params)
        processor = self._build_processor(pipeline, params)
        replacing = self.pipeline is not None
        self.pipeline, self.processor = pipeline, processor
        if replacing:  # the old pipeline is unreferenced now: hand its cached GPU memory back
            release_gpu_memory()

    def set_output(self, params: NodeParams) -> None:
        if self.pipeline is None:
            raise RuntimeError("no pipeline: configure the node first")
        self.processor = self._build_processor(self.pipeline, params)

    def release(self) -> None:
        self.pipeline = self.processor = None
        release_gpu_memory()


def _build_pipeline(params: NodeParams) -> Any:
    from depth_sr_ros.core.pipeline import DepthSR

    return DepthSR(sr_config(params))


def _build_processor(pipeline: Any, params: NodeParams) -> Any:
    from depth_sr_ros.core.frame_processor import FrameProcessor

    return FrameProcessor(pipeline, output_config(params))


def release_gpu_memory() -> None:
    """Return cached CUDA memory to the driver, only if torch is loaded and CUDA was initialised."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# Health


@dataclass(frozen=True)
class HealthReport:
    """One reporting window (rates, latency) plus running totals (counts since activation)."""

    window_s: float
    frames: int
    rate_hz: float
    latency_mean_ms: float
    latency_max_ms: float
    processing_mean_ms: float
    received: dict[str, int]
    pairs: int
    skips_window: int
    skips_total: dict[str, int]

    @property
    def unpaired(self) -> dict[str, int]:
        """Messages per input not (yet) in any pair: dropped by the synchroniser or still queued."""
        return {name: max(count - self.pairs, 0) for name, count in self.received.items()}

    @property
    def level(self) -> str:
        """ "ok", "warn" (frames skipped in this window) or "stale" (inputs but no output)."""
        if self.skips_window:
            return "warn"
        if self.frames == 0:
            return "stale"
        return "ok"

    def summary(self) -> str:
        parts = [f"{self.rate_hz:.1f} Hz out ({self.frames} frames in {self.window_s:.1f} s)"]
        if self.frames:
            parts.append(
                f"latency stamp->publish mean {self.latency_mean_ms:.1f} ms, max {self.latency_max_ms:.1f} ms"
            )
            parts.append(f"processing mean {self.processing_mean_ms:.1f} ms")
        unpaired = ", ".join(f"{name} {count}" for name, count in self.unpaired.items())
        parts.append(f"pairs {self.pairs}" + (f", unpaired {unpaired}" if unpaired else ""))
        skipped = sum(self.skips_total.values())
        if skipped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skips_total.items()))
            parts.append(f"skipped {skipped} ({reasons})")
        else:
            parts.append("skipped 0")
        return "; ".join(parts)


@dataclass
class HealthMonitor:
    """Counts what the node sees and does; `report(now)` closes a window every `period_s` seconds.

    Times are seconds on one clock (the node passes its ROS clock, sim time in replay).
    """

    period_s: float
    window_start: float = 0.0
    received: Counter[str] = field(default_factory=Counter)
    pairs: int = 0
    skips: Counter[str] = field(default_factory=Counter)
    _frames: int = 0
    _latency_sum_ms: float = 0.0
    _latency_max_ms: float = 0.0
    _processing_sum_ms: float = 0.0
    _skips_window: int = 0

    def count_input(self, topic: str) -> None:
        self.received[topic] += 1

    def count_pair(self) -> None:
        self.pairs += 1

    def count_skip(self, reason: str) -> None:
        self.skips[reason] += 1
        self._skips_window += 1

    def count_published(self, stamp_s: float, publish_s: float, processing_ms: float) -> None:
        latency_ms = (publish_s - stamp_s) * 1000.0
        self._frames += 1
        self._latency_sum_ms += latency_ms
        self._latency_max_ms = max(self._latency_max_ms, latency_ms) if self._frames > 1 else latency_ms
        self._processing_sum_ms += processing_ms

    def due(self, now_s: float) -> bool:
        return now_s - self.window_start >= self.period_s

    def report(self, now_s: float) -> HealthReport:
        window = max(now_s - self.window_start, 1e-9)
        frames = self._frames
        report = HealthReport(
            window_s=window,
            frames=frames,
            rate_hz=frames / window,
            latency_mean_ms=self._latency_sum_ms / frames if frames else math.nan,
            latency_max_ms=self._latency_max_ms if frames else math.nan,
            processing_mean_ms=self._processing_sum_ms / frames if frames else math.nan,
            received=dict(self.received),
            pairs=self.pairs,
            skips_window=self._skips_window,
            skips_total=dict(self.skips),
        )
        self.window_start = now_s
        self._frames = 0
        self._latency_sum_ms = self._latency_max_ms = self._processing_sum_ms = 0.0
        self._skips_window = 0
        return report


# ---------------------------------------------------------------------------------------------
# The sync callback body


INTERNAL_ERROR = "internal_error"  # an unexpected exception while processing one pair


class MessageFactory(Protocol):
    """What `handle_pair` needs from a `core.msg_build.MessageBuilder`."""

    def image(self, header: Any, fields: Any) -> Any: ...

    def camera_info(self, header: Any, fields: Any) -> Any: ...

    def point_cloud(self, header: Any, fields: Any) -> Any: ...


@dataclass(frozen=True)
class OutputMessages:
    """The messages to publish for one input pair, all stamped with the RGB header."""

    image: Any
    camera_info: Any
    points: Any | None
    stamp_s: float
    processing_ms: float


@dataclass(frozen=True)
class PairResult:
    """Either `messages` to publish, or `skip`: why the pair was unusable (its reason is counted)."""

    messages: OutputMessages | None = None
    skip: FrameError | None = None
    exception: Exception | None = None  # set for INTERNAL_ERROR skips, so the node can log the traceback


def stamp_seconds(header: Any) -> float:
    """A message header's stamp in seconds (`sec` + `nanosec`)."""
    return int(header.stamp.sec) + int(header.stamp.nanosec) * 1e-9


class FrameHandler:
    """Turns a synchronised input set into output messages; bad pairs are counted, never raised."""

    def __init__(self, builder: MessageFactory, health: HealthMonitor) -> None:
        self.builder = builder
        self.health = health

    def handle_pair(
        self, processor: Any, rgb: Any, rgb_info: Any, depth: Any, depth_info: Any, want_points: bool
    ) -> PairResult:
        """Depth mode: RGB image + info, depth image + info -> SR depth, info, cloud."""
        return self._run(
            rgb, lambda: _require(processor).process(rgb, rgb_info, depth, depth_info, want_points)
        )

    def handle_unaligned(
        self,
        processor: Any,
        rgb: Any,
        rgb_info: Any,
        depth: Any,
        depth_info: Any,
        extrinsic: Callable[[], Any],
        want_points: bool,
    ) -> PairResult:
        """Unaligned depth: `extrinsic()` gives the depth-camera-to-RGB transform or raises FrameError."""

        def process() -> Any:
            transform = extrinsic()
            return _require(processor).process_unaligned(
                rgb, rgb_info, depth, depth_info, transform, want_points
            )

        return self._run(rgb, process)

    def handle_lidar(
        self,
        processor: Any,
        rgb: Any,
        rgb_info: Any,
        cloud: Any,
        extrinsic: Callable[[], Any],
        want_points: bool,
    ) -> PairResult:
        """LiDAR mode: `extrinsic()` gives the cloud-to-camera transform or raises FrameError."""

        def process() -> Any:
            transform = extrinsic()
            return _require(processor).process_lidar(rgb, rgb_info, cloud, transform, want_points)

        return self._run(rgb, process)

    def _run(self, rgb: Any, process: Callable[[], Any]) -> PairResult:
        self.health.count_pair()
        start = time.perf_counter()
        try:
            out = process()
            header = rgb.header
            messages = OutputMessages(
                image=self.builder.image(header, out.image),
                camera_info=self.builder.camera_info(header, out.camera_info),
                points=None if out.points is None else self.builder.point_cloud(header, out.points),
                stamp_s=stamp_seconds(header),
                processing_ms=(time.perf_counter() - start) * 1000.0,
            )
        except FrameError as error:
            self.health.count_skip(error.reason)
            return PairResult(skip=error)
        except Exception as error:  # noqa: BLE001 - a bug or a device failure must not stop the stream
            self.health.count_skip(INTERNAL_ERROR)
            return PairResult(
                skip=FrameError(INTERNAL_ERROR, f"{type(error).__name__}: {error}"), exception=error
            )
        return PairResult(messages=messages)


def _require(processor: Any) -> Any:
    if processor is None:
        raise FrameError("not_configured", "no pipeline is loaded (the node is not configured)")
    return processor


def extrinsic_from_transform(transform: Any) -> Any:
    """`core.projection.Extrinsic` from a geometry_msgs/TransformStamped (fields only)."""
    from depth_sr_ros.core.projection import Extrinsic

    t, q = transform.transform.translation, transform.transform.rotation
    try:
        return Extrinsic.from_translation_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
    except ValueError as error:  # a zero or non-finite quaternion
        raise FrameError("bad_transform", f"unusable transform {transform.child_frame_id}: {error}") from None
