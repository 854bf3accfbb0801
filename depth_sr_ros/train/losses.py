"""Training losses on normalised depth (B x 1 x H x W), masked to valid ground truth.

- `l1_sobel`: L1 + `weight` x L1 of the Sobel gradients (the CVPR 2024 AIS depth challenge winner).
- `l1_grad`: L1 + 0.05 x L1 of the finite-difference gradients (NAIMA).

A gradient term counts only where every pixel under its stencil has valid ground truth.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


def masked_l1(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over valid pixels (0 when none is valid)."""
    valid = valid.to(pred.dtype)
    return (torch.abs(pred - gt) * valid).sum() / valid.sum().clamp_min(1.0)


def _sobel(x: torch.Tensor) -> torch.Tensor:
    kx = _SOBEL_X.to(x)
    kernel = torch.stack([kx, kx.t()])[:, None]
    return F.conv2d(x, kernel)  # B x 2 x (H-2) x (W-2)


def sobel_l1(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L1 between Sobel gradients (x and y) of prediction and ground truth, valid 3x3 windows."""
    window_valid = -F.max_pool2d(-valid.to(pred.dtype), 3, stride=1)  # min over 3x3
    return masked_l1(_sobel(pred), _sobel(torch.nan_to_num(gt)), window_valid.expand(-1, 2, -1, -1))


def gradient_l1(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L1 between forward differences along x and y, where both pixels are valid."""
    gt = torch.nan_to_num(gt)
    valid = valid.to(pred.dtype)
    terms = []
    for dim in (-1, -2):
        n = pred.shape[dim]
        d_pred = pred.narrow(dim, 1, n - 1) - pred.narrow(dim, 0, n - 1)
        d_gt = gt.narrow(dim, 1, n - 1) - gt.narrow(dim, 0, n - 1)
        both = valid.narrow(dim, 1, n - 1) * valid.narrow(dim, 0, n - 1)
        terms.append(masked_l1(d_pred, d_gt, both))
    return terms[0] + terms[1]


def l1_sobel(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """L1 + `weight` x Sobel-gradient L1."""
    return masked_l1(pred, torch.nan_to_num(gt), valid) + weight * sobel_l1(pred, gt, valid)


def l1_grad(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, weight: float = 0.05) -> torch.Tensor:
    """L1 + `weight` (0.05, NAIMA) x gradient L1."""
    return masked_l1(pred, torch.nan_to_num(gt), valid) + weight * gradient_l1(pred, gt, valid)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"l1_sobel": l1_sobel, "l1_grad": l1_grad}


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None
