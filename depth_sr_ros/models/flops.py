"""Parameter counts and GFLOPs of network backbones, measured by running them on the meta device.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`, which counts matrix products,
convolutions and attention as 2 FLOPs per multiply-accumulate (a FLOP = 2 x MAC) and ignores
element-wise work (norms, activations, interpolation). Inputs: one 640x480 output frame
(rgb 1x3x480x640, depth and mask at 480/s x 640/s), so the count includes the model's internal
padding. Foundation models are counted with randomly initialised copies of their published
architecture (`foundation.architecture_only`), which needs `transformers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.models.weights import FOUNDATION_PREFIX

OUTPUT_HEIGHT, OUTPUT_WIDTH = 480, 640

FOUNDATION_KWARGS = {"depth_anything_v2_small": "depth_anything", "dinov2_vits14": "dinov2"}


@dataclass(frozen=True)
class ModelCost:
    """Size and compute of one backbone at one scale; `gflops` includes the foundation model."""

    backbone: str
    scale: int
    parameters: int
    foundation_parameters: int
    gflops: float
    foundation: tuple[str, ...]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(own parameters, frozen foundation parameters)."""
    own = foundation = 0
    for name, param in model.named_parameters():
        if name.startswith(FOUNDATION_PREFIX):
            foundation += param.numel()
        else:
            own += param.numel()
    return own, foundation


def count_gflops(model: nn.Module, scale: int, height: int = OUTPUT_HEIGHT, width: int = OUTPUT_WIDTH) -> float:
    """GFLOPs (1 FLOP = 1/2 MAC) of one forward pass producing a `height x width` output.

    `model` may live on the meta device (no memory, no compute) or on the CPU.
    """
    device = next(model.parameters()).device
    rgb = torch.zeros(1, 3, height, width, device=device)
    depth = torch.zeros(1, 1, height // scale, width // scale, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(rgb, depth, torch.ones_like(depth))
    return counter.get_total_flops() / 1e9


def measure(backbone: str, scale: int, foundation: tuple[str, ...] = (), **kwargs: Any) -> ModelCost:
    """Build `backbone` at `scale` (default config unless kwargs say otherwise) on the meta device,
    with architecture-only copies of the `foundation` models named, and count it."""
    from depth_sr_ros.models.foundation import architecture_only

    spec = get_backbone(backbone)
    if spec.kind != "network":
        raise ValueError(f"{backbone!r} is a classic backbone; only networks are counted")
    with torch.device("meta"):
        for name in foundation:
            kwargs[FOUNDATION_KWARGS[name]] = architecture_only(name)
        model = spec.factory(scale=scale, **kwargs)
    own, frozen = count_parameters(model)
    return ModelCost(backbone, scale, own, frozen, count_gflops(model, scale), tuple(foundation))
