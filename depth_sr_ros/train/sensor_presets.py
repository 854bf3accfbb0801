"""The named sensor models: `--degrade NAME` in evaluate and replay, the degradation mixes of a
training config. `DEGRADATIONS` maps each name to a factory of its `Degradation` (the steps are in
train/degradations.py, the sensors beside the camera in train/parallax.py); `get_degradation(name)`
looks one up, optionally with its misregistration fixed (`real_tof@2px`).

Real-sensor model (`real_tof`, `phone_tof`): a separate low-resolution ToF camera registered to the
colour camera by calibration, with the effects train/degradations.py describes; `phone_tof` is a
144x192 sensor for a 384x512 image at x4 (ratio 8/3).
"""

from __future__ import annotations

from collections.abc import Callable

from depth_sr_ros.train.degradations import (
    BiasScale,
    Degradation,
    Downsample,
    FilledHoles,
    FlyingPixels,
    GaussianNoise,
    Misregister,
    MultipathBias,
    ProportionalNoise,
    Quantize,
    RandomHoles,
    RandomPoints,
    ScanRings,
    StructuredHoles,
    ToFNoise,
    TorchStep,
    tof_camera_steps,
)
from depth_sr_ros.train.parallax import (
    RegisteredParallax,
    parallax_degradation,
    parallax_sensor,
    registered_tof,
)


def _real_tof(name: str, pitch: float) -> Degradation:
    """A separate ToF camera registered by calibration (train/degradations.py), misregistered by 0-3
    high-resolution pixels, with a pixel pitch of `pitch` model-grid pixels."""
    return Degradation(name, (Misregister(0.0, 3.0), *tof_camera_steps(pitch)))


def _single(name: str, step: TorchStep, before: bool = False) -> Degradation:
    """One real-sensor effect around an area footprint (before it when it acts on the scene)."""
    area = Downsample("area")
    return Degradation(name, (step, area) if before else (area, step))


DEGRADATIONS: dict[str, Callable[[], Degradation]] = {
    "bicubic": lambda: Degradation("bicubic", (Downsample("bicubic"),)),
    "area": lambda: Degradation("area", (Downsample("area"),)),
    "nearest": lambda: Degradation("nearest", (Downsample("nearest"),)),
    # A ToF camera: footprint averaging, 1 % depth noise + 2 mm floor, speckle and patch dropouts,
    # mixed returns at edges, 1 mm quantisation (16UC1).
    "tof": lambda: Degradation("tof", (
        Downsample("area"), ProportionalNoise(rel=0.01, power=1.0), GaussianNoise(sigma_m=0.002),
        FlyingPixels(jump_m=0.05, probability=0.5), RandomHoles(fraction=0.02),
        StructuredHoles(count=3, area_fraction=0.04), Quantize(step_m=0.001),
    )),
    # A separate ToF sensor on the model grid (x S), and the RGB-D-D phone ToF (ratio 8/3 at x4).
    "real_tof": lambda: _real_tof("real_tof", 1.0),
    "phone_tof": lambda: _real_tof("phone_tof", 2.0 / 3.0),
    # The real-sensor effects one at a time (area footprint), for ablations.
    "misregistration": lambda: _single("misregistration", Misregister(0.0, 3.0), before=True),
    "multipath": lambda: _single("multipath", MultipathBias(), before=True),
    "bias_scale": lambda: _single("bias_scale", BiasScale(), before=True),
    "ratio_8_3": lambda: Degradation("ratio_8_3", (Downsample("area", pitch=2.0 / 3.0),)),
    "sensor_noise": lambda: _single("sensor_noise", ToFNoise()),
    "filled_holes": lambda: _single("filled_holes", FilledHoles()),
    "flying_pixels": lambda: _single("flying_pixels", FlyingPixels()),
    "quantize": lambda: _single("quantize", Quantize()),
    "structured_light": lambda: Degradation("structured_light", (
        Downsample("nearest"), ProportionalNoise(rel=0.003, power=2.0), RandomHoles(fraction=0.05),
        StructuredHoles(count=4, area_fraction=0.08), Quantize(step_m=0.001),
    )),
    "lidar_points": lambda: Degradation("lidar_points", (
        Downsample("nearest"), GaussianNoise(sigma_m=0.01), RandomPoints(density=0.1),
    )),
    "lidar_rings": lambda: Degradation("lidar_rings", (
        Downsample("nearest"), GaussianNoise(sigma_m=0.01), ScanRings(rings=16),
    )),
    # A sensor 3 cm right of and 1 cm below the camera, labelled as registered (train/parallax.py): the
    # bicubic footprint, a ToF camera (real_tof's effects) and the RGB-D-D phone ToF (ratio 8/3 at x4).
    "parallax": parallax_degradation,
    "parallax_tof": lambda: parallax_sensor("parallax_tof"),
    "parallax_phone_tof": lambda: parallax_sensor("parallax_phone_tof"),
    # Such sensors at random poses, registered back by a slightly wrong estimate (train/parallax.py).
    "parallax_registered": RegisteredParallax,
    "parallax_registered_tof": lambda: registered_tof("parallax_registered_tof", 1.0),
    "parallax_registered_phone_tof": lambda: registered_tof("parallax_registered_phone_tof", 2.0 / 3.0),
}


def get_degradation(name: str, misregistration_px: float | None = None) -> Degradation:
    """The preset `name`, optionally with its misregistration fixed at `misregistration_px`
    high-resolution pixels (a name like `real_tof@2px` does the same); unknown names raise a
    `KeyError` that lists the known ones."""
    base, _, level = name.partition("@")
    try:
        degradation = DEGRADATIONS[base]()
    except KeyError:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(sorted(DEGRADATIONS))}") from None
    if level:
        misregistration_px = float(level.removesuffix("px"))
    return degradation if misregistration_px is None else degradation.with_misregistration(misregistration_px)

