"""Batched image operations on `B x 1 x H x W` float32 tensors (CPU or CUDA) for the degradations
and the training batches: separable blurs, min/max filters, hole filling.

NaN marks an invalid pixel where a function says so; `valid` / `known` masks are bool tensors of
the same shape. Nothing here synchronises with the device unless a docstring says so.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, radius: int, device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian taps of standard deviation `sigma`, `2 * radius + 1` long."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def separable(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of an already padded `x` with `taps` along both axes ('valid' mode)."""
    k = taps.numel()
    channels = x.shape[1]
    horizontal = taps.view(1, 1, 1, k).expand(channels, 1, 1, k)
    vertical = taps.view(1, 1, k, 1).expand(channels, 1, k, 1)
    return F.conv2d(F.conv2d(x, horizontal, groups=channels), vertical, groups=channels)


def gaussian_blur(x: torch.Tensor, sigma: float, mode: str = "reflect", radius: int | None = None) -> torch.Tensor:
    """Gaussian blur cut at `radius` (default 3 sigma) with `mode` padding ("reflect",
    "replicate", or "odd" = point reflection, which keeps a linear ramp linear up to the border)."""
    radius = math.ceil(3 * sigma) if radius is None else radius
    radius = max(1, min(radius, x.shape[-2] - 1, x.shape[-1] - 1))
    padded = odd_reflect_pad(x, radius) if mode == "odd" else F.pad(x, (radius,) * 4, mode=mode)
    return separable(padded, gaussian_kernel(sigma, radius, x.device))


def odd_reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad by point reflection about the edge pixels: `2 * edge - mirror` (numpy's reflect_type="odd")."""
    mirrored = F.pad(x, (pad,) * 4, mode="reflect")
    edges = F.pad(x, (pad,) * 4, mode="replicate")
    return 2 * edges - mirrored


def max_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum over the `(2 r + 1)^2` square around each pixel (separable, edges replicated)."""
    k = 2 * radius + 1
    x = F.max_pool2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), (1, k), stride=1)
    return F.max_pool2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), (k, 1), stride=1)


def box_sum3(x: torch.Tensor) -> torch.Tensor:
    """Sum over each pixel's 3x3 neighbourhood, zero outside the image."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, stride=1) * 9.0


def push_pull(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill unknown pixels from a half-resolution weighted mean of the known ones, recursively
    down to 1 pixel, then bilinearly back up (a smooth, sync-free fill). Pixels of a sample with no
    known pixel at all become 0."""
    weights = known.to(values.dtype)
    values = torch.where(known, values, torch.zeros_like(values))
    if min(values.shape[-2:]) <= 1:
        return values
    h, w = values.shape[-2:]
    even = F.pad(torch.cat([values * weights, weights], 1), (0, w % 2, 0, h % 2), mode="replicate")
    coarse = F.avg_pool2d(even, 2)
    coarse_w = coarse[:, 1:]
    mean = coarse[:, :1] / coarse_w.clamp_min(1e-6)
    filled = push_pull(mean, coarse_w > 0)
    up = F.interpolate(filled, size=(h + h % 2, w + w % 2), mode="bilinear", align_corners=False)[..., :h, :w]
    return torch.where(known, values, up)


def smooth_fill(values: torch.Tensor, known: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """`push_pull` relaxed by `iterations` Jacobi steps of Laplace's equation inside the unknown
    region (the known pixels stay fixed): a smooth membrane across each hole."""
    out = push_pull(values, known)
    for _ in range(iterations):
        relaxed = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        out = torch.where(known, out, relaxed)
    return out


def nearest_fill(values: torch.Tensor, valid: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
    """Fill invalid pixels ring by ring from their valid neighbours (the mean of the valid 3x3
    neighbours, repeated): close to the pipeline's nearest-valid-pixel fill. `iterations=None`
    repeats until every pixel is filled (synchronises once per ring); a number fills that many
    rings without synchronising and `push_pull` fills what is left. On the CPU (where checking
    costs no device synchronisation) an image without holes comes back as is."""
    if values.device.type == "cpu" and bool(valid.all()):
        return values
    known = valid.clone()
    out = torch.where(valid, values, torch.zeros_like(values))
    step = 0
    while iterations is None or step < iterations:
        if iterations is None and bool(known.all()):
            break
        weights = known.to(values.dtype)
        total, count = box_sum3(out * weights), box_sum3(weights)
        newly = ~known & (count > 0)
        out = torch.where(newly, total / count.clamp_min(1.0), out)
        grown = known | newly
        if iterations is None and bool((grown == known).all()):
            break  # a sample without any valid pixel: nothing more to grow
        known = grown
        step += 1
    return push_pull(out, known) if iterations is not None else out
