"""Training inputs for a network that takes the second pass in the colour camera (issue 19).

Where a pose applies, the pipeline super-resolves in the depth sensor's view, reprojects that
output into the colour camera and super-resolves once more there (`core/sensor_view.py`,
`core/frame_processor.py`). The second network sees no sensor image but the first network's
reprojected output brought to the input grid: soft edges moved by their own depth, what the sensor
never saw filled by geometry. `second_pass_input` makes exactly that input for a training frame,
through the evaluation path the figures are measured with (`eval/registration.py`,
`eval/protocol.py`): a sensor beside the camera (`train/parallax.py`, disocclusions filled; the
bicubic footprint, or a ToF camera's effects for `parallax_tof` / `parallax_phone_tof`), registered
by a pose off by up to `pose_error_m` per axis (what an estimate leaves), the given first network
in its view, the reprojection, the antialiased bicubic to the grid.

The inputs are made once, before training (about 0.1 s per 512 x 384 frame with `lite` x4 on one
CPU thread), and drawn as the `given` degradation (`train/batches.GIVEN_INPUT`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depth_sr_ros.core.reprojection import extrinsic_from_params
from depth_sr_ros.core.resample import bicubic_downsample
from depth_sr_ros.eval.protocol import FrameInput, Method, make_input, run_method
from depth_sr_ros.eval.registration import given, registered_input
from depth_sr_ros.train.datasets import Frame
from depth_sr_ros.train.parallax import PARALLAX_SENSORS, parallax_sensor


@dataclass(frozen=True)
class SimulatedSensor:
    """One drawn sensor: its `PARALLAX_SENSORS` kind, its true translation (metres, the colour
    optical frame) and the 6 parameters of the pose that registers it (`extrinsic_from_params`)."""

    kind: str
    translation_m: np.ndarray
    estimate: np.ndarray


@dataclass(frozen=True)
class SecondPassSensors:
    """The simulated sensors: the baseline's length uniform in `baseline_range_m` (metres), its
    direction uniform in the image plane (x right, y down), a forward offset within
    +-`forward_offset_m`; the registering pose off by up to `pose_error_m` per axis; the kind one of
    `kinds` (`train/parallax.PARALLAX_SENSORS`: the bicubic footprint, a ToF camera, a phone ToF),
    uniformly."""

    baseline_range_m: tuple[float, float] = (0.01, 0.05)
    forward_offset_m: float = 0.005
    pose_error_m: float = 0.002
    kinds: tuple[str, ...] = ("parallax",)

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.kinds if kind not in PARALLAX_SENSORS]
        if not self.kinds or unknown:
            raise ValueError(f"second-pass sensor kinds must be some of {sorted(PARALLAX_SENSORS)}; got {list(self.kinds)}")

    def draw(self, rng: np.random.Generator) -> SimulatedSensor:
        """One sensor. A single kind draws nothing for it, so its draws stay those of the pose alone."""
        length = rng.uniform(*self.baseline_range_m)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        true = np.array([length * np.cos(angle), length * np.sin(angle),
                         rng.uniform(-self.forward_offset_m, self.forward_offset_m)])
        estimate = np.concatenate([true + rng.uniform(-self.pose_error_m, self.pose_error_m, 3), np.zeros(3)])
        kind = self.kinds[int(rng.integers(len(self.kinds)))] if len(self.kinds) > 1 else self.kinds[0]
        return SimulatedSensor(kind, true, estimate)


def second_pass_input(frame: Frame, first: Method, scale: int, rng: np.random.Generator,
                      sensors: SecondPassSensors = SecondPassSensors()) -> FrameInput:
    """One frame as the second pass sees it, for one sensor drawn from `sensors`: the frame's
    cropped colour image and ground truth, and as `lr` the first network's output (`first`, run as
    `depth-sr evaluate` runs a network) reprojected into the colour camera and brought to the
    model grid (metres, NaN where nothing reached)."""
    drawn = sensors.draw(rng)
    sensor = parallax_sensor(drawn.kind, tuple(drawn.translation_m), (0.0, 0.0, 0.0), frame.intrinsics)
    inp = make_input(frame, scale, sensor, rng)
    seen, to_colour = registered_input(given(extrinsic_from_params(drawn.estimate)), inp, frame.intrinsics, scale,
                                       network=True, second_pass=False)
    assert to_colour is not None  # a given pose always applies
    unit = np.float32(frame.depth_unit_m)
    gt_native = inp.gt / unit
    native = FrameInput(seen.name, seen.rgb, gt_native, seen.lr / unit, seen.valid_lr, seen.source, seen.gt_holes)
    prediction = run_method(first, native, scale, float(np.nanmin(gt_native)), float(np.nanmax(gt_native)), clamp=True)
    lr = bicubic_downsample(to_colour.reproject(prediction * unit), scale)
    return FrameInput(inp.name, inp.rgb, inp.gt, lr, np.isfinite(lr), "second_pass", inp.gt_holes)
