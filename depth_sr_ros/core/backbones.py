"""The one backbone registry: classic upsamplers (numpy) and networks (torch) by name.

Classic entries are registered by `depth_sr_ros.core.classic` and `core.sparse`; network entries
by `depth_sr_ros.models` (its `__init__`), lazily: the registry knows a network's name and spec,
and its torch module is imported only when the network is built (`LazyFactory`), so listing and
choosing backbones, and running shipped networks through ONNX Runtime, need no torch.
`load_backbones()` imports the registering modules so that every name is known.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from depth_sr_ros.core.registry import Registry
from depth_sr_ros.optional import missing_torch


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


@dataclass(frozen=True)
class LazyFactory:
    """A network factory named `"module:function"`, imported on its first call.

    Without torch, calling it raises `ModuleNotFoundError` (name "torch") saying what to install.
    """

    target: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module_name, _, function = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] != "torch":
                raise
            raise missing_torch(f"building the network {function!r}") from err
        return getattr(module, function)(*args, **kwargs)


BACKBONES: Registry[BackboneSpec] = Registry("backbone")

_BACKBONE_MODULES = ("depth_sr_ros.core.classic", "depth_sr_ros.core.sparse", "depth_sr_ros.models")


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


def register_network(
    name: str,
    target: str,
    description: str,
    foundation: tuple[str, ...] = (),
    requires_foundation: bool = False,
    **defaults: Any,
) -> None:
    """Register the network `name`, built by `target` ("module:function", imported when built)."""
    BACKBONES.add(
        name,
        BackboneSpec(name, "network", LazyFactory(target), description, foundation, requires_foundation, defaults),
    )


def load_backbones() -> Registry[BackboneSpec]:
    """Import every module that registers backbones (no torch: networks register lazily) and return the registry."""
    for module in _BACKBONE_MODULES:
        importlib.import_module(module)
    return BACKBONES


def get_backbone(name: str) -> BackboneSpec:
    return load_backbones().get(name)
