"""`torch` backend: the network in eager PyTorch on the CPU or a CUDA device.

On CUDA with `precision="fp16"` the forward pass runs under `torch.autocast(float16)`, which
keeps normalisation and reductions in float32; the CPU always runs float32, on `cpu_threads`
threads (process-wide: torch has a single intra-op thread pool).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from depth_sr_ros.backends import (
    BACKENDS,
    Availability,
    BackendBuildError,
    BackendConfig,
    InferenceBackend,
    Shapes,
    cpu_threads,
)
from depth_sr_ros.optional import TORCH_PIP

if TYPE_CHECKING:  # torch is optional: imported when this backend is built
    import torch

LOG = logging.getLogger(__name__)


@BACKENDS.register("torch")
class TorchBackend(InferenceBackend):
    name = "torch"

    def __init__(self, model: torch.nn.Module | None, config: BackendConfig, onnx_path: Path | None = None) -> None:
        super().__init__(model, config, onnx_path)
        self.device_type = "cuda" if config.wants_cuda else "cpu"
        self.autocast = config.precision == "fp16" and self.device_type == "cuda"
        self.net: torch.nn.Module | None = None
        if config.precision == "fp16" and not self.autocast:
            LOG.info("torch on the CPU runs fp32; precision fp16 applies on CUDA only")

    @staticmethod
    def unavailable_reason(config: BackendConfig, availability: Availability) -> str | None:
        if not availability.torch:
            return f"no torch network loaded (it needs torch and safetensors: {TORCH_PIP})"
        if config.wants_cuda and not availability.cuda:
            return "torch sees no CUDA device"
        return None

    def describe(self) -> str:
        return f"torch[{self.config.device}{', fp16 autocast' if self.autocast else ''}]"

    def _build(self, shapes: Shapes) -> None:
        import torch

        if self.model is None:
            raise BackendBuildError("the torch backend has no torch network to run")
        if self.net is None:
            if self.device_type == "cuda":
                if not torch.cuda.is_available():
                    raise BackendBuildError("torch sees no CUDA device")
                # A copy: the caller's model stays on the CPU for ONNX export and other backends.
                self.net = copy.deepcopy(self.model).to(torch.device(self.config.device))
            else:
                self.net = self.model
                threads = cpu_threads(self.config)
                if torch.get_num_threads() != threads:
                    # Process-wide: torch has one intra-op pool. See `cpu_threads` for the measurement.
                    LOG.info("torch CPU threads %d -> %d", torch.get_num_threads(), threads)
                    torch.set_num_threads(threads)
            self.net.eval()
        self.warm_up(shapes)

    def _infer(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        assert self.net is not None, "run() builds before inferring"
        device = torch.device(self.config.device)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.autocast):
            inputs = [torch.from_numpy(a).to(device, non_blocking=True) for a in (rgb, depth, mask)]
            out = self.net(*inputs)
        return np.ascontiguousarray(out.float().cpu().numpy())
