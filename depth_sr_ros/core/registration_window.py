"""Self-registration over a sliding window of frames: collect, estimate, keep the last good estimate.

`SelfRegistration.add(rgb, depth, intrinsics)` keeps one frame's features (contours and colour
edges, `edge_alignment`); `update()` estimates over the window (`registration_estimate.estimate`)
and remembers the result while it is constrained, so a flat scene keeps the last good estimate;
`apply(depth, intrinsics)` registers a depth image with the current estimate when it is
significant and returns the input unchanged otherwise (correctly registered input stays as is).

Frames and units: `depth` is h x w metres (NaN invalid) labelled as registered to the colour
image (it covers the colour image, pixel centres aligned); `intrinsics` are the colour camera's
for its own width x height; the estimate is the residual extrinsic depth -> colour optical frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from depth_sr_ros.core.edge_alignment import ContourConfig, EdgeMap, find_contours
from depth_sr_ros.core.registration_estimate import (
    EstimateConfig,
    FrameFeatures,
    RegistrationEstimate,
    estimate,
)
from depth_sr_ros.core.reprojection import register_residual


@dataclass(frozen=True)
class SelfRegistrationConfig:
    """window: frames estimated over (the newest kept); edge_sigma_px: Gaussian smoothing of the
    colour image before its gradients (colour pixels); supersample: of the registering
    reprojection (`reprojection.reproject_depth`)."""

    window: int = 30
    edge_sigma_px: float = 1.0
    supersample: int = 4
    contours: ContourConfig = field(default_factory=ContourConfig)
    estimate: EstimateConfig = field(default_factory=EstimateConfig)


class SelfRegistration:
    """The window of frame features and the current estimate (see the module docstring)."""

    def __init__(self, config: SelfRegistrationConfig = SelfRegistrationConfig()) -> None:
        if config.window < 1:
            raise ValueError(f"window must be at least 1 frame; got {config.window}")
        self.config = config
        self.frames: deque[FrameFeatures] = deque(maxlen=config.window)
        self.current: RegistrationEstimate | None = None
        self.last: RegistrationEstimate | None = None

    def add(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: Any) -> int:
        """Keep one frame (rgb H x W x 3 uint8, depth h x w metres); returns its contour points."""
        contours = find_contours(depth, intrinsics, self.config.contours)
        edges = EdgeMap.from_rgb(rgb, self.config.edge_sigma_px)
        self.frames.append(FrameFeatures(contours, edges, intrinsics, input_px=intrinsics.width / depth.shape[1]))
        return len(contours)

    def update(self) -> RegistrationEstimate:
        """Estimate over the window; the result is `last` (every call) and `current` (when constrained)."""
        self.last = estimate(list(self.frames), self.config.estimate, self.current)
        if self.last.status == "ok":
            self.current = self.last
        return self.last

    @property
    def applies(self) -> bool:
        """Whether `apply` registers: there is a current estimate and it is significant."""
        return self.current is not None and self.current.significant

    def apply(self, depth: np.ndarray, intrinsics: Any) -> np.ndarray:
        """`depth` registered with the current estimate when it is significant, else `depth` itself."""
        if self.current is None or not self.applies:
            return depth
        return register_residual(depth, intrinsics, self.current.extrinsic, self.config.supersample)
