"""Optional packages: whether the `[torch]` extra is installed, and the error that says how to install it.

Running the package (demo, replay, the node) needs no torch: classic backbones run in numpy and the
shipped networks run through ONNX Runtime from their ONNX files (`models/*.onnx`). Training, ONNX
export, the `torch` and `tensorrt` backends and weights without a shipped ONNX file need the
extra. Torch alone is not enough for weights: they load into torch through safetensors, which a
machine with a system torch (a Jetson's, or `pip install torch` before the package) may lack.
"""

from __future__ import annotations

import importlib.util

from depth_sr_ros.core.errors import UsageError

EXTRA = "torch"
TORCH_PIP = f"pip install 'depth_sr_ros[{EXTRA}]'"
TORCH_INSTALL = (
    f"{TORCH_PIP} (or, from a checkout, pip install -e '.[{EXTRA}]'); for the CPU-only "
    "build first run pip install torch --index-url https://download.pytorch.org/whl/cpu (docs/robot.md)"
)
WEIGHTS_MODULES = ("torch", "safetensors")
"""What a torch network built from our weights needs (`models/weights.py`)."""
PACKAGE_NAMES = {"torch": "PyTorch"}


class MissingExtra(UsageError, ModuleNotFoundError):
    """An optional package of the `[torch]` extra is not installed; the text names the pip command.

    A `UsageError` (`depth-sr` prints one line, exit 2) and a `ModuleNotFoundError` whose `name`
    is the missing module, as `import` would raise."""


def has_module(name: str) -> bool:
    """True where `import name` can work (checked without importing it)."""
    return importlib.util.find_spec(name) is not None


def has_torch() -> bool:
    """True where `import torch` can work (checked without importing it)."""
    return has_module("torch")


def has_torch_weights() -> bool:
    """True where torch networks can be built from safetensors weights: torch and safetensors."""
    return all(has_module(name) for name in WEIGHTS_MODULES)


def missing_torch(what: str, needs: tuple[str, ...] = ("torch",)) -> MissingExtra:
    """The error for `what` (e.g. "exporting lite to ONNX") where a module of `needs` is not installed.

    Names the first missing one ("torch" when all are there: the caller knows it is missing)."""
    missing = [name for name in needs if not has_module(name)] or [needs[0]]
    label = PACKAGE_NAMES.get(missing[0], missing[0])
    return MissingExtra(f"{what} needs {label}, which is not installed: {TORCH_INSTALL}", name=missing[0])


def require_torch_weights(what: str) -> None:
    """Raise `missing_torch(what, WEIGHTS_MODULES)` unless torch and safetensors are both installed."""
    if not has_torch_weights():
        raise missing_torch(what, WEIGHTS_MODULES)
