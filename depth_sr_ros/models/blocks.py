"""Small named building blocks shared by the network backbones (timm / NAFNet style).

Conventions: feature maps are `B x C x H x W`; residual branches are scaled by learnable
parameters that start at zero (so a fresh block is the identity); norm and activation layers
are passed in as classes; a disabled part is `nn.Identity()`. Operations that need an ONNX-safe
variant read `depth_sr_ros.models.export.is_exportable()`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from depth_sr_ros.models.export import is_exportable


# ----------------------------------------------------------------------------- padding helpers
def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "replicate") -> torch.Tensor:
    """Pad the bottom and right of `x` so that its height and width are multiples of `multiple`.

    In exportable mode the pad is always emitted (possibly by zero pixels) so that the graph has
    no shape-dependent branch.
    """
    height, width = x.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h or pad_w or is_exportable():
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x


def lr_multiple(scale: int, hr_multiple: int) -> int:
    """Smallest low-resolution multiple `m` such that `m * scale` is a multiple of `hr_multiple`."""
    return hr_multiple // math.gcd(hr_multiple, scale)


def pad_inputs(
    rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor, scale: int, hr_multiple: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad an (rgb, depth, mask) triple consistently (replicate, bottom/right).

    The low-resolution depth and mask are padded to a multiple of `lr_multiple(scale, hr_multiple)`
    and the RGB by `scale` times as many pixels, so the padded RGB is still exactly `scale` times
    the padded depth and a multiple of `hr_multiple`. Crop the output back with `crop_to`.
    """
    check_inputs(rgb, depth, mask, scale)
    depth = pad_to_multiple(depth, lr_multiple(scale, hr_multiple))
    mask = pad_to_multiple(mask, lr_multiple(scale, hr_multiple))
    pad_h = depth.shape[-2] * scale - rgb.shape[-2]
    pad_w = depth.shape[-1] * scale - rgb.shape[-1]
    if pad_h or pad_w or is_exportable():
        rgb = F.pad(rgb, (0, pad_w, 0, pad_h), mode="replicate")
    return rgb, depth, mask


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Undo `pad_to_multiple` / `pad_inputs`: keep the top-left `height x width`."""
    return x[..., :height, :width]


def check_inputs(rgb: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor, scale: int) -> None:
    """Check the network contract: rgb Bx3xHxW, depth and mask Bx1xhxw, H = h*scale, W = w*scale."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be Bx3xHxW, got {tuple(rgb.shape)}")
    if depth.dim() != 4 or depth.shape[1] != 1 or mask.shape != depth.shape:
        raise ValueError(f"depth and mask must both be Bx1xhxw, got {tuple(depth.shape)} and {tuple(mask.shape)}")
    if rgb.shape[-2] != depth.shape[-2] * scale or rgb.shape[-1] != depth.shape[-1] * scale:
        raise ValueError(
            f"rgb {tuple(rgb.shape[-2:])} must be {scale}x the depth {tuple(depth.shape[-2:])} (scale {scale})"
        )


def upsample_depth(depth: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling of a normalised depth map by an integer factor (the residual path)."""
    return F.interpolate(depth, scale_factor=float(scale), mode="bicubic", align_corners=False)


def upsample_mask(mask: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of a 0/1 validity mask by an integer factor."""
    return F.interpolate(mask, scale_factor=float(scale), mode="nearest")


class FrozenFoundationNet(nn.Module):
    """Base of networks that hold a frozen foundation model in `self.foundation`: `train()`
    switches our layers and leaves the foundation model in eval mode."""

    foundation: nn.Module

    def train(self, mode: bool = True) -> FrozenFoundationNet:
        super().train(mode)
        self.foundation.eval()
        return self


# ----------------------------------------------------------------------------- normalisation
class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of a `B x C x H x W` map (NAFNet's LayerNorm2d)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def channel_stats(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over H, W (biased variance + eps)."""
    mean = x.mean((2, 3), keepdim=True)
    std = torch.sqrt((x - mean).pow(2).mean((2, 3), keepdim=True) + eps)
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation: `sigma_s * (content - mu_c) / sigma_c + mu_s`, channel-wise.

    In nafnet_adain, `content` is the guide (relative-depth) feature F_rel and `style` the
    low-resolution depth feature, so the guide is re-expressed in the depth features' statistics.
    """
    mu_c, sigma_c = channel_stats(content, eps)
    mu_s, sigma_s = channel_stats(style, eps)
    return sigma_s * (content - mu_c) / sigma_c + mu_s


class AdaIN(nn.Module):
    """Module form of `adain(content, style)`."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return adain(content, style, self.eps)


# ----------------------------------------------------------------------------- NAFNet blocks
class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them (NAFNet's activation-free gate)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class SimplifiedChannelAttention(nn.Module):
    """Global average pool and a 1x1 convolution, multiplied back onto the input (NAFNet SCA)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.proj(x.mean((2, 3), keepdim=True))


class NAFBlock(nn.Module):
    """NAFNet block: norm -> 1x1 -> depthwise 3x3 -> gate -> SCA -> 1x1 (+ beta), then a gated FFN (+ gamma)."""

    def __init__(
        self,
        channels: int,
        dw_expand: int = 2,
        ffn_expand: int = 2,
        norm_layer: type[nn.Module] = LayerNorm2d,
        gate_layer: type[nn.Module] = SimpleGate,
    ) -> None:
        super().__init__()
        dw_channels = channels * dw_expand
        ffn_channels = channels * ffn_expand
        self.norm1 = norm_layer(channels)
        self.conv1 = nn.Conv2d(channels, dw_channels, 1)
        self.conv2 = nn.Conv2d(dw_channels, dw_channels, 3, padding=1, groups=dw_channels)
        self.gate1 = gate_layer()
        self.sca = SimplifiedChannelAttention(dw_channels // 2)
        self.conv3 = nn.Conv2d(dw_channels // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.norm2 = norm_layer(channels)
        self.conv4 = nn.Conv2d(channels, ffn_channels, 1)
        self.gate2 = gate_layer()
        self.conv5 = nn.Conv2d(ffn_channels // 2, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.sca(self.gate1(self.conv2(self.conv1(self.norm1(x))))))
        x = x + self.beta * y
        y = self.conv5(self.gate2(self.conv4(self.norm2(x))))
        return x + self.gamma * y


def naf_stage(channels: int, num_blocks: int) -> nn.Module:
    """`num_blocks` NAFBlocks in sequence (`nn.Identity` for zero)."""
    if num_blocks == 0:
        return nn.Identity()
    return nn.Sequential(*(NAFBlock(channels) for _ in range(num_blocks)))


class Downsample(nn.Module):
    """Halve the resolution with a 2x2 stride-2 convolution, changing the channel count."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: 1x1 convolution to `4 * out_channels`, then pixel shuffle (NAFNet)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * 4, 1, bias=False)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


# ----------------------------------------------------------------------------- RCAN blocks
class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (RCAN): pool, reduce, activate, expand, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = act_layer()
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(weights)


class ResidualChannelAttentionBlock(nn.Module):
    """RCAB: conv 3x3 -> act -> conv 3x3 -> channel attention, added back with a zero-init scale."""

    def __init__(self, channels: int, reduction: int = 16, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = act_layer()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.attention = ChannelAttention(channels, reduction, act_layer)
        self.res_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.attention(self.conv2(self.act(self.conv1(x))))


RCAB = ResidualChannelAttentionBlock


def rcab_stage(channels: int, num_blocks: int, reduction: int = 16) -> nn.Module:
    """`num_blocks` RCABs in sequence (`nn.Identity` for zero)."""
    if num_blocks == 0:
        return nn.Identity()
    return nn.Sequential(*(ResidualChannelAttentionBlock(channels, reduction) for _ in range(num_blocks)))


# ----------------------------------------------------------------------------- token attention
def channel_cross_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, temperature: torch.Tensor
) -> torch.Tensor:
    """Transposed ("channel") cross-attention, linear in the number of pixels (Restormer MDTA style).

    query, key, value: `B x heads x c x N` (N pixels); query and key are L2-normalised along N.
    The attention map is `c x c` per head: `softmax(temperature * q k^T) v`. Exportable mode uses
    plain matmul + softmax; otherwise `scaled_dot_product_attention` with `scale=1`.
    """
    query = F.normalize(query, dim=-1) * temperature
    key = F.normalize(key, dim=-1)
    if is_exportable():
        return torch.softmax(query @ key.transpose(-2, -1), dim=-1) @ value
    return F.scaled_dot_product_attention(query, key, value, scale=1.0)


class GuidedTokenAttention(nn.Module):
    """Guided Token Attention (NAIMA): inject ViT tokens into a depth feature map.

    tokens `B x token_dim x Gh x Gw` (patch tokens reshaped to their grid) -> 1x1 convolution
    projection to `semantic_dim * shuffle**2` -> pixel shuffle by `shuffle` -> bilinear resample to
    the depth feature size (ViT patches are 14 px, depth levels are powers of two) -> cross-attention
    with the depth features as query and the semantic features as key and value -> output
    projection, added to the depth features with a learnable `alpha` that starts at zero.
    """

    def __init__(
        self,
        channels: int,
        token_dim: int,
        shuffle: int,
        semantic_dim: int = 16,
        num_heads: int = 1,
        norm_layer: type[nn.Module] = LayerNorm2d,
    ) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels {channels} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.token_proj = nn.Conv2d(token_dim, semantic_dim * shuffle * shuffle, 1)
        self.shuffle = nn.PixelShuffle(shuffle) if shuffle > 1 else nn.Identity()
        self.norm = norm_layer(channels)
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(semantic_dim, channels, 1)
        self.value = nn.Conv2d(semantic_dim, channels, 1)
        self.temperature = nn.Parameter(torch.ones(1, num_heads, 1, 1))
        self.out_proj = nn.Conv2d(channels, channels, 1)
        self.alpha = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def semantic_features(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Token grid -> semantic feature map of `semantic_dim` channels at `height x width`."""
        semantic = self.shuffle(self.token_proj(tokens))
        return F.interpolate(semantic, size=(height, width), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        semantic = self.semantic_features(tokens, height, width)
        heads = self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, heads, channels // heads, height * width)

        out = channel_cross_attention(
            split(self.query(self.norm(x))), split(self.key(semantic)), split(self.value(semantic)),
            self.temperature,
        )
        return x + self.alpha * self.out_proj(out.reshape(batch, channels, height, width))
