"""The node's frame path between the synchroniser and the publishers, without rclpy.

    worker = FrameWorker(slot, handler, publish, now_s, logger)   # at activation
    worker.offer(pair)                  # synchroniser callback: keep only the newest pair
    worker.request_warm_up((640, 480))  # RGB CameraInfo callback: True when the worker must run
    worker.run()                        # worker callback: warm up if asked, process the newest pair
    worker.stop()                       # deactivation: waits for the frame in flight

`run` processes only the newest pair (`frame_handler.LatestPair`): one offered while another
was waiting makes that one stale (counted as `health.STALE_PAIR`), so latency stays within one
processing time plus one input period. Bad pairs are counted by the handler and logged at most
once per reason every `skip_log_period_s` seconds (`health.SkipLog`), with how many were held back.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from depth_sr_ros.ros.frame_handler import Extrinsic, FrameHandler, FrameInputs, LatestPair, PairResult
from depth_sr_ros.ros.health import STALE_PAIR, SkipLog
from depth_sr_ros.ros.pipeline_slot import PipelineSlot, Size

SKIP_LOG_PERIOD_S = 5.0


class Logger(Protocol):
    """What the worker logs through (rclpy's node logger, or a `logging.Logger`)."""

    def info(self, message: str) -> Any: ...

    def warning(self, message: str) -> Any: ...

    def error(self, message: str) -> Any: ...


Publish = Callable[[Any, Any, Any], float]
"""(image, camera_info, points or None) -> milliseconds publishing took."""


class FrameWorker:
    """One activation's frame path: `offer` from the synchroniser, `run` from the worker thread.

    `want_points()` says whether to build the cloud; `extrinsic(rgb, source)` gives the depth
    source's pose from TF (modes that need it); `now_s()` is the node's ROS clock in seconds.
    """

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
    ) -> None:
        self.slot, self.handler, self.logger = slot, handler, logger
        self._publish, self._now_s, self._want_points = publish, now_s, want_points
        self._extrinsic = extrinsic or _no_extrinsic
        self._skip_log = SkipLog(skip_log_period_s)
        self._latest = LatestPair()
        self._warm_request: Size | None = None
        self._active = True
        self._lock = threading.Lock()

    def offer(self, pair: FrameInputs) -> None:
        self.handler.health.count_pair()
        if self._latest.put(pair):
            self.handler.health.count_skip(STALE_PAIR)

    def request_warm_up(self, size: Size) -> bool:
        """Ask `run` to warm the pipeline up for this RGB size; False when nothing is to be done."""
        if size in (self.slot.warm_size, self._warm_request):
            return False
        self._warm_request = size
        return True

    def run(self) -> None:
        with self._lock:
            size, self._warm_request = self._warm_request, None
            if size is not None and self._active:
                seconds = self.slot.warm_up(size)
                if seconds is not None:
                    self.logger.info(f"warmed up for {size[0]}x{size[1]} in {seconds:.2f} s: {self.slot.describe()}")
            while self._active and (pair := self._latest.take()) is not None:
                self._finish(self.handler.handle(self.slot.processor, pair, self._want_points(), self._extrinsic))

    def stop(self) -> None:
        """No frame is processed after this returns (the one in flight completes first)."""
        self._active = False
        with self._lock:
            self._latest.take()

    def _finish(self, result: PairResult) -> None:
        out = result.messages
        if out is None:
            self._log_skip(result)
            return
        publish_ms = self._publish(out.image, out.camera_info, out.points)
        self.handler.health.count_published(out.stamp_s, self._now_s(), out.processing_ms, out.build_ms, publish_ms)

    def _log_skip(self, result: PairResult) -> None:
        skip = result.skip
        reason = skip.reason if skip is not None else "unknown"
        held = self._skip_log.admit(reason, time.monotonic())
        if held is None:
            return
        more = f" ({held} more since the last such line)" if held else ""
        if result.exception is not None:
            trace = "".join(traceback.format_exception(result.exception))
            self.logger.error(f"frame skipped ({reason}){more}: {skip}\n{trace}")
        else:
            self.logger.warning(f"frame skipped ({reason}){more}: {skip}")


def _no_extrinsic(rgb: Any, source: Any) -> Any:
    raise ValueError("this input mode needs an extrinsic (TF) lookup and none was given")
