"""The node's self-registration (issue 19), without ROS: a background estimate within a CPU budget.

    online = OnlineRegistration(OnlineConfig(mode="auto", budget=0.05), on_change=publish)
    online.start()                          # the estimator's own thread
    online.offer(rgb, depth, intrinsics)    # frame path: a reference to the decoded frame, no copy
    residual = online.residual()            # frame path: the extrinsic to apply now, or None
    online.frozen = True                    # keep applying the current estimate, estimate no more
    online.stop()

Modes (input_mode `depth`: depth labelled as registered to the colour camera):
- "none": nothing is estimated or applied.
- "tf": the extrinsic given by `set_given` (the node's TF lookup) is applied as it is.
- "auto": until the window gives a constrained estimate, the given extrinsic (TF) is applied, or
  nothing without one; from then on the window's estimate (`core/registration_window.py`) is
  applied when it is significant, and nothing when it is constrained but not significant (the
  depth is registered as labelled). An unconstrained window (a flat scene) keeps the last
  constrained estimate.

Cost: the frame path only stores a reference (the newest frame; older offers are dropped). The
estimator thread adds the newest frame to the window (`SelfRegistration.add`) and, every
`update_every` frames added, estimates over the window (`update`). After each such job it waits
until `cpu / budget` seconds have passed since the job began, `cpu` being the job's CPU time
(`time.thread_time`: this thread only; OpenCV's own worker threads are not counted), so the
estimator's CPU is at most `budget` of wall time plus one job. The thread runs at normal priority:
a lowered one would keep the GIL from the frame thread while the OS starves it.

Frames and units: the residual maps the depth sensor's optical frame into the colour optical
frame, `p_colour = R p_depth + t` (metres, radians); `intrinsics` are the colour camera's.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.registration_estimate import PARAM_NAMES, RegistrationEstimate
from depth_sr_ros.core.registration_window import SelfRegistration, SelfRegistrationConfig
from depth_sr_ros.core.reprojection import extrinsic_params
from depth_sr_ros.ros.parameter_table import REGISTRATION_MODES


@dataclass(frozen=True)
class OnlineConfig:
    """mode: none | tf | auto; budget: the estimator's CPU seconds per wall-clock second (0, 1];
    update_every: frames added to the window between two estimates; window: the estimator's."""

    mode: str = "auto"
    budget: float = 0.05
    update_every: int = 10
    window: SelfRegistrationConfig = field(default_factory=SelfRegistrationConfig)

    def __post_init__(self) -> None:
        if self.mode not in REGISTRATION_MODES:
            raise ValueError(f"registration mode must be one of {REGISTRATION_MODES}; got {self.mode!r}")
        if not 0.0 < self.budget <= 1.0:
            raise ValueError(f"budget must be in (0, 1]; got {self.budget}")
        if self.update_every < 1:
            raise ValueError(f"update_every must be at least 1; got {self.update_every}")


@dataclass(frozen=True)
class Clocks:
    """cpu: the calling thread's CPU seconds; wall: monotonic seconds (fakes in tests)."""

    cpu: Callable[[], float] = time.thread_time
    wall: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class RegistrationStatus:
    """What the node reports. status: "off" (none), "given"/"no_transform" (tf), "waiting" (auto,
    no estimate yet), or the last estimate's "ok"/"unconstrained"; params/std: the estimate in
    use (metres, radians; NaN std where not solved); applied: a residual is applied now;
    source: where it comes from ("estimate", "tf" or "")."""

    mode: str
    status: str
    applied: bool
    source: str
    frozen: bool
    params: np.ndarray
    std: np.ndarray
    shift_px: float = 0.0
    frames_offered: int = 0
    frames_added: int = 0
    frames_used: int = 0
    frames_rejected: int = 0
    updates: int = 0
    cpu_share: float = 0.0
    note: str = ""

    def diagnostic_values(self) -> list[tuple[str, str]]:
        """(key, value) pairs for a diagnostic_msgs/DiagnosticStatus; lengths in mm, angles in mrad."""
        values = [("registration mode", self.mode), ("registration status", self.status),
                  ("registration applied", str(self.applied).lower()), ("registration source", self.source or "-"),
                  ("registration frozen", str(self.frozen).lower())]
        for name, value, std in zip(PARAM_NAMES, self.params, self.std, strict=True):
            unit = "mm" if name.startswith("t") else "mrad"
            spread = f" +- {std * 1e3:.2f}" if math.isfinite(std) else ""
            values.append((f"registration {name} ({unit})", f"{value * 1e3:.2f}{spread}"))
        values += [("registration contour shift (px)", f"{self.shift_px:.2f}"),
                   ("registration frames offered", str(self.frames_offered)),
                   ("registration frames added", str(self.frames_added)),
                   ("registration frames used", str(self.frames_used)),
                   ("registration frames rejected", str(self.frames_rejected)),
                   ("registration estimates", str(self.updates)),
                   ("registration cpu share", f"{self.cpu_share:.4f}")]
        return values + ([("registration note", self.note)] if self.note else [])


class OnlineRegistration:
    """See the module docstring. `on_change(status)` is called on the estimator's thread after
    an estimate that changes what is applied or its parameters; `estimator` replaces the
    window (tests)."""

    def __init__(self, config: OnlineConfig = OnlineConfig(), clocks: Clocks = Clocks(),
                 on_change: Callable[[RegistrationStatus], None] | None = None,
                 estimator: SelfRegistration | None = None) -> None:
        self.config = config
        self.clocks = clocks
        self.estimator = estimator if estimator is not None else SelfRegistration(config.window)
        self.frozen = False
        self._on_change = on_change
        self._given: Extrinsic | None = None
        self._given_note = ""
        self._pending: tuple[np.ndarray, np.ndarray, Any] | None = None
        self._lock = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self._next_s = -math.inf  # wall time the next job may start
        self._started_s: float | None = None
        self._cpu_s = 0.0
        self._offered = self._added = self._since_update = self._updates = 0
        self._estimate: RegistrationEstimate | None = None  # the last constrained one
        self._note = ""

    @property
    def estimate(self) -> RegistrationEstimate | None:
        """The last constrained estimate (applied when significant), or None."""
        return self._estimate

    def resume(self, estimate: RegistrationEstimate) -> None:
        """Start from `estimate`, the last activation's (the same rig): applied from the first
        frame as if this run had made it, until a new constrained estimate replaces it."""
        self._estimate = estimate
        self._note = "kept from the last activation"

    # ---------------------------------------------------------------------------- frame path

    def set_given(self, extrinsic: Extrinsic | None, note: str = "") -> None:
        """The extrinsic from TF (None: none found, `note` says why): tf's, and auto's start."""
        self._given, self._given_note = extrinsic, note

    def offer(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: Any) -> None:
        """A decoded frame (rgb H x W x 3 uint8, depth h x w metres labelled registered, colour
        intrinsics), kept by reference until the estimator takes it or a newer one replaces it."""
        if self.config.mode != "auto" or self.frozen:
            return
        with self._lock:
            self._offered += 1
            self._pending = (rgb, depth, intrinsics)
            self._lock.notify()

    def residual(self) -> Extrinsic | None:
        """The residual extrinsic to apply to the depth now (module docstring), or None."""
        if self.config.mode == "none":
            return None
        estimate = self._estimate
        if self.config.mode == "tf" or estimate is None:
            return self._given
        return estimate.extrinsic if estimate.significant else None

    # ----------------------------------------------------------------------------- estimator

    def step(self) -> bool:
        """Run one job if one is due (the estimator thread's body; tests call it directly):
        estimate when `update_every` frames were added since the last, else add the newest
        offered frame. False when nothing was due."""
        now = self.clocks.wall()
        with self._lock:
            if self.frozen or now < self._next_s:
                return False
            update = self._since_update >= self.config.update_every
            frame, self._pending = (None, self._pending) if update else (self._pending, None)
            if not update and frame is None:
                return False
        if self._started_s is None:
            self._started_s = now
        cpu = self.clocks.cpu()
        try:
            if update:
                self._update()
            else:
                assert frame is not None
                self.estimator.add(*frame)
                self._added += 1
                self._since_update += 1
        except Exception as error:  # noqa: BLE001 - a bad frame must not end the estimator; reported
            self._note = f"{'estimate' if update else 'frame'} failed: {type(error).__name__}: {error}"
        spent = max(self.clocks.cpu() - cpu, 0.0)
        self._cpu_s += spent
        with self._lock:
            self._next_s = now + spent / self.config.budget
        return True

    def _update(self) -> None:
        self._since_update = 0
        before = self._in_use()
        result = self.estimator.update()
        self._updates += 1
        self._note = "; ".join(result.notes)
        if result.status == "ok" and not self.frozen:  # one frozen while it ran is not adopted
            self._estimate = result
        notify = self._on_change
        if notify is not None and self._in_use() != before:
            notify(self.status())

    def _in_use(self) -> tuple[tuple[float, ...], bool] | None:
        """The constrained estimate's parameters and whether it is applied (what `on_change` reports)."""
        estimate = self._estimate
        return None if estimate is None else (tuple(float(v) for v in estimate.params), estimate.significant)

    def seconds_to_next(self) -> float:
        """Wall seconds until the next job may start (0: now)."""
        return max(self._next_s - self.clocks.wall(), 0.0)

    def start(self) -> None:
        """The estimator thread (auto only; the other modes estimate nothing)."""
        if self.config.mode != "auto" or self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="depth_sr_registration", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Ends the thread after the job in flight (an estimate can take seconds); after `timeout_s`
        that job is left to end on its own (a daemon thread), and reports nothing more."""
        with self._lock:
            self._running = False
            self._on_change = None
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: not self._running or (not self.frozen and (
                    self._pending is not None or self._since_update >= self.config.update_every)), 1.0)
                if not self._running:
                    return
                wait = self.seconds_to_next()
                if wait > 0:
                    self._lock.wait_for(lambda: not self._running, wait)
                    continue
            self.step()

    # -------------------------------------------------------------------------------- status

    def status(self) -> RegistrationStatus:
        """The current state for diagnostics (module docstring of `RegistrationStatus`)."""
        mode, residual, estimate = self.config.mode, self.residual(), self._estimate
        last = self.estimator.last
        if mode == "none":
            status, source = "off", ""
        elif mode == "tf" or estimate is None:
            status = ("given" if self._given is not None else "no_transform") if mode == "tf" else (
                last.status if last is not None else "waiting")
            source = "tf" if residual is not None else ""
        else:
            status, source = (last.status if last is not None else "ok"), ("estimate" if residual is not None else "")
        if estimate is not None and mode == "auto":
            params, std = estimate.params, estimate.std
        elif residual is not None:
            params, std = extrinsic_params(residual), np.full(6, np.nan)
        else:
            params, std = np.zeros(6), np.full(6, np.nan)
        elapsed = (self.clocks.wall() - self._started_s) if self._started_s is not None else 0.0
        note = self._note or (self._given_note if residual is None and mode != "none" else "")
        return RegistrationStatus(
            mode, status, residual is not None, source, self.frozen, params, std,
            shift_px=float(estimate.shift_px) if estimate is not None else 0.0,
            frames_offered=self._offered, frames_added=self._added,
            frames_used=last.frames_used if last is not None else 0,
            frames_rejected=last.frames_rejected if last is not None else 0,
            updates=self._updates, cpu_share=self._cpu_s / elapsed if elapsed > 0 else 0.0, note=note)
