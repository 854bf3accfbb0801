"""Optional packages: whether PyTorch is installed, and the error that says how to install it.

Running the package (demo, replay, the node) needs no torch: classic backbones run in numpy and the
shipped networks run through ONNX Runtime from their ONNX files (`models/*.onnx`). Training, ONNX
export, the `torch` and `tensorrt` backends and weights without a shipped ONNX file need it.
"""

from __future__ import annotations

import importlib.util

TORCH_INSTALL = (
    "pip install 'depth_sr_ros[torch]' (or, from a checkout, pip install -e '.[torch]'); for the CPU-only "
    "build first run pip install torch --index-url https://download.pytorch.org/whl/cpu (docs/robot.md)"
)


def has_torch() -> bool:
    """True where `import torch` can work (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def missing_torch(what: str) -> ModuleNotFoundError:
    """The error for `what` (e.g. "exporting lite to ONNX") on a machine without torch."""
    return ModuleNotFoundError(f"{what} needs PyTorch, which is not installed: {TORCH_INSTALL}", name="torch")
