"""What the node counts and reports, without ROS: inputs, pairs, outputs, latency, skips by reason.

`HealthMonitor` is fed from three executor threads (input callbacks, the frame worker, the
health timer), so every method takes its lock. Two clocks are involved:
- the reporting window runs on a steady clock (seconds), so a health line appears every
  `period_s` even under `use_sim_time` with no `/clock` yet;
- latency is the pair's RGB header stamp to the moment of publishing, both on the node's ROS
  clock (sim time during bag replay). While that clock reads 0 (sim time, no `/clock` received)
  no latency can be known, and the report says so instead of averaging nonsense.

`SkipLog` throttles the "frame skipped" log lines per reason, so one reason flooding the log
cannot hide another, and says how many skips of that reason it left out.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field

# A dropped pair that is no fault: a newer pair replaced it before the worker got to it (the
# node processes only the newest pair; see frame_worker.FrameWorker). Counted, but it does not
# make the health level "warn".
STALE_PAIR = "stale_pair"
NOT_FAULTS = frozenset({STALE_PAIR})


@dataclass(frozen=True)
class HealthReport:
    """One reporting window (rates, latency, stage times) plus running totals since activation.

    Times in milliseconds; `latency_*` are NaN when no frame in the window had a usable clock.
    """

    window_s: float
    frames: int
    rate_hz: float
    latency_mean_ms: float
    latency_max_ms: float
    processing_mean_ms: float
    build_mean_ms: float
    publish_mean_ms: float
    received: dict[str, int]
    pairs: int
    faults_window: int
    skips_total: dict[str, int]
    paired_topics: tuple[str, ...] = ()

    @property
    def unpaired(self) -> dict[str, int]:
        """Messages per synchronised input not (yet) in a pair: dropped by the synchroniser or queued."""
        return {name: max(self.received.get(name, 0) - self.pairs, 0) for name in self.paired_topics}

    @property
    def level(self) -> str:
        """ "ok", "warn" (frames skipped for a fault in this window) or "stale" (no output)."""
        if self.faults_window:
            return "warn"
        if self.frames == 0:
            return "stale"
        return "ok"

    def summary(self) -> str:
        parts = [f"{self.rate_hz:.1f} Hz out ({self.frames} frames in {self.window_s:.1f} s)"]
        if self.frames:
            if math.isnan(self.latency_mean_ms):
                parts.append("latency unknown (the ROS clock reads 0: no /clock yet under use_sim_time)")
            else:
                parts.append(
                    f"latency stamp->publish mean {self.latency_mean_ms:.1f} ms, max {self.latency_max_ms:.1f} ms"
                )
            parts.append(
                f"processing mean {self.processing_mean_ms:.1f} ms (+ messages {self.build_mean_ms:.1f} ms, "
                f"publish {self.publish_mean_ms:.1f} ms)"
            )
        received = ", ".join(f"{name} {count}" for name, count in sorted(self.received.items()))
        parts.append(f"received {received or 'nothing'}")
        unpaired = ", ".join(f"{name} {count}" for name, count in self.unpaired.items())
        parts.append(f"pairs {self.pairs}" + (f", unpaired {unpaired}" if unpaired else ""))
        skipped = sum(self.skips_total.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skips_total.items()))
        parts.append(f"skipped {skipped}" + (f" ({reasons})" if skipped else ""))
        return "; ".join(parts)

    def diagnostic_values(self) -> list[tuple[str, str]]:
        """(key, value) pairs for a diagnostic_msgs/DiagnosticStatus."""
        values = [
            ("output rate (Hz)", f"{self.rate_hz:.2f}"),
            ("latency stamp->publish mean (ms)", f"{self.latency_mean_ms:.1f}"),
            ("latency stamp->publish max (ms)", f"{self.latency_max_ms:.1f}"),
            ("processing mean (ms)", f"{self.processing_mean_ms:.1f}"),
            ("message build mean (ms)", f"{self.build_mean_ms:.1f}"),
            ("publish mean (ms)", f"{self.publish_mean_ms:.1f}"),
            ("pairs", str(self.pairs)),
        ]
        values += [(f"received {topic}", str(count)) for topic, count in sorted(self.received.items())]
        values += [(f"unpaired {topic}", str(count)) for topic, count in self.unpaired.items()]
        values += [(f"skipped {reason}", str(count)) for reason, count in sorted(self.skips_total.items())]
        return values


@dataclass
class HealthMonitor:
    """Counts what the node sees and does; `report(now_s)` closes the window begun at `window_start`.

    `paired_topics`: the synchronised inputs (their unpaired counts are reported).
    """

    period_s: float
    window_start: float = 0.0
    paired_topics: tuple[str, ...] = ()
    received: Counter[str] = field(default_factory=Counter)
    pairs: int = 0
    skips: Counter[str] = field(default_factory=Counter)
    _frames: int = 0
    _timed_frames: int = 0
    _latency_sum_ms: float = 0.0
    _latency_max_ms: float = 0.0
    _stage_sums_ms: Counter[str] = field(default_factory=Counter)
    _faults_window: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_input(self, topic: str) -> None:
        with self._lock:
            self.received[topic] += 1

    def count_pair(self) -> None:
        with self._lock:
            self.pairs += 1

    def count_skip(self, reason: str) -> None:
        with self._lock:
            self.skips[reason] += 1
            if reason not in NOT_FAULTS:
                self._faults_window += 1

    def count_published(
        self, stamp_s: float, publish_s: float, processing_ms: float, build_ms: float, publish_ms: float
    ) -> None:
        """One published frame. `stamp_s`, `publish_s`: the RGB stamp and the publish time on the
        ROS clock (a `publish_s` of 0 means that clock is not running: no latency is taken)."""
        with self._lock:
            self._frames += 1
            self._stage_sums_ms.update({"processing": processing_ms, "build": build_ms, "publish": publish_ms})
            if publish_s > 0.0:
                latency_ms = (publish_s - stamp_s) * 1000.0
                self._timed_frames += 1
                self._latency_sum_ms += latency_ms
                first = self._timed_frames == 1
                self._latency_max_ms = latency_ms if first else max(self._latency_max_ms, latency_ms)

    def report(self, now_s: float) -> HealthReport:
        with self._lock:
            window = max(now_s - self.window_start, 1e-9)
            frames, timed = self._frames, self._timed_frames

            def mean(total: float, count: int) -> float:
                return total / count if count else math.nan

            report = HealthReport(
                window_s=window,
                frames=frames,
                rate_hz=frames / window,
                latency_mean_ms=mean(self._latency_sum_ms, timed),
                latency_max_ms=self._latency_max_ms if timed else math.nan,
                processing_mean_ms=mean(self._stage_sums_ms["processing"], frames),
                build_mean_ms=mean(self._stage_sums_ms["build"], frames),
                publish_mean_ms=mean(self._stage_sums_ms["publish"], frames),
                received=dict(self.received),
                pairs=self.pairs,
                faults_window=self._faults_window,
                skips_total=dict(self.skips),
                paired_topics=self.paired_topics,
            )
            self.window_start = now_s
            self._frames = self._timed_frames = self._faults_window = 0
            self._latency_sum_ms = self._latency_max_ms = 0.0
            self._stage_sums_ms.clear()
            return report


class SkipLog:
    """Per-reason throttle for skip log lines: at most one line per reason every `period_s` seconds."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, reason: str, now_s: float) -> int | None:
        """None when a line for `reason` was logged less than `period_s` ago (this skip is held
        back); else the number of skips of `reason` held back since that line."""
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now_s - last < self.period_s:
                self._held[reason] += 1
                return None
            self._last[reason] = now_s
            return self._held.pop(reason, 0)
