"""`lite`: our small real-time guided depth SR network (no foundation weights; CPU and Jetson).

Design (all ONNX-friendly: convolutions, pixel (un)shuffle, bicubic/nearest interpolation):

- base: the normalised low-resolution depth, bicubic-upsampled to the output size; the network
  predicts a residual on top of it (global residual learning).
- trunk at 1/4 of the output resolution: the full-resolution RGB image and the upsampled depth
  and mask enter through space-to-depth (PixelUnshuffle by 4), so no pixel is thrown away; a few
  dilated residual blocks fuse depth and colour there, cheaply.
- head: PixelShuffle back to 1/2 resolution, fused with the RGB image unshuffled by 2, then a
  second PixelShuffle to the full-resolution residual, where depth edges are drawn.

Depth in and out is normalised per frame (see docs/ARCHITECTURE.md); the output is not clamped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from depth_sr_ros.models.blocks import crop_to, pad_inputs

SCALES = (2, 4, 8, 16)
WORK_FACTOR = 4  # trunk resolution = output resolution / WORK_FACTOR


class DilatedResBlock(nn.Module):
    """conv3x3(dilation) -> LeakyReLU -> conv3x3 plus the input (a plain residual block)."""

    def __init__(self, width: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def cubic_weights(scale: int, a: float = -0.5) -> torch.Tensor:
    """1-D bicubic taps (Keys kernel, `a` = -0.5 as PIL) for the `scale` output phases: scale x 5.

    Output pixel `i * scale + p` reads input pixels `i - 2 .. i + 2` (half-pixel centres).
    """

    def keys(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    taps = torch.zeros(scale, 5)
    for p in range(scale):
        src = (p + 0.5) / scale - 0.5  # source coordinate relative to input pixel i
        for k in range(5):
            taps[p, k] = keys(src - (k - 2))
    return taps / taps.sum(dim=1, keepdim=True)


class BicubicUpsample(nn.Module):
    """Integer-factor bicubic upsampling as one fixed 5x5 convolution and a PixelShuffle.

    Equal to resampling with the Keys kernel (a = -0.5, PIL's) and replicated borders, but far
    cheaper than ONNX Runtime's cubic Resize (which took ~27 ms of a 50 ms frame at 640x480).
    """

    kernel: torch.Tensor

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        t = cubic_weights(scale)
        kernel = torch.einsum("pk,ql->pqkl", t, t).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("kernel", kernel, persistent=False)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), self.kernel))


@dataclass(frozen=True)
class LiteConfig:
    """Factory keyword arguments of `lite` (stored in the model card)."""

    width: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 1)
    fine_width: int = 16


class GuidedResidualSR(nn.Module):
    """What `lite` and `lite_unet` share: the guided stem into the 1/4-resolution work grid and the
    head that draws the full-resolution residual over the bicubic base. A subclass builds its trunk
    and calls `encode`, its trunk, then `decode` (attribute names are the weights' key names)."""

    def _build_stem_and_head(self, scale: int, width: int, fine_width: int) -> None:
        self.upsample = BicubicUpsample(scale)
        # A stride-f f x f convolution is space-to-depth followed by a 1x1 convolution.
        self.stem_hr = nn.Conv2d(4, width, WORK_FACTOR, stride=WORK_FACTOR)
        self.stem_mask = nn.Conv2d(1, width, 1)
        self.stem = nn.Sequential(nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(width, width, 3, padding=1))
        self.to_half = nn.ConvTranspose2d(width, fine_width, 2, stride=2)
        self.rgb_half = nn.Conv2d(3, fine_width, 2, stride=2)
        residual_out = nn.Conv2d(fine_width, 4, 3, padding=1)
        # Start as plain bicubic: a random initial residual (~0.1) dwarfs the ~0.005 corrections
        # to learn and drove the head's ReLUs dead in our first CPU run (hence LeakyReLU too).
        for parameter in residual_out.parameters():  # weight and bias
            nn.init.zeros_(parameter)
        self.fine = nn.Sequential(
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(fine_width, fine_width, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            residual_out,
            nn.PixelShuffle(2),
        )

    def encode(
        self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(bicubic base at the output size, features on the 1/4-resolution work grid)."""
        base = self.upsample(depth)
        work = (base.shape[-2] // WORK_FACTOR, base.shape[-1] // WORK_FACTOR)
        mask_work = F.interpolate(mask, size=work, mode="nearest") if self.upsample.scale != WORK_FACTOR else mask
        x = self.stem_hr(torch.cat([rgb - 0.5, base - 0.5], dim=1)) + self.stem_mask(mask_work - 0.5)
        return base, self.stem(x)

    def decode(self, x: torch.Tensor, rgb: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """The output: `base` plus the residual drawn from work-grid features `x` and the RGB image."""
        return base + self.fine(self.to_half(x) + self.rgb_half(rgb - 0.5))


class LiteSR(GuidedResidualSR):
    """RGB-guided depth SR at any scale in `SCALES`: `forward(rgb, depth, mask) -> depth_hr`.

    width: trunk channels at 1/4 resolution; dilations: one residual block per entry;
    fine_width: channels at 1/2 resolution in the head.
    """

    def __init__(
        self,
        scale: int,
        width: int = 32,
        dilations: tuple[int, ...] = LiteConfig.dilations,
        fine_width: int = 16,
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"lite supports scales {SCALES}, got {scale}")
        self.scale = scale
        self.config = LiteConfig(width, tuple(dilations), fine_width)
        self._build_stem_and_head(scale, width, fine_width)
        self.trunk = nn.Sequential(*[DilatedResBlock(width, d) for d in dilations])

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = depth.shape[-2:]
        # The output size must be a multiple of WORK_FACTOR (pads the low-resolution grid at x2 only).
        rgb, depth, mask = pad_inputs(rgb, depth, mask, self.scale, WORK_FACTOR)
        base, x = self.encode(rgb, depth, mask)
        x = self.trunk(x) + x
        return crop_to(self.decode(x, rgb, base), h * self.scale, w * self.scale)


def lite(scale: int, **kwargs) -> LiteSR:
    """Build `LiteSR` for `scale` (2, 4, 8 or 16); kwargs: width, dilations, fine_width."""
    return LiteSR(scale, **kwargs)
