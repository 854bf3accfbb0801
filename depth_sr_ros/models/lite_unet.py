"""`lite_unet`: `lite` with a U-Net trunk: more capacity where it is cheap, at low resolution.

`lite` fuses depth and colour with dilated residual blocks at 1/4 of the output resolution; its
cost grows with the number of blocks there. `lite_unet` keeps lite's input stem, bicubic base and
half-resolution head, and puts a three-level U-Net between them: `width` channels at 1/4,
2 x `width` at 1/8 and 4 x `width` at 1/16. A 3x3 convolution costs the same at each level
(channels double as pixels quarter), but holds 4x the parameters one level down and sees 2x
farther, so most of the ~1M parameters sit at 1/16 for little time, and the receptive field
covers the x16 grid. All operations export to ONNX (convolutions, pixel (un)shuffle, padding).

Depth in and out is normalised per frame (docs/ARCHITECTURE.md); the output is not clamped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from depth_sr_ros.models.blocks import crop_to, pad_inputs
from depth_sr_ros.models.lite import SCALES, WORK_FACTOR, DilatedResBlock, GuidedResidualSR

LEVELS = 3  # 1/4, 1/8 and 1/16 of the output resolution
HR_MULTIPLE = WORK_FACTOR * 2 ** (LEVELS - 1)  # the output is padded to a multiple of 16


@dataclass(frozen=True)
class LiteUNetConfig:
    """Factory keyword arguments of `lite_unet` (stored in the model card).

    width: channels at 1/4 (x2 at 1/8, x4 at 1/16); enc_blocks: residual blocks per level on the
    way down (1/4, 1/8); middle_dilations: one block per entry at 1/16; dec_blocks: blocks per
    level on the way up (1/8, 1/4); fine_width: channels of the half-resolution head.
    """

    width: int = 32
    enc_blocks: tuple[int, int] = (1, 2)
    middle_dilations: tuple[int, ...] = (1, 2, 4, 1)
    dec_blocks: tuple[int, int] = (1, 1)
    fine_width: int = 16


def _stage(width: int, dilations: tuple[int, ...]) -> nn.Module:
    """Residual blocks with these dilations in sequence (`nn.Identity` for none)."""
    return nn.Sequential(*(DilatedResBlock(width, d) for d in dilations)) if dilations else nn.Identity()


def _alternating(blocks: int) -> tuple[int, ...]:
    """Dilations 1, 2, 1, 2, ... for `blocks` blocks."""
    return tuple((1, 2)[i % 2] for i in range(blocks))


class LiteUNet(GuidedResidualSR):
    """RGB-guided depth SR at any scale in `SCALES`: `forward(rgb, depth, mask) -> depth_hr`."""

    def __init__(
        self,
        scale: int,
        width: int = 32,
        enc_blocks: tuple[int, int] = LiteUNetConfig.enc_blocks,
        middle_dilations: tuple[int, ...] = LiteUNetConfig.middle_dilations,
        dec_blocks: tuple[int, int] = LiteUNetConfig.dec_blocks,
        fine_width: int = 16,
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"lite_unet supports scales {SCALES}, got {scale}")
        if len(enc_blocks) != LEVELS - 1 or len(dec_blocks) != LEVELS - 1:
            raise ValueError(f"enc_blocks and dec_blocks need {LEVELS - 1} entries (1/4 and 1/8)")
        self.scale = scale
        enc = (int(enc_blocks[0]), int(enc_blocks[1]))  # lists from a YAML config or a card become tuples
        dec = (int(dec_blocks[0]), int(dec_blocks[1]))
        self.config = LiteUNetConfig(width, enc, tuple(middle_dilations), dec, fine_width)
        w1, w2, w3 = width, 2 * width, 4 * width
        self._build_stem_and_head(scale, w1, fine_width)
        self.enc1 = _stage(w1, _alternating(enc_blocks[0]))
        self.down1 = nn.Conv2d(w1, w2, 2, stride=2)
        self.enc2 = _stage(w2, _alternating(enc_blocks[1]))
        self.down2 = nn.Conv2d(w2, w3, 2, stride=2)
        self.middle = _stage(w3, tuple(middle_dilations))
        self.up2 = nn.Sequential(nn.Conv2d(w3, 4 * w2, 1), nn.PixelShuffle(2))
        self.dec2 = _stage(w2, _alternating(dec_blocks[0]))
        self.up1 = nn.Sequential(nn.Conv2d(w2, 4 * w1, 1), nn.PixelShuffle(2))
        self.dec1 = _stage(w1, _alternating(dec_blocks[1]))

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.scale
        h, w = depth.shape[-2:]
        rgb, depth, mask = pad_inputs(rgb, depth, mask, s, HR_MULTIPLE)
        base, x1 = self.encode(rgb, depth, mask)
        x1 = self.enc1(x1) + x1
        x2 = self.down1(x1)
        x2 = self.enc2(x2) + x2
        x3 = self.down2(x2)
        x3 = self.middle(x3) + x3
        y2 = self.up2(x3) + x2
        y2 = self.dec2(y2) + y2
        y1 = self.up1(y2) + x1
        y1 = self.dec1(y1) + y1
        out = self.decode(y1, rgb, base)
        return crop_to(out, h * s, w * s)


def lite_unet(scale: int, **kwargs) -> LiteUNet:
    """Build `LiteUNet` for `scale` (2, 4, 8 or 16); kwargs: see `LiteUNetConfig` (registered as
    "lite_unet" in `depth_sr_ros.models`)."""
    return LiteUNet(scale, **kwargs)
