"""The node's online self-registration without ROS (ros/online_registration.py).

Convergence and "registered input is left alone" on real held-out rgbdd_dev frames whose depth is
rendered as a sensor beside the camera sees it (test_self_registration's frames); the scheduling
(budget, frozen, modes) with a fake window and fake clocks, so nothing depends on this machine's
speed.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_node_logic import _handle, _handler, _processor, _quadruple, frames  # noqa: F401 - frames: a fixture
from test_self_registration import SCALE, TOLERANCE_M, _data, _sensor_lr

from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.core.registration_estimate import RegistrationEstimate
from depth_sr_ros.core.reprojection import assumed_intrinsics, extrinsic_from_params, extrinsic_params
from depth_sr_ros.ros.online_registration import Clocks, OnlineConfig, OnlineRegistration, RegistrationStatus

TF_START = extrinsic_from_params([0.02, 0.0, 0.0, 0.0, 0.0, 0.0])  # a calibration that is off


def _feed(online: OnlineRegistration, baseline: tuple[float, float, float]) -> None:
    """Offer the held-out frames seen by a sensor at `baseline`, running every job that is due."""
    params = np.array([*baseline, 0.0, 0.0, 0.0])
    for frame in _data("rgbdd"):
        lr = _sensor_lr(frame.depth, params)
        camera = assumed_intrinsics(lr.shape[1] * SCALE, lr.shape[0] * SCALE)
        online.offer(frame.rgb[: camera.height, : camera.width], lr, camera)
        while online.step():
            pass


class _Ticking:
    """A wall clock that jumps an hour per reading: every job is due (the budget is not tested here)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 3600.0
        return self.now


def test_auto_starts_from_tf_and_converges_to_the_sensor_pose() -> None:
    changes: list[RegistrationStatus] = []
    online = OnlineRegistration(OnlineConfig(budget=1.0, update_every=8), Clocks(wall=_Ticking()), changes.append)
    online.set_given(TF_START)
    assert online.residual() is TF_START and online.status().status == "waiting"
    _feed(online, (0.05, -0.02, 0.0))
    residual = online.residual()
    assert residual is not None and residual is not TF_START
    assert np.abs(residual.translation - [0.05, -0.02, 0.0]).max() <= TOLERANCE_M, residual.translation
    status = online.status()
    assert (status.status, status.applied, status.source) == ("ok", True, "estimate")
    assert status.frames_added == status.frames_offered == 16 and status.updates == 2
    assert changes and changes[-1].applied
    np.testing.assert_allclose(changes[-1].params, extrinsic_params(residual), atol=1e-9)
    values = dict(status.diagnostic_values())
    assert values["registration applied"] == "true" and "+-" in values["registration tx (mm)"]


def test_registered_frames_get_an_estimate_that_is_not_applied() -> None:
    online = OnlineRegistration(OnlineConfig(budget=1.0, update_every=16), Clocks(wall=_Ticking()))
    online.set_given(TF_START)  # a wrong calibration: the estimate says the depth is registered
    _feed(online, (0.0, 0.0, 0.0))
    status = online.status()
    assert status.status == "ok" and status.updates == 1
    assert online.residual() is None and not status.applied, status


# ------------------------------------------------------------------- scheduling (fake window)


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _FakeWindow:
    """Stands in for SelfRegistration: each add/update spends fake CPU time; estimates a fixed pose."""

    def __init__(self, cpu: _FakeClock, add_s: float, update_s: float) -> None:
        self.cpu, self.add_s, self.update_s = cpu, add_s, update_s
        self.adds = self.updates = 0
        self.last: RegistrationEstimate | None = None
        self.fail = False

    def add(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: object) -> int:
        self.cpu.now += self.add_s
        if self.fail:
            raise ValueError("broken frame")
        self.adds += 1
        return 100

    def update(self) -> RegistrationEstimate:
        self.cpu.now += self.update_s
        self.updates += 1
        self.last = RegistrationEstimate(np.array([0.03, 0.01, 0, 0, 0, 0]), np.full(6, 0.001), ("tx", "ty"), "ok",
                                         10, 0, 5.0, True)
        return self.last


def _run(budget: float, count: int = 3000, rate_hz: float = 30.0,
         kept: RegistrationEstimate | None = None) -> tuple[OnlineRegistration, _FakeWindow, float]:
    """`count` frames offered at `rate_hz` (fake wall clock), a step after each, resumed from
    `kept` when given; (online, window, CPU charged)."""
    wall, cpu = _FakeClock(), _FakeClock()
    window = _FakeWindow(cpu, add_s=0.02, update_s=2.0)
    online = OnlineRegistration(OnlineConfig(budget=budget), Clocks(cpu=cpu, wall=wall),
                                estimator=window)  # type: ignore[arg-type]
    if kept is not None:
        online.resume(kept)
    image = np.zeros((4, 4, 3), np.uint8)
    for index in range(count):
        wall.now = index / rate_hz
        online.offer(image, np.ones((1, 1), np.float32), None)
        online.step()
    return online, window, cpu.now


def test_the_estimator_stays_within_its_cpu_budget() -> None:
    online, window, spent = _run(budget=0.05)
    elapsed = 3000 / 30.0
    assert spent <= 0.05 * elapsed + window.update_s  # the budget, plus the one job that overruns it
    assert 0 < window.updates and 0 < window.adds < 3000 / 50  # most offered frames are never taken
    assert online.status().frames_offered == 3000
    assert online.status().cpu_share == pytest.approx(spent / (2999 / 30.0))  # the first job began at 0
    _, more, _ = _run(budget=0.5)
    assert more.adds > 5 * window.adds and more.updates > 5 * window.updates


def test_frozen_keeps_the_estimate_and_stops_estimating() -> None:
    online, window, _ = _run(budget=1.0, count=300)
    applied = online.residual()
    assert applied is not None and window.updates >= 1
    online.frozen = True
    adds, updates = window.adds, window.updates
    for _ in range(100):
        online.offer(np.zeros((4, 4, 3), np.uint8), np.ones((1, 1), np.float32), None)
        assert not online.step()
    assert (window.adds, window.updates) == (adds, updates)
    assert online.residual() is not None
    np.testing.assert_array_equal(online.residual().translation, applied.translation)
    assert online.status().frozen and online.status().applied


def test_a_kept_estimate_is_applied_from_the_first_frame_until_a_new_one_replaces_it() -> None:
    kept = RegistrationEstimate(np.array([0.05, -0.02, 0, 0, 0, 0]), np.full(6, 0.001), ("tx", "ty"), "ok",
                                10, 0, 8.0, True)  # the last activation's; the fake window finds (0.03, 0.01)
    resumed, window, _ = _run(budget=1.0, count=0, kept=kept)
    assert window.adds == 0 and resumed.residual() is not None  # before any frame of its own
    np.testing.assert_array_equal(resumed.residual().translation, [0.05, -0.02, 0.0])
    assert dict(resumed.status().diagnostic_values())["registration note"] == "kept from the last activation"
    resumed, window, _ = _run(budget=1.0, count=300, kept=kept)
    assert window.updates >= 1
    np.testing.assert_array_equal(resumed.residual().translation, [0.03, 0.01, 0.0])


def test_an_estimate_that_ends_after_freezing_is_not_adopted() -> None:
    online, window, _ = _run(budget=1.0, count=300)
    applied = online.residual()
    assert applied is not None
    finish = window.update

    def moved() -> RegistrationEstimate:  # freezing arrives while this estimate runs
        online.frozen = True
        result = finish()
        result.params = np.array([0.09, 0.0, 0.0, 0.0, 0.0, 0.0])
        return result

    window.update = moved  # type: ignore[method-assign]
    online._since_update = online.config.update_every
    online.frozen = False
    online.clocks.wall.now += 3600.0  # type: ignore[attr-defined]
    assert online.step()
    np.testing.assert_array_equal(online.residual().translation, applied.translation)


@pytest.mark.parametrize("mode", ["none", "tf"])
def test_modes_without_an_estimate(mode: str) -> None:
    wall, cpu = _FakeClock(), _FakeClock()
    window = _FakeWindow(cpu, 0.01, 0.1)
    online = OnlineRegistration(OnlineConfig(mode=mode), Clocks(cpu=cpu, wall=wall), estimator=window)  # type: ignore[arg-type]
    online.set_given(None, "no transform camera <- camera_depth_sensor")
    assert online.status().status == ("off" if mode == "none" else "no_transform")
    online.set_given(TF_START)
    for _ in range(20):
        online.offer(np.zeros((4, 4, 3), np.uint8), np.ones((1, 1), np.float32), None)
        online.step()
    assert window.adds == window.updates == 0 and online.status().frames_offered == 0
    assert online.residual() is (None if mode == "none" else TF_START)
    online.start()  # no thread outside auto
    assert online._thread is None


def test_a_failing_frame_is_reported_and_the_thread_goes_on() -> None:
    cpu = _FakeClock()
    window = _FakeWindow(cpu, 0.0, 0.0)
    window.fail = True
    taken = threading.Event()
    online = OnlineRegistration(OnlineConfig(budget=1.0, update_every=1), Clocks(cpu=cpu), estimator=window)  # type: ignore[arg-type]
    online.start()
    try:
        online.offer(np.zeros((4, 4, 3), np.uint8), np.ones((1, 1), np.float32), None)
        for _ in range(200):
            if "broken frame" in online.status().note:
                break
            taken.wait(0.05)
        assert "frame failed: ValueError: broken frame" in online.status().note
        window.fail = False
        online.offer(np.zeros((4, 4, 3), np.uint8), np.ones((1, 1), np.float32), None)
        for _ in range(200):
            if window.updates:
                break
            taken.wait(0.05)
        assert window.adds == 1 and window.updates == 1  # added, then estimated (update_every 1)
    finally:
        online.stop()
    assert online._thread is None


class _Recorder:
    """A registration for the frame handler: a fixed residual, the frames it is shown."""

    def __init__(self, residual: object) -> None:
        self.fixed = residual
        self.seen: list[tuple[np.ndarray, np.ndarray, object]] = []

    def residual(self, rgb_msg: object, depth_msg: object) -> object:
        return self.fixed

    def observe(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: object) -> None:
        self.seen.append((rgb, depth, intrinsics))


def test_the_frame_handler_shows_the_decoded_frame_and_applies_the_residual(frames) -> None:  # noqa: F811
    """input_mode depth: the decoded frame (as labelled) goes to the registration, and the depth is
    re-registered with its residual before super-resolution, as `FrameProcessor.process(residual=)`."""
    processor, quadruple = _processor(), _quadruple(frames, 1_700_000_000_000_000_000)
    recorder = _Recorder(TF_START)
    handler = _handler()
    handler.registration = recorder
    result = _handle(handler, processor, quadruple, want_points=False)
    assert result.skip is None, result.skip
    ((rgb, depth, intrinsics),) = recorder.seen
    assert rgb.shape == (480, 640, 3) and depth.shape == (120, 160) and intrinsics.width == 640
    np.testing.assert_array_equal(depth, depth_from_image(quadruple[2]))  # as labelled, before the residual
    expected = processor.process(*quadruple, want_points=False, residual=TF_START).depth
    plain = processor.process(*quadruple, want_points=False).depth
    published = depth_from_image(result.messages.image)
    np.testing.assert_array_equal(published, expected)
    assert not np.array_equal(np.nan_to_num(published), np.nan_to_num(plain))
