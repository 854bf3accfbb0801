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
from dataclasses import dataclass

import numpy as np
import torch

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.reprojection import (
    assumed_intrinsics,
    extrinsic_from_params,
    fill_disocclusions,
    reproject_depth,
)
from depth_sr_ros.train.degradations import Context, Degradation, Downsample, TorchStep

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
    step = Parallax(tuple(float(v) for v in baseline_m), tuple(float(v) for v in rotation_deg), intrinsics)
    return Degradation("parallax", (step, Downsample("bicubic")))
