"""The one backbone registry: classic upsamplers (numpy) and networks (torch) by name.

Classic entries are registered by `depth_sr_ros.core.classic`; network entries by the modules
of `depth_sr_ros.models`. `load_backbones()` imports both so that every name is known.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from depth_sr_ros.core.registry import Registry


@dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone.

    kind: "classic" -> `factory(**kwargs)` returns an object with
        `upsample(rgb, depth_lr, valid_lr, scale) -> depth_hr` (numpy, metres).
    kind: "network" -> `factory(scale=..., **kwargs)` returns a `torch.nn.Module` with
        `forward(rgb, depth, mask) -> depth_hr` on normalised tensors (see docs/ARCHITECTURE.md).
    foundation: names of the foundation weights the backbone can use ("depth_anything_v2_small",
        "dinov2_vits14"); `requires_foundation` says whether it cannot run without them.
    """

    name: str
    kind: Literal["classic", "network"]
    factory: Callable[..., Any]
    description: str
    foundation: tuple[str, ...] = ()
    requires_foundation: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)


BACKBONES: Registry[BackboneSpec] = Registry("backbone")

_CLASSIC_MODULES = ("depth_sr_ros.core.classic", "depth_sr_ros.core.sparse")


def register_backbone(
    name: str,
    kind: Literal["classic", "network"],
    description: str,
    foundation: tuple[str, ...] = (),
    requires_foundation: bool = False,
    **defaults: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register `factory` under `name` and return it unchanged."""

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        BACKBONES.add(
            name,
            BackboneSpec(name, kind, factory, description, foundation, requires_foundation, defaults),
        )
        return factory

    return decorator


def load_backbones() -> Registry[BackboneSpec]:
    """Import every module that registers backbones and return the registry."""
    from depth_sr_ros.models import NETWORK_MODULES

    for module in (*_CLASSIC_MODULES, *NETWORK_MODULES):
        importlib.import_module(module)
    return BACKBONES


def get_backbone(name: str) -> BackboneSpec:
    return load_backbones().get(name)
