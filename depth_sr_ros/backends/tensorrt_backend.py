"""`tensorrt` backend: a TensorRT 10 engine built from the exported ONNX and cached on disk.

Build (TensorRT 10 Python API): `Builder.create_network(0)` (explicit batch is the only mode),
`OnnxParser.parse_from_file`, a builder config with a workspace limit, `BuilderFlag.FP16` for
fp16, one optimisation profile pinned to the input shapes, and a timing cache kept per
TensorRT version and GPU; `build_serialized_network` gives the engine bytes. Engines are cached
by `EngineCache` (ONNX sha256, TensorRT version, GPU name and compute capability, precision,
shapes). Run: torch CUDA tensors are the I/O buffers, bound by name with `set_tensor_address`,
and `execute_async_v3` runs on `torch.cuda.current_stream()`. `tensorrt` is imported lazily.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
)
from depth_sr_ros.backends.engine_cache import (
    CacheOutcome,
    EngineCache,
    EngineKey,
    cached_onnx,
    scale_of,
    sha256_file,
)
from depth_sr_ros.optional import has_torch

if TYPE_CHECKING:  # torch is optional for the package; this backend imports it when used
    import torch

LOG = logging.getLogger(__name__)


def import_tensorrt():
    """`import tensorrt`, with an error that says what to install."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendBuildError(
            "TensorRT is not installed: install the `tensorrt` Python package matching your CUDA "
            "(JetPack ships it on Jetson), or use --backend onnxruntime/torch"
        ) from exc
    return trt


def trt_logger(trt):
    """One TensorRT logger per process, warnings and errors only."""
    global _TRT_LOGGER
    if _TRT_LOGGER is None:
        _TRT_LOGGER = trt.Logger(trt.Logger.WARNING)
    return _TRT_LOGGER


_TRT_LOGGER = None


def engine_key(onnx_path: Path, config: BackendConfig, shapes: Shapes, label: str, trt_version: str) -> EngineKey:
    """The cache key of the engine for this ONNX file, device, precision and input shapes."""
    import torch

    index = config.device_index
    major, minor = torch.cuda.get_device_capability(index)
    return EngineKey(
        label=label,
        onnx_sha256=sha256_file(onnx_path),
        tensorrt_version=trt_version,
        gpu_name=torch.cuda.get_device_name(index),
        compute_capability=f"{major}.{minor}",
        precision=config.precision,
        shapes=tuple(tuple(s) for s in shapes),
    )


def build_serialized_engine(
    onnx_path: Path, shapes: Shapes, precision: str, workspace_mb: int, timing_cache: Path
) -> bytes:
    """Parse `onnx_path` and build a serialised engine for exactly these input shapes."""
    trt = import_tensorrt()
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendBuildError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    by_name = dict(zip(INPUT_NAMES, shapes, strict=True))
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in by_name:
            raise BackendBuildError(f"unexpected engine input {name!r}; expected {list(INPUT_NAMES)}")
        shape = tuple(by_name[name])
        profile.set_shape(name, min=shape, opt=shape, max=shape)
    config.add_optimization_profile(profile)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendBuildError(f"TensorRT failed to build an engine from {onnx_path.name} (see its log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(serialized))


def _torch_dtype(trt, dtype) -> torch.dtype:
    import torch

    return {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}[dtype]


@BACKENDS.register("tensorrt")
class TensorRTBackend(InferenceBackend):
    name = "tensorrt"

    def __init__(self, model, config: BackendConfig, onnx_path: Path | None = None) -> None:
        super().__init__(model, config, onnx_path)
        self.engine: Any = None  # tensorrt.ICudaEngine once built
        self.context: Any = None  # tensorrt.IExecutionContext once built
        self.buffers: dict[str, torch.Tensor] = {}
        self.outcome: CacheOutcome | None = None

    @staticmethod
    def unavailable_reason(config: BackendConfig, availability: Availability) -> str | None:
        if not config.wants_cuda:
            return "TensorRT needs a CUDA device"
        if not availability.tensorrt:
            return "the tensorrt Python package is not installed"
        if not availability.torch:
            return "no torch network loaded (the TensorRT backend exports it and keeps its buffers in torch CUDA tensors)"
        if not availability.cuda:
            return "no CUDA device is visible"
        return None

    def describe(self) -> str:
        return f"tensorrt[{self.config.precision}]"

    def build_engine(self, shapes: Shapes) -> CacheOutcome:
        """Load or build the engine for `shapes` (the `build-engine` tool calls this directly)."""
        import torch

        trt = import_tensorrt()
        if not torch.cuda.is_available():
            raise BackendBuildError("TensorRT needs a CUDA device and torch sees none")
        try:
            onnx_path = cached_onnx(self.model, shapes, self.config.engine_cache_dir, self.config.opset)
        except ValueError as exc:
            raise BackendBuildError(str(exc)) from exc
        rows, cols = shapes[0][2:]
        label = f"{type(self.model).__name__}-{cols}x{rows}-x{scale_of(shapes)}-{self.config.precision}"
        key = engine_key(onnx_path, self.config, shapes, label, trt.__version__)
        cache = EngineCache(Path(self.config.engine_cache_dir) / "tensorrt")
        runtime = trt.Runtime(trt_logger(trt))
        return cache.load_or_build(
            key,
            build=lambda: build_serialized_engine(
                onnx_path, shapes, self.config.precision, self.config.workspace_mb, cache.timing_cache_path(key)
            ),
            deserialize=runtime.deserialize_cuda_engine,
        )

    def _build(self, shapes: Shapes) -> None:
        import torch

        trt = import_tensorrt()
        device = torch.device(self.config.device)
        with torch.cuda.device(device):
            self.outcome = self.build_engine(shapes)
            self.engine = self.outcome.engine
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise BackendBuildError("TensorRT could not create an execution context (GPU memory?)")
            by_name = dict(zip(INPUT_NAMES, shapes, strict=True))
            self.buffers = {}
            for i in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(i)
                is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                if is_input and not self.context.set_input_shape(name, by_name[name]):
                    raise BackendBuildError(f"engine refuses input shape {by_name[name]} for {name!r}")
            for i in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(i)
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(name))
                self.buffers[name] = torch.empty(shape, dtype=dtype, device=device)
                self.context.set_tensor_address(name, self.buffers[name].data_ptr())
        if OUTPUT_NAME not in self.buffers:
            raise BackendBuildError(f"engine has no output {OUTPUT_NAME!r}: {sorted(self.buffers)}")
        started = time.perf_counter()
        self.warm_up(shapes)
        LOG.info(
            "TensorRT engine %s ready (%s; warm-up %.0f ms)",
            self.outcome.engine_path.name,
            "built: " + self.outcome.reason if self.outcome.built else "loaded from cache",
            (time.perf_counter() - started) * 1e3,
        )

    def _infer(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        assert self.context is not None, "run() builds before inferring"
        device = torch.device(self.config.device)
        with torch.cuda.device(device):  # TensorRT enqueues on the current device
            stream = torch.cuda.current_stream(device)
            for name, array in zip(INPUT_NAMES, (rgb, depth, mask), strict=True):
                buffer = self.buffers[name]
                buffer.copy_(torch.from_numpy(array).to(buffer.dtype), non_blocking=True)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
            return np.ascontiguousarray(self.buffers[OUTPUT_NAME].float().cpu().numpy())


def tensorrt_available() -> bool:
    """True where the tensorrt package is importable and torch sees a CUDA device."""
    if importlib.util.find_spec("tensorrt") is None or not has_torch():
        return False
    import torch

    return bool(torch.cuda.is_available())
