"""Self-registration of evaluation inputs: `depth-sr evaluate --registration auto` (or `tf`).

The low-resolution inputs of a run are taken to come from one rig (one sensor beside one colour
camera, as `--degrade parallax` simulates): the residual extrinsic is estimated over the first
`window` frames' inputs, from colour and input depth only (no ground truth), and when it is
significant (`core/registration_window.py`) it is applied as the node applies it: a network runs
in the depth sensor's view and its prediction is reprojected into the colour camera (and, up to
x8, super-resolved once more there) before it is scored (`core/sensor_view.py`); a classic
upsampler takes the input registered with it (`reprojection.register_residual`). `tf` uses the
pose as given instead (with `--degrade parallax`, the simulated sensor's true pose: the best any
estimate can do, disocclusions and all).

Intrinsics: the folder's `intrinsics.json` (the colour camera) or, without one, the same assumed
pinhole the parallax degradation uses (`core.reprojection.assumed_intrinsics`), for the cropped
image each input covers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

import numpy as np

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.edge_alignment import find_contours, project
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.registration_estimate import PARAM_NAMES, RegistrationEstimate
from depth_sr_ros.core.registration_window import SelfRegistration, SelfRegistrationConfig
from depth_sr_ros.core.reprojection import assumed_intrinsics, extrinsic_params
from depth_sr_ros.core.resample import pad_to_multiple
from depth_sr_ros.core.sensor_view import SensorView, runs_second_pass
from depth_sr_ros.eval.protocol import FrameInput, ToColour

LOG = logging.getLogger(__name__)


def input_intrinsics(intrinsics: Intrinsics | None, inp: FrameInput) -> Intrinsics:
    """The colour intrinsics of the (bottom/right-cropped) image of `inp`."""
    height, width = inp.gt.shape
    if intrinsics is None:
        return assumed_intrinsics(width, height)
    return dataclasses.replace(intrinsics, width=width, height=height)


def calibrate_inputs(inputs: Iterable[FrameInput | None], intrinsics: Intrinsics | None,
                     config: SelfRegistrationConfig | None = None) -> SelfRegistration:
    """Estimate over up to `config.window` inputs (colour and low-resolution depth only; None =
    a frame that could not be read, skipped)."""
    registration = SelfRegistration(config or SelfRegistrationConfig())
    for inp in inputs:
        if inp is None:
            continue
        registration.add(inp.rgb, inp.lr, input_intrinsics(intrinsics, inp))
    result = registration.update()
    LOG.info("self-registration: %s", describe(result))
    return registration


def given(extrinsic: Extrinsic) -> SelfRegistration:
    """A registration that applies `extrinsic` as given (`--registration tf`: the known pose)."""
    registration = SelfRegistration()
    registration.current = registration.last = RegistrationEstimate(
        extrinsic_params(extrinsic), np.zeros(6), PARAM_NAMES, "given", significant=True)
    return registration


def registered_input(registration: SelfRegistration, inp: FrameInput, intrinsics: Intrinsics | None, scale: int,
                     network: bool, second_pass: bool = True) -> tuple[FrameInput, ToColour | None]:
    """What a method takes when the current estimate applies, as the node applies it
    (`core/frame_processor.py`): for a network (`network`), `inp` with its colour image in the
    depth sensor's view and what takes the prediction (metres) back to the colour camera
    (`core/sensor_view.py`, with its second pass up to `SECOND_PASS_MAX_SCALE` unless
    `second_pass` is False: `OutputConfig.second_pass`); for a classic upsampler, `inp` with its
    low-resolution depth registered (`reprojection.register_residual`) and None. `inp` and None
    when nothing applies."""
    if registration.current is None or not registration.applies:
        return inp, None
    camera = input_intrinsics(intrinsics, inp)
    residual = registration.current.extrinsic
    if not network:
        lr = registration.apply(inp.lr, camera)
        return dataclasses.replace(inp, lr=lr.astype(np.float32), valid_lr=np.isfinite(lr)), None
    height, width = inp.gt.shape
    padded = pad_to_multiple(inp.rgb, scale)  # the input grid covers the colour image padded to the scale
    grid_camera = dataclasses.replace(camera, width=padded.shape[1], height=padded.shape[0])
    guide = SensorView(grid_camera, residual).colour(padded, inp.lr)[:height, :width]
    view = SensorView(camera, residual)
    again = inp.rgb if runs_second_pass(scale, second_pass) else None
    return dataclasses.replace(inp, rgb=guide), ToColour(lambda pred: view.to_colour(pred).depth, again)


def describe(result: RegistrationEstimate) -> str:
    """One line: the estimate, its uncertainty, whether it is applied."""
    parts = []
    for j, name in enumerate(PARAM_NAMES):
        if name not in result.solved:
            continue
        unit, factor = ("mm", 1000.0) if j < 3 else ("deg", float(np.degrees(1.0)))
        parts.append(f"{name} {result.params[j] * factor:+.2f} +- {result.std[j] * factor:.2f} {unit}")
    verdict = "applied" if result.significant else "not applied (identity within its uncertainty, or a shift too small)"
    if result.status == "given":
        verdict = "as given"
    elif result.status != "ok":
        verdict = f"{result.status}: {'; '.join(result.notes[-1:])}"
    return (f"{', '.join(parts) or 'identity'} over {result.frames_used} frames "
            f"({result.frames_rejected} rejected), contours moved {result.shift_px:.2f} px; {verdict}")


def calibrated(make: Callable[[int], FrameInput | None], count: int, intrinsics: Intrinsics | None,
               config: SelfRegistrationConfig | None = None) -> SelfRegistration:
    """`calibrate_inputs` over the inputs `make(0)`, ... of the first min(count, window) frames,
    spread evenly over the `count` frames."""
    config = config or SelfRegistrationConfig()
    picks = np.unique(np.linspace(0, count - 1, min(count, config.window)).round().astype(int))
    return calibrate_inputs((make(int(i)) for i in picks), intrinsics, config)


def edge_overlay(rgb: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics,
                 colour: tuple[int, int, int] = (60, 255, 60)) -> np.ndarray:
    """The colour image (H x W x 3 uint8, dimmed) with the occluding contours of `depth` (h x w
    metres covering it, as registered) drawn in `colour`, 3 x 3 pixels per contour point."""
    out = (0.55 * rgb).astype(np.uint8)
    contours = find_contours(depth, intrinsics)
    u, v = project(contours.points, intrinsics)
    ok = np.isfinite(u) & np.isfinite(v)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            rows = np.clip(np.round(v[ok]).astype(int) + dr, 0, rgb.shape[0] - 1)
            cols = np.clip(np.round(u[ok]).astype(int) + dc, 0, rgb.shape[1] - 1)
            out[rows, cols] = colour
    return out
