"""A depth sensor beside the colour camera whose depth is labelled as registered: parallax.

The `Parallax` step renders the ground truth (the colour camera's view, metres, NaN invalid) as a
sensor at another pose sees it: back-projected with the colour intrinsics, moved into the sensor's
optical frame, projected with the same intrinsics with a z-buffer (`core.reprojection`), and its
disocclusions filled with the background as phone depth pipelines do. The result is passed on as
if it were registered: every depth edge is displaced by `f * B / Z` pixels (B the baseline, Z the
depth), which only a registration by the sensor's pose undoes. `pose()` is that pose: the
depth-to-colour extrinsic the self-registration (core/registration_estimate.py) should recover.

Apply it before the `Downsample`. It runs in numpy on the CPU, one sample at a time (a z-buffer),
and draws no random numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.reprojection import (
    assumed_intrinsics,
    extrinsic_from_params,
    fill_disocclusions,
    register_residual,
    reproject_depth,
)
from depth_sr_ros.train.degradations import (
    Context,
    Degradation,
    Downsample,
    TorchStep,
    tof_camera_steps,
)

DEFAULT_BASELINE_M = (0.03, 0.01, 0.0)  # 3 cm right of the colour camera, 1 cm below (issue 19)


@dataclass(frozen=True)
class Parallax(TorchStep):
    """The sensor at `baseline_m` (x right, y down, z forward, metres) from the colour camera,
    rotated by `rotation_deg` (a rotation vector, degrees), both in the colour optical frame.
    `intrinsics`: the colour camera's (rescaled to each image); None = `assumed_intrinsics` with
    `horizontal_fov_deg`."""

    baseline_m: tuple[float, float, float] = DEFAULT_BASELINE_M
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    intrinsics: Intrinsics | None = None
    horizontal_fov_deg: float = 60.0

    def pose(self) -> Extrinsic:
        """The sensor's optical frame -> the colour optical frame (`p_colour = R p_sensor + t`)."""
        return extrinsic_from_params(np.concatenate([self.baseline_m, np.radians(self.rotation_deg)]))

    def camera(self, height: int, width: int) -> Intrinsics:
        """The colour intrinsics for an image of `height x width` pixels."""
        if self.intrinsics is None:
            return assumed_intrinsics(width, height, self.horizontal_fov_deg)
        return self.intrinsics.scaled(width, height)

    def render(self, depth: np.ndarray) -> np.ndarray:
        """One H x W ground truth (metres, NaN invalid) as the sensor sees it, disocclusions filled."""
        camera = self.camera(*depth.shape)
        seen = reproject_depth(depth, camera, self.pose().inverse(), camera, depth.shape).depth
        return fill_disocclusions(seen)

    def apply(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        rendered = [self.render(sample[0].detach().cpu().numpy()) for sample in x]
        return torch.from_numpy(np.stack(rendered)[:, None]).to(x.device)


def parallax_degradation(baseline_m: Sequence[float] = DEFAULT_BASELINE_M,
                         rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
                         intrinsics: Intrinsics | None = None) -> Degradation:
    """The parallax sensor, then the protocol's bicubic downsampling (`Downsample("bicubic")`)."""
    return parallax_sensor("parallax", baseline_m, rotation_deg, intrinsics)


@dataclass(frozen=True)
class RegisteredParallax(Degradation):
    """What registering the input with an estimate gives from a sensor beside the camera (issue 19,
    item 4; what a classic upsampler is handed; a network now runs in the sensor's view instead,
    core/sensor_view.py):
    the sensor's view rendered as `Parallax` does (disocclusions filled), made a sensor image by
    the chain's `steps` (the bicubic footprint by default; a ToF camera's effects in
    `parallax_registered_tof`), then registered back at the sensor's resolution
    (`register_residual`, as `core/registration_window.py` applies an estimate) with a pose that is
    off by up to `pose_error_m` per axis, the residual misregistration an estimate leaves (0-2 px
    at 0.5-1 m).

    Per sample, from the context's generator: the baseline's length uniform in `baseline_range_m`
    and its direction uniform in the image plane (x right, y down), a forward offset within
    +-`forward_offset_m`, the pose error, and the focal length uniform in `focal_range_px` (square
    pixels, principal point at the crop's centre: a crop of a 512-640 px wide image of about 60
    degrees). With a pure translation the parallax `f * B / Z` does not depend on where the crop
    lies in its image, so a crop stands for its whole frame.
    """

    name: str = "parallax_registered"
    steps: tuple[TorchStep, ...] = (Downsample("bicubic"),)
    baseline_range_m: tuple[float, float] = (0.01, 0.05)
    forward_offset_m: float = 0.005
    pose_error_m: float = 0.002
    focal_range_px: tuple[float, float] = (400.0, 560.0)
    supersample: int = 4

    def draw_poses(self, batch: int, ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per sample: the true pose's 6 parameters, the registering estimate's, the focal (px)."""
        u = ctx.rand(batch, 7).cpu().numpy().astype(np.float64)
        length = self.baseline_range_m[0] + (self.baseline_range_m[1] - self.baseline_range_m[0]) * u[:, 0]
        angle = 2.0 * np.pi * u[:, 1]
        true = np.zeros((batch, 6))
        true[:, 0], true[:, 1] = length * np.cos(angle), length * np.sin(angle)
        true[:, 2] = self.forward_offset_m * (2.0 * u[:, 2] - 1.0)
        estimate = true.copy()
        estimate[:, :3] += self.pose_error_m * (2.0 * u[:, 3:6] - 1.0)
        focal = self.focal_range_px[0] + (self.focal_range_px[1] - self.focal_range_px[0]) * u[:, 6]
        return true, estimate, focal

    def apply(self, gt: torch.Tensor, ctx: Context) -> torch.Tensor:
        true, estimate, focal = self.draw_poses(gt.shape[0], ctx)
        height, width = gt.shape[-2:]
        cameras = [Intrinsics(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height)
                   for f in focal]
        seen = []
        for sample, params, camera in zip(gt, true, cameras, strict=True):
            depth = sample[0].detach().cpu().numpy()
            pose = extrinsic_from_params(params)
            seen.append(fill_disocclusions(reproject_depth(depth, camera, pose.inverse(), camera, depth.shape).depth))
        rendered = torch.from_numpy(np.stack(seen)[:, None]).to(gt.device)
        lr = super().apply(rendered, replace(ctx, dense=bool(torch.isfinite(rendered).all()))).cpu().numpy()
        registered = [
            register_residual(image[0], camera.scaled(image.shape[-1], image.shape[-2]), extrinsic_from_params(params),
                              self.supersample)
            for image, params, camera in zip(lr, estimate, cameras, strict=True)
        ]
        return torch.from_numpy(np.stack(registered)[:, None]).to(gt.device)


def registered_tof(name: str, pitch: float) -> RegisteredParallax:
    """`RegisteredParallax` with a ToF camera of pixel pitch `pitch` (`tof_camera_steps`) as the sensor."""
    return RegisteredParallax(name, tof_camera_steps(pitch))


# `--degrade` names of a sensor beside the camera labelled registered -> its ToF pixel pitch (None: the
# protocol's bicubic footprint); `parallax_sensor` builds one at a given pose.
PARALLAX_SENSORS: dict[str, float | None] = {"parallax": None, "parallax_tof": 1.0, "parallax_phone_tof": 2.0 / 3.0}


def parallax_sensor(name: str, baseline_m: Sequence[float] = DEFAULT_BASELINE_M,
                    rotation_deg: Sequence[float] = (0.0, 0.0, 0.0),
                    intrinsics: Intrinsics | None = None) -> Degradation:
    """The `PARALLAX_SENSORS` preset `name` with the sensor at `baseline_m`, rotated by `rotation_deg`:
    the `Parallax` step, then the protocol's bicubic footprint or a ToF camera's effects
    (`tof_camera_steps`; pitch 2/3 at x4 is the RGB-D-D phone ToF, 144x192 for a 384x512 image,
    issue 19's real case)."""
    step = Parallax(tuple(float(v) for v in baseline_m), tuple(float(v) for v in rotation_deg), intrinsics)
    pitch = PARALLAX_SENSORS[name]
    return Degradation(name, (step, *((Downsample("bicubic"),) if pitch is None else tof_camera_steps(pitch))))
