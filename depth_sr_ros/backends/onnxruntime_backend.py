"""`onnxruntime` backend: the network as ONNX, run by an ONNX Runtime session.

The graph is the shipped ONNX file of the weights when there is one that matches its card
(`onnx_path`, dynamic height and width: one session serves every input size, and no torch is
needed), else the torch model exported for the input shapes and cached (`engine_cache.cached_onnx`).

Execution providers are asked for in the order TensorRT EP, CUDA EP, CPU, keeping only those
this ONNX Runtime build offers (`ort.get_available_providers()`); on `device="cpu"` only the
CPU provider is asked for. After the session is created, `session.get_providers()` says which
providers were really loaded, and that is logged: a GPU provider that fails to load (missing
CUDA or TensorRT libraries) silently leaves ONNX Runtime on the CPU otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from depth_sr_ros.backends import (
    BACKENDS,
    INPUT_NAMES,
    OUTPUT_NAME,
    Availability,
    BackendBuildError,
    BackendConfig,
    InferenceBackend,
    Shapes,
    cpu_threads,
)
from depth_sr_ros.backends.engine_cache import cached_onnx
from depth_sr_ros.optional import missing_torch

LOG = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def provider_list(config: BackendConfig, available: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(provider, options) in preference order, filtered by what this build offers."""
    wanted: list[tuple[str, dict[str, Any]]] = []
    if config.wants_cuda:
        device_id = str(config.device_index)
        trt_cache = Path(config.engine_cache_dir) / "ort_tensorrt"
        wanted += [
            (
                "TensorrtExecutionProvider",
                {
                    "device_id": device_id,
                    "trt_fp16_enable": str(config.precision == "fp16"),
                    "trt_max_workspace_size": str(config.workspace_mb << 20),
                    "trt_engine_cache_enable": "True",
                    "trt_engine_cache_path": str(trt_cache),
                    "trt_timing_cache_enable": "True",
                    "trt_timing_cache_path": str(trt_cache),
                },
            ),
            ("CUDAExecutionProvider", {"device_id": device_id}),
        ]
    wanted.append(("CPUExecutionProvider", {}))
    return [(name, options) for name, options in wanted if name in available]


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(InferenceBackend):
    name = "onnxruntime"

    def __init__(self, model, config: BackendConfig, onnx_path: Path | None = None) -> None:
        super().__init__(model, config, onnx_path)
        self.session: Any = None  # onnxruntime.InferenceSession once built
        self.providers: list[str] = []

    @staticmethod
    def unavailable_reason(config: BackendConfig, availability: Availability) -> str | None:
        if not availability.ort_providers:
            return "onnxruntime is not installed"
        if config.wants_cuda and not availability.ort_gpu:
            return (
                "this onnxruntime build offers no GPU provider "
                f"({', '.join(availability.ort_providers)}); install onnxruntime-gpu"
            )
        return None

    def describe(self) -> str:
        return f"onnxruntime[{self.providers[0] if self.providers else 'not built'}]"

    def _graph(self, shapes: Shapes) -> Path:
        """The shipped dynamic-shape ONNX file, else the model exported for `shapes` (needs torch)."""
        if self.onnx_path is not None:
            return self.onnx_path
        if self.model is None:
            raise BackendBuildError(f"no ONNX file ships with these weights: {missing_torch('exporting one')}")
        try:
            return cached_onnx(self.model, shapes, self.config.engine_cache_dir, self.config.opset)
        except ValueError as exc:
            raise BackendBuildError(str(exc)) from exc

    def _build(self, shapes: Shapes) -> None:
        import onnxruntime as ort

        if self.session is not None and self.onnx_path is not None:  # dynamic shapes: the session serves them
            self.warm_up(shapes)
            return
        onnx_path = self._graph(shapes)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = cpu_threads(self.config)
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: on a robot's shared CPU, spinning after
        # each run stole the cores from the pre/post-processing and the rest of the robot
        # (BENCHMARKS.md: lite x4 on 2 cores, network 128 -> 85 ms, other stages 12 -> 5 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        asked = provider_list(self.config, ort.get_available_providers())
        if asked[0][0] == "TensorrtExecutionProvider":
            Path(asked[0][1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        try:
            self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=asked)
        except Exception as exc:  # ONNX Runtime raises several unrelated types
            raise BackendBuildError(f"onnxruntime could not load {onnx_path.name}: {exc}") from exc
        self.providers = list(self.session.get_providers())
        self._check_io()
        asked_names = [name for name, _ in asked]
        LOG.info(
            "onnxruntime runs %s on %s (asked for %s, %d CPU threads)",
            onnx_path.name, self.providers[0], ", ".join(asked_names), options.intra_op_num_threads,
        )
        if self.config.wants_cuda and self.providers[0] not in GPU_PROVIDERS:
            message = (
                f"onnxruntime loaded no GPU provider (asked for {', '.join(asked_names)}, got "
                f"{', '.join(self.providers)}): check the CUDA/cuDNN/TensorRT libraries"
            )
            raise BackendBuildError(message)
        self.warm_up(shapes)

    def _check_io(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if sorted(inputs) != sorted(INPUT_NAMES) or OUTPUT_NAME not in outputs:
            raise BackendBuildError(
                f"exported graph has inputs {inputs} and outputs {outputs}; "
                f"expected inputs {list(INPUT_NAMES)} and output {OUTPUT_NAME!r}"
            )

    def _infer(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        assert self.session is not None, "run() builds before inferring"
        feeds = dict(zip(INPUT_NAMES, (rgb, depth, mask), strict=True))
        (out,) = self.session.run([OUTPUT_NAME], feeds)
        return np.ascontiguousarray(out, dtype=np.float32)
