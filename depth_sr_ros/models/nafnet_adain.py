"""`nafnet_adain`: NAFNet with a depth encoder, a guide encoder and AdaIN alignment per level.

After the first-place entry of the CVPR 2024 AIS depth upsampling challenge. Two encoders of
NAFBlocks run on the output grid:
  - the depth path reads the low-resolution depth, clipped to `depth_clip` and brought to the
    output grid by bicubic upsampling, with the (nearest-upsampled) validity mask;
  - the guide path reads the guide image: Depth Anything V2 Small's relative depth of the RGB
    image when its weights are given (`guide="depth_anything"`), else the RGB image itself
    (`guide="rgb"`; the model card records which).
At each of the `len(enc_blocks)` levels AdaIN re-expresses the guide features in the depth
features' channel statistics, `sigma_lr * (F_rel - mu_rel) / sigma_rel + mu_lr`, a 1x1
convolution fuses both into the skip, and both paths downsample by 2. Middle blocks run at
the bottom; the decoder upsamples with pixel shuffle, adds the skips and predicts a residual
over the bicubic depth. Inputs are padded to a multiple of `2**levels` and cropped back.

Normalisation: depth inputs are per-frame min-max normalised by the caller (see
docs/ARCHITECTURE.md); the model clips them to `depth_clip` (default [0, 1]) so that hole
filling or outliers cannot push the input far outside the trained range. The output is not
clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from depth_sr_ros.models.blocks import (
    AdaIN,
    Downsample,
    FrozenFoundationNet,
    Upsample,
    crop_to,
    naf_stage,
    pad_inputs,
    upsample_depth,
    upsample_mask,
)


@dataclass(frozen=True)
class NAFNetAdaINConfig:
    """Architecture of `nafnet_adain`; per-level tuples are indexed from level 0 (full resolution)."""

    scale: int = 4
    width: int = 32
    enc_blocks: tuple[int, ...] = (2, 2, 4, 8)
    middle_blocks: int = 10
    dec_blocks: tuple[int, ...] = (2, 2, 2, 2)
    guide: Literal["rgb", "depth_anything"] = "rgb"
    depth_clip: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8, 16):
            raise ValueError(f"scale must be 2, 4, 8 or 16, got {self.scale}")
        if len(self.enc_blocks) != len(self.dec_blocks):
            raise ValueError("enc_blocks and dec_blocks need one entry per level")
        if self.guide not in ("rgb", "depth_anything"):
            raise ValueError(f"guide must be 'rgb' or 'depth_anything', got {self.guide!r}")

    @property
    def num_levels(self) -> int:
        return len(self.enc_blocks)


class NAFNetAdaIN(FrozenFoundationNet):
    """See the module docstring. `guide_model` maps rgb Bx3xHxW to a Bx1xHxW relative-depth guide."""

    def __init__(self, config: NAFNetAdaINConfig, guide_model: nn.Module | None = None) -> None:
        super().__init__()
        if (config.guide == "depth_anything") != (guide_model is not None):
            raise ValueError("guide='depth_anything' needs a guide_model, guide='rgb' takes none")
        self.config = config
        self.scale = config.scale
        self.pad_multiple = 2**config.num_levels
        self.foundation = guide_model if guide_model is not None else nn.Identity()
        if guide_model is not None:
            self.foundation.requires_grad_(False)
        channels = [config.width * 2**level for level in range(config.num_levels + 1)]

        self.depth_stem = nn.Conv2d(2, config.width, 3, padding=1)
        self.guide_stem = nn.Conv2d(3 if config.guide == "rgb" else 1, config.width, 3, padding=1)
        self.depth_encoders = nn.ModuleList(naf_stage(channels[i], n) for i, n in enumerate(config.enc_blocks))
        self.guide_encoders = nn.ModuleList(naf_stage(channels[i], n) for i, n in enumerate(config.enc_blocks))
        self.align = AdaIN()
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in channels[:-1])
        self.depth_downs = nn.ModuleList(Downsample(channels[i], channels[i + 1]) for i in range(config.num_levels))
        self.guide_downs = nn.ModuleList(
            Downsample(channels[i], channels[i + 1]) for i in range(config.num_levels - 1)
        )
        self.middle = naf_stage(channels[-1], config.middle_blocks)
        self.ups = nn.ModuleList(Upsample(channels[i + 1], channels[i]) for i in range(config.num_levels))
        self.decoders = nn.ModuleList(naf_stage(channels[i], n) for i, n in enumerate(config.dec_blocks))
        self.head = nn.Conv2d(config.width, 1, 3, padding=1)


    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        height, width = rgb.shape[-2:]
        rgb, depth, mask = pad_inputs(rgb, depth, mask, self.scale, self.pad_multiple)
        depth = depth.clamp(*self.config.depth_clip)
        depth_up = upsample_depth(depth, self.scale)
        guide = self.foundation(rgb)

        x = self.depth_stem(torch.cat([depth_up, upsample_mask(mask, self.scale)], dim=1))
        g = self.guide_stem(guide)
        skips = []
        for level in range(self.config.num_levels):
            x = self.depth_encoders[level](x)
            g = self.guide_encoders[level](g)
            skip = self.fuse[level](torch.cat([x, self.align(g, x)], dim=1))
            skips.append(skip)
            x = self.depth_downs[level](skip)
            if level < self.config.num_levels - 1:
                g = self.guide_downs[level](g)

        x = self.middle(x)
        for level in reversed(range(self.config.num_levels)):
            x = self.decoders[level](self.ups[level](x) + skips[level])
        return crop_to(self.head(x) + depth_up, height, width)


def nafnet_adain(scale: int, depth_anything: str | Path | nn.Module | None = None, **kwargs: object) -> NAFNetAdaIN:
    """Build `nafnet_adain`. `depth_anything`: a local Depth Anything V2 Small directory/file (or a
    loaded `DepthAnythingForDepthEstimation`); given, the guide path reads its relative depth, else
    the RGB image.

    Other kwargs are `NAFNetAdaINConfig` fields (`width`, `enc_blocks`, `middle_blocks`, ...).
    """
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    guide_model = None
    if depth_anything is not None:
        from depth_sr_ros.models.foundation import RelativeDepthGuide, load_depth_anything

        loaded = depth_anything if isinstance(depth_anything, nn.Module) else load_depth_anything(depth_anything)
        guide_model = loaded if isinstance(loaded, RelativeDepthGuide) else RelativeDepthGuide(loaded)
        kwargs["guide"] = "depth_anything"
    elif kwargs.get("guide") == "depth_anything":
        from depth_sr_ros.models.foundation import missing_foundation_error

        raise missing_foundation_error("nafnet_adain (guide='depth_anything')", "depth_anything_v2_small")
    return NAFNetAdaIN(NAFNetAdaINConfig(scale=scale, **kwargs), guide_model)  # type: ignore[arg-type]
