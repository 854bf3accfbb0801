"""`gta_dinov2`: NAIMA-style guided depth SR with frozen DINOv2 tokens and Guided Token Attention.

After NAIMA (Nasir, Liu, Mian: "Semantics Aware RGB Guided Depth Super-Resolution"). On the
output grid, padded to a multiple of lcm(14, 2**(levels-1)):
  - frozen DINOv2 ViT-S/14 reads the RGB image; the patch tokens of four transformer blocks
    (3, 6, 9, 12) are layer-normalised and reshaped to their H/14 x W/14 grid;
  - a depth encoder of residual channel-attention blocks (RCABs) reads the bicubic-upsampled
    depth and the validity mask, and an RGB feature encoder of RCABs reads the image; per level
    the two are fused by a 1x1 convolution;
  - at each of four levels (full, 1/2, 1/4, 1/8 resolution) a Guided Token Attention block
    projects one block's tokens, pixel-shuffles them to the depth feature size and lets the
    depth features (query) attend to them (key/value); the result is added with a learnable
    alpha that starts at zero;
  - a decoder upsamples with pixel shuffle through the skips, and the predicted residual is added
    to the bicubic-upsampled input depth. The output is cropped back to the input size.
Shallow blocks feed the fine levels and deep blocks the coarse ones. The attention is channel
("transposed") cross-attention, linear in the number of pixels, so it runs at full resolution;
see `blocks.GuidedTokenAttention`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from depth_sr_ros.models.blocks import (
    Downsample,
    FrozenFoundationNet,
    GuidedTokenAttention,
    Upsample,
    crop_to,
    pad_inputs,
    rcab_stage,
    upsample_depth,
    upsample_mask,
)
from depth_sr_ros.models.foundation import PATCH_SIZE

NUM_LEVELS = 4  # one per DINOv2 block the tokens come from


@dataclass(frozen=True)
class GTADinov2Config:
    """Architecture of `gta_dinov2`; per-level tuples are indexed from level 0 (full resolution).

    token_layers: 1-based DINOv2 blocks whose tokens feed levels 0..3 (empty: evenly spaced,
    (3, 6, 9, 12) for ViT-S/14). token_attention=False drops the GTA blocks and the ViT (ablation).
    """

    scale: int = 4
    width: int = 32
    depth_blocks: tuple[int, ...] = (2, 2, 2, 2)
    rgb_blocks: tuple[int, ...] = (1, 1, 1, 1)
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)
    semantic_dim: int = 16
    head_channels: int = 32
    token_layers: tuple[int, ...] = ()
    token_attention: bool = True

    def __post_init__(self) -> None:
        if self.scale not in (2, 4, 8, 16):
            raise ValueError(f"scale must be 2, 4, 8 or 16, got {self.scale}")
        for name in ("depth_blocks", "rgb_blocks", "dec_blocks"):
            if len(getattr(self, name)) != NUM_LEVELS:
                raise ValueError(f"{name} needs {NUM_LEVELS} entries, one per level")


class GTADinov2(FrozenFoundationNet):
    """See the module docstring. `token_encoder` maps padded rgb to four token grids (None when
    `config.token_attention` is False); `token_dim` is its hidden size."""

    def __init__(self, config: GTADinov2Config, token_encoder: nn.Module | None, token_dim: int = 384) -> None:
        super().__init__()
        if config.token_attention != (token_encoder is not None):
            raise ValueError("token_attention=True needs a token encoder (DINOv2), False takes none")
        self.config = config
        self.scale = config.scale
        self.pad_multiple = math.lcm(PATCH_SIZE, 2 ** (NUM_LEVELS - 1))
        self.foundation = token_encoder if token_encoder is not None else nn.Identity()
        self.foundation.requires_grad_(False)
        channels = [config.width * 2**level for level in range(NUM_LEVELS)]

        self.depth_stem = nn.Conv2d(2, config.width, 3, padding=1)
        self.rgb_stem = nn.Conv2d(3, config.width, 3, padding=1)
        self.depth_encoders = nn.ModuleList(rcab_stage(c, n) for c, n in zip(channels, config.depth_blocks))
        self.rgb_encoders = nn.ModuleList(rcab_stage(c, n) for c, n in zip(channels, config.rgb_blocks))
        self.depth_downs = nn.ModuleList(Downsample(channels[i], channels[i + 1]) for i in range(NUM_LEVELS - 1))
        self.rgb_downs = nn.ModuleList(Downsample(channels[i], channels[i + 1]) for i in range(NUM_LEVELS - 1))
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in channels)
        self.token_attention = (
            nn.ModuleList(
                GuidedTokenAttention(
                    c, token_dim, shuffle=2 ** (NUM_LEVELS - level), semantic_dim=config.semantic_dim,
                    num_heads=max(1, c // config.head_channels),
                )
                for level, c in enumerate(channels)
            )
            if config.token_attention
            else None
        )
        self.ups = nn.ModuleList(Upsample(channels[i + 1], channels[i]) for i in range(NUM_LEVELS - 1))
        self.decoders = nn.ModuleList(rcab_stage(c, n) for c, n in zip(channels, config.dec_blocks))
        self.head = nn.Conv2d(config.width, 1, 3, padding=1)


    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        height, width = rgb.shape[-2:]
        rgb, depth, mask = pad_inputs(rgb, depth, mask, self.scale, self.pad_multiple)
        depth_up = upsample_depth(depth, self.scale)
        tokens: list[torch.Tensor] = self.foundation(rgb) if self.token_attention is not None else []

        x = self.depth_stem(torch.cat([depth_up, upsample_mask(mask, self.scale)], dim=1))
        r = self.rgb_stem(rgb)
        skips = []
        for level in range(NUM_LEVELS):
            if level > 0:
                x = self.depth_downs[level - 1](x)
                r = self.rgb_downs[level - 1](r)
            x = self.depth_encoders[level](x)
            r = self.rgb_encoders[level](r)
            x = self.fuse[level](torch.cat([x, r], dim=1))
            if self.token_attention is not None:
                x = self.token_attention[level](x, tokens[level])
            skips.append(x)

        y = self.decoders[-1](skips[-1])
        for level in reversed(range(NUM_LEVELS - 1)):
            y = self.decoders[level](self.ups[level](y) + skips[level])
        return crop_to(self.head(y) + depth_up, height, width)


def gta_dinov2(scale: int, dinov2: str | Path | nn.Module | None = None, **kwargs: object) -> GTADinov2:
    """Build `gta_dinov2`. `dinov2`: a local DINOv2 ViT-S/14 directory/file (transformers layout)
    or a loaded `Dinov2Model` (tests plug a tiny random one). Other kwargs are `GTADinov2Config`
    fields (`width`, `depth_blocks`, ...)."""
    from depth_sr_ros.models.foundation import Dinov2Tokens, load_dinov2, missing_foundation_error

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    config = GTADinov2Config(scale=scale, **kwargs)  # type: ignore[arg-type]
    if not config.token_attention:
        return GTADinov2(config, None)
    if dinov2 is None:
        raise missing_foundation_error("gta_dinov2", "dinov2_vits14")
    vit = dinov2 if isinstance(dinov2, nn.Module) else load_dinov2(dinov2)
    encoder = Dinov2Tokens(vit, config.token_layers or None)
    return GTADinov2(config, encoder, token_dim=encoder.hidden_size)
