"""The node's frame path between the synchroniser and the publishers, on a thread of its own.

    worker = FrameWorker(slot, handler, publish, now_s, logger)   # at activation
    worker.start()                      # the worker thread
    worker.offer(pair)                  # synchroniser callback: only the newest pair is kept
    worker.camera_info("rgb", info)     # CameraInfo callbacks: checked, kept, warm-up asked for
    worker.admit_image("rgb", topic, image)  # image callbacks, before the synchroniser: False = refused
    worker.stop()                       # deactivation: waits for the frame in flight, joins

Bounded latency: `offer` keeps one pair; a pair offered while another is still waiting makes
that one stale (counted as `health.STALE_PAIR`), so the node never works through a backlog and a
frame leaves at most one processing time plus one input period after its stamp.

Why a thread and not an executor callback: rclpy's executors run every callback on Python
threads that share the GIL with the executor's own loop. Frames processed on a thread of their
own leave the executor free for /clock, TF, the inputs and the services, and they do not depend
on how the executor schedules a long callback.

CameraInfo is checked when it arrives, against the pixel limit (`core/limits.py`,
`max_image_pixels`): one claiming more is skipped as `oversize` and never kept or warmed up for,
so the frame it came with uses the latest earlier CameraInfo. An image stamped 0 is refused
before the synchroniser (`zero_stamp`). The pipeline is warmed up for an RGB size when the RGB
CameraInfo and the RGB image last received both claim it, and it is the RGB stream's established
size or none is yet: one hostile message alone never makes the node prepare for its size.

Bad pairs and refused messages are counted and logged at most once per reason every
`skip_log_period_s` seconds (`health.SkipLog`), with how many were held back.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import image_size
from depth_sr_ros.core.limits import OVERSIZE
from depth_sr_ros.ros.frame_handler import Extrinsic, FrameHandler, FrameInputs, PairResult, zero_stamp_error
from depth_sr_ros.ros.health import STALE_PAIR, SkipLog
from depth_sr_ros.ros.pipeline_slot import PipelineSlot, Size

SKIP_LOG_PERIOD_S = 5.0


class Logger(Protocol):
    """What the worker logs through (rclpy's node logger, or a `logging.Logger`)."""

    def info(self, message: str) -> Any: ...

    def warning(self, message: str) -> Any: ...

    def error(self, message: str) -> Any: ...


Publish = Callable[[Any, Any, Any, Any], float]
"""(image, camera_info, points or None, confidence or None) -> milliseconds publishing took."""


class FrameWorker:
    """One activation's frame path. `want_points()` says whether to build the cloud,
    `want_confidence()` whether to build the confidence image;
    `extrinsic(rgb, source)` gives the depth source's pose from TF (the modes that need it);
    `now_s()` is the node's ROS clock in seconds (latency is measured on it)."""

    def __init__(
        self,
        slot: PipelineSlot,
        handler: FrameHandler,
        publish: Publish,
        now_s: Callable[[], float],
        logger: Logger,
        want_points: Callable[[], bool] = lambda: True,
        extrinsic: Extrinsic | None = None,
        skip_log_period_s: float = SKIP_LOG_PERIOD_S,
        want_confidence: Callable[[], bool] = lambda: False,
    ) -> None:
        self.slot, self.handler, self.logger = slot, handler, logger
        self._publish, self._now_s, self._want_points = publish, now_s, want_points
        self._want_confidence = want_confidence
        self._extrinsic = extrinsic or _no_extrinsic
        self._skip_log = SkipLog(skip_log_period_s)
        self._pending: FrameInputs | None = None
        self._warm_request: Size | None = None
        self._rgb_claims: dict[str, Size | None] = {"info": None, "image": None}  # the latest of each
        self._active = True
        self._changed = threading.Condition()
        self._busy = threading.Lock()  # held while a frame or a warm-up runs
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="depth_sr_worker", daemon=True)
        self._thread.start()

    def offer(self, pair: FrameInputs) -> None:
        self.handler.health.count_pair()
        with self._changed:
            stale, self._pending = self._pending is not None, pair
            self._changed.notify()
        if stale:
            self.handler.health.count_skip(STALE_PAIR)

    def camera_info(self, stream: str, msg: Any) -> None:
        """A CameraInfo of `stream` ("rgb" or "depth") arrived: keep it for matching unless it is
        oversize (counted, logged); an RGB one asks for a warm-up at its size (module docstring)."""
        cache = self.handler.rgb_infos if stream == "rgb" else self.handler.depth_infos
        if cache is None:
            return
        bounds = self.slot.bounds
        try:
            size: Size | None = bounds.camera_info_size(msg, f"CameraInfo on {cache.topic}")
        except FrameError as error:
            if error.reason == OVERSIZE:
                self.refuse(error)
                return
            size = None  # broken otherwise: kept, and the frame it goes with is skipped with the reason
        cache.put(msg)
        if stream == "rgb":
            self._rgb_claim("info", size)

    def admit_image(self, stream: str, topic: str, msg: Any) -> bool:
        """An image (or cloud) of `stream` arrived on `topic`: False (counted, logged) when it is
        stamped 0; an RGB image's claimed size is noted for the warm-up (module docstring)."""
        error = zero_stamp_error(topic, msg.header)
        if error is not None:
            self.refuse(error)
            return False
        if stream == "rgb":
            try:
                size: Size | None = image_size(msg)
            except FrameError:  # unreadable: the frame it goes with is skipped with the reason
                size = None
            self._rgb_claim("image", size)
        return True

    def _rgb_claim(self, kind: str, size: Size | None) -> None:
        self._rgb_claims[kind] = size
        if size is None or self._rgb_claims["info"] != self._rgb_claims["image"]:
            return
        if self.slot.bounds.established("rgb") in (None, size):
            self.request_warm_up(size)

    def refuse(self, error: FrameError) -> None:
        """An input message refused on its own (not a pair): counted by reason, logged throttled."""
        self.handler.health.count_skip(error.reason)
        self._log_skip(PairResult(skip=error), "message")

    def request_warm_up(self, size: Size) -> None:
        """Have the pipeline warmed up for this RGB size (no-op when it already is or is asked)."""
        with self._changed:
            if size not in (self.slot.warm_size, self._warm_request):
                self._warm_request = size
                self._changed.notify()

    def run(self) -> None:
        """Do what is pending now: the warm-up asked for, then the newest pair (the thread's body)."""
        with self._busy:
            with self._changed:
                size, self._warm_request = self._warm_request, None
                pair, self._pending = self._pending, None
            if not self._active:
                return
            if size is not None and (seconds := self.slot.warm_up(size)) is not None:
                self.logger.info(f"warmed up for {size[0]}x{size[1]} in {seconds:.2f} s: {self.slot.describe()}")
            if pair is not None:
                self._finish(self.handler.handle(self.slot.processor, pair, self._want_points(), self._extrinsic,
                                                 self._want_confidence()))

    def stop(self) -> None:
        """No frame is processed after this returns (the one in flight completes first)."""
        with self._changed:
            self._active = False
            self._pending = None
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()
        with self._busy:  # also when run() was called without the thread
            pass

    def _loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: not self._active or self._pending is not None
                                       or self._warm_request is not None)
                if not self._active:
                    return
            self.run()

    def _finish(self, result: PairResult) -> None:
        out = result.messages
        if out is None:
            self._log_skip(result)
            return
        publish_ms = self._publish(out.image, out.camera_info, out.points, out.confidence)
        self.handler.health.count_published(out.stamp_s, self._now_s(), out.processing_ms, out.build_ms, publish_ms)

    def _log_skip(self, result: PairResult, what: str = "frame") -> None:
        skip = result.skip
        reason = skip.reason if skip is not None else "unknown"
        held = self._skip_log.admit(reason, time.monotonic())
        if held is None:
            return
        more = f" ({held} more since the last such line)" if held else ""
        if result.exception is not None:
            trace = "".join(traceback.format_exception(result.exception))
            self.logger.error(f"{what} skipped ({reason}){more}: {skip}\n{trace}")
        else:
            self.logger.warning(f"{what} skipped ({reason}){more}: {skip}")


def _no_extrinsic(rgb: Any, source: Any) -> Any:
    raise ValueError("this input mode needs an extrinsic (TF) lookup and none was given")
