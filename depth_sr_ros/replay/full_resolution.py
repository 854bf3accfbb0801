"""Depth at or near the colour resolution is registered and refined at full resolution, never
decimated to fit a shipped scale.

The shipped networks super-resolve by 2, 4, 8 or 16: they take depth on a grid of 1/scale of
the colour resolution. Depth that samples the scene almost as densely as the colour camera (a
RealSense D4xx's 640x480 depth beside its 640x480 colour: about 1.6 colour pixels per depth
pixel across) would lose most of its samples on even the x2 grid (15 of 16 on the default x4).
With `--backbone auto` (the default: "the best for this input") such depth is processed at scale
1 instead: registered into the colour camera at full resolution (the other camera's depth
through `register_depth`, z-buffer per colour pixel) and refined there by the classic fallback
of scale 1, a colour-guided filter (`guided_filter`: holes up to the pipeline's hole radius
filled, edges pulled to the colour image's, noise smoothed). An explicit `--backbone` (a network
or a classic filter) keeps its scale as asked, and replay warns when the ratio is not the scale.

Measured on the RealSense-layout test recording (test/recordings.py: TUM frames, a depth camera
of fx 336 beside a colour camera of fx 517, 640x480 each): RMSE to the TUM depth 4.2 cm at scale 1
against 6.5 cm on the x4 grid and 4.6 cm on the x2 grid (guided_filter, three frames).
"""

from __future__ import annotations

from dataclasses import replace

from depth_sr_ros.core.pipeline import SRConfig

# Colour pixels per depth pixel (focal-length ratio) below which the x2 grid, the finest
# shipped, has fewer samples than the depth: such depth is processed at scale 1.
FULL_RESOLUTION_BELOW = 2.0


def refine_at_full_resolution(sr: SRConfig, sampling: float | None, auto: bool) -> tuple[SRConfig, str]:
    """(`sr` at scale 1, the log line) when the depth's `sampling` (colour pixels per depth pixel,
    `fx_colour / fx_depth`) is under FULL_RESOLUTION_BELOW and the backbone is chosen
    automatically (`auto`); else (`sr`, "")."""
    if not auto or sampling is None or sampling >= FULL_RESOLUTION_BELOW or sr.scale == 1:
        return sr, ""
    note = (f"depth samples the scene at {sampling:.2f} colour pixels per depth pixel, near the colour resolution: "
            f"registered and refined at full resolution (scale 1, colour-guided refinement) instead of decimated to "
            f"the x{sr.scale} grid (which keeps 1 in {round(sr.scale ** 2 / max(sampling, 1.0) ** 2)} of its samples)"
            "; a --backbone other than auto keeps the grid")
    return replace(sr, scale=1), note
