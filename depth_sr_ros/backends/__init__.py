"""Inference backends: run one network backbone on numpy arrays with torch, ONNX Runtime or TensorRT.

    backend = create_backend("auto", model, BackendConfig(precision="fp16", device="cuda"))
    depth_hr = backend.run(rgb, depth, mask)   # float32 NCHW in, 1x1xHxW float32 out

Every backend builds lazily for the first input shapes it sees and rebuilds when they change.
Building can fail (no GPU, an ONNX operator TensorRT lacks, a broken engine file); a failed build
falls back to the next backend of the chain with a warning, or raises when `strict` is set.

`auto` order (first available wins; each entry logs why it was or was not taken):
  1. `tensorrt`    `tensorrt` importable, CUDA available and a CUDA device asked for;
  2. `onnxruntime` with the TensorRT or CUDA execution provider, on a CUDA device;
  3. `torch`       on CUDA (fp16 autocast when `precision="fp16"`);
  4. `onnxruntime` on the CPU: its fused, graph-optimised convolutions beat eager torch on CPU
     for the shipped backbones (measured in BENCHMARKS.md);
  5. `torch`       on the CPU, the last resort (where torch is installed).
Without torch, `onnxruntime` runs the ONNX file shipped beside the weights (`onnx_path`).
An explicitly named backend falls back along the same order from its own position.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from depth_sr_ros.core.registry import Registry
from depth_sr_ros.optional import has_torch, has_torch_weights

LOG = logging.getLogger(__name__)

Shapes = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
"""Input shapes (rgb, depth, mask), each N x C x rows x cols."""

INPUT_NAMES = ("rgb", "depth", "mask")
OUTPUT_NAME = "depth_hr"


def default_device() -> str:
    """"cuda" where torch is installed and sees a GPU, else "cpu"."""
    if not has_torch():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/depth_sr_ros/engines` (XDG_CACHE_HOME unset, empty or relative: `~/.cache`,
    per the XDG base directory spec): exported ONNX graphs and TensorRT engines."""
    root = Path(os.environ.get("XDG_CACHE_HOME", "")).expanduser()
    if not root.is_absolute():
        root = Path.home() / ".cache"
    return root / "depth_sr_ros" / "engines"


@dataclass
class BackendConfig:
    """How a backend runs a network.

    precision: "fp32" or "fp16" (fp16 applies on CUDA: torch autocast, TensorRT FP16 kernels, the
        ONNX Runtime TensorRT EP; CPU paths always run fp32).
    device: "cpu", "cuda" or "cuda:N".
    engine_cache_dir: where exported ONNX graphs and TensorRT engines are kept.
    strict: raise instead of falling back to the next backend when a build fails.
    workspace_mb: TensorRT builder workspace limit, MiB.
    num_threads: CPU threads of ONNX Runtime and torch on the CPU; 0 = `OMP_NUM_THREADS` if set, else the usable cores
        minus one (one core stays with the ROS executor, drivers and numpy stages).
    warmup_runs: inference runs on zeros after each build, before the first real frame.
    opset: ONNX opset of the exported graph.
    """

    precision: Literal["fp32", "fp16"] = "fp32"
    device: str = field(default_factory=default_device)
    engine_cache_dir: Path = field(default_factory=default_cache_dir)
    strict: bool = False
    workspace_mb: int = 2048
    num_threads: int = 0
    warmup_runs: int = 2
    opset: int = 17

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be 'fp32' or 'fp16', not {self.precision!r}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', not {self.device!r}")
        self.engine_cache_dir = Path(self.engine_cache_dir).expanduser()

    @property
    def wants_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        """CUDA device ordinal ("cuda" -> 0, "cuda:1" -> 1)."""
        return int(self.device.split(":")[1]) if ":" in self.device else 0


def cpu_threads(config: BackendConfig) -> int:
    """`config.num_threads`, else `OMP_NUM_THREADS`, else the usable cores minus one (at least 1).

    One core is left to the ROS executor, the camera drivers and this node's own numpy stages.
    On the shared 2-core machine of BENCHMARKS.md (a training job on one core), lite x4 took
    70 ms on one ONNX Runtime thread and 83-96 ms on two; 140 ms on one torch thread and 816 ms
    on two (OpenMP barriers wait for a descheduled thread).
    """
    if config.num_threads > 0:
        return config.num_threads
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, usable - 1)


class BackendUnavailableError(RuntimeError):
    """The backend cannot run here (library missing, no GPU); raised at creation."""


class BackendBuildError(RuntimeError):
    """Export, engine build or session creation failed for the given shapes."""


class GpuOutOfMemoryError(RuntimeError):
    """The GPU ran out of memory for this resolution and scale."""


@dataclass(frozen=True)
class Availability:
    """What this machine offers; `probe()` measures it, tests inject it. `cuda`: torch sees a GPU;
    `torch`: torch networks can run (torch and safetensors installed, and a network loaded)."""

    cuda: bool
    tensorrt: bool
    ort_providers: tuple[str, ...]
    torch: bool = True

    @staticmethod
    def probe() -> Availability:
        providers: tuple[str, ...] = ()
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime as ort

            providers = tuple(ort.get_available_providers())
        cuda = False
        if has_torch():
            import torch

            cuda = torch.cuda.is_available()
        return Availability(
            cuda=cuda,
            tensorrt=importlib.util.find_spec("tensorrt") is not None,
            ort_providers=providers,
            torch=has_torch_weights(),
        )

    @property
    def ort_gpu(self) -> bool:
        return self.cuda and any(
            p in self.ort_providers for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
        )


class InferenceBackend(ABC):
    """Runs `model(rgb, depth, mask)` on float32 NCHW numpy arrays (see docs/ARCHITECTURE.md).

    Subclasses implement `_build(shapes)` (export/compile/warm up for these input shapes, raising
    `BackendBuildError`) and `_infer(rgb, depth, mask)`. `run` validates the inputs, builds on
    the first call and on every shape change, and turns a GPU out-of-memory into
    `GpuOutOfMemoryError` naming the resolution and scale.
    """

    name: str = ""

    def __init__(self, model, config: BackendConfig, onnx_path: Path | None = None) -> None:
        self.model = model  # the torch module; None where torch is not installed
        self.config = config
        self.onnx_path = onnx_path  # a checked ONNX file of the same network (dynamic H, W), if shipped
        self.shapes: Shapes | None = None

    @staticmethod
    @abstractmethod
    def unavailable_reason(config: BackendConfig, availability: Availability) -> str | None:
        """Why this backend cannot run with `config` here, or None when it can."""

    @abstractmethod
    def _build(self, shapes: Shapes) -> None: ...

    @abstractmethod
    def _infer(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str:
        """Short label for logs and benchmarks, e.g. "onnxruntime[CPUExecutionProvider]"."""
        return self.name

    def prepare(self, shapes: Shapes) -> None:
        """Build for `shapes` now (no-op when already built for them)."""
        if shapes != self.shapes:
            self.shapes = None
            with _translate_oom(shapes):
                self._build(shapes)
            self.shapes = shapes

    def run(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        shapes = check_inputs(rgb, depth, mask)
        self.prepare(shapes)
        with _translate_oom(shapes):
            return self._infer(rgb, depth, mask)

    def warm_up(self, shapes: Shapes) -> None:
        """`config.warmup_runs` runs on zeros: kernels chosen, memory allocated, caches primed."""
        zeros = [np.zeros(s, dtype=np.float32) for s in shapes]
        for _ in range(self.config.warmup_runs):
            self._infer(*zeros)


def check_inputs(rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> Shapes:
    """Validate the contract's arrays and return their shapes; raise ValueError otherwise."""
    for label, array, channels in (("rgb", rgb, 3), ("depth", depth, 1), ("mask", mask, 1)):
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            raise ValueError(f"{label} must be a float32 numpy array, got {getattr(array, 'dtype', type(array))}")
        if array.ndim != 4 or array.shape[0] != 1 or array.shape[1] != channels:
            raise ValueError(f"{label} must be 1x{channels}xHxW, got shape {array.shape}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{label} must be C-contiguous (np.ascontiguousarray)")
    if depth.shape != mask.shape:
        raise ValueError(f"depth {depth.shape} and mask {mask.shape} differ in shape")
    return (tuple(rgb.shape), tuple(depth.shape), tuple(mask.shape))


def describe_shapes(shapes: Shapes) -> str:
    """"640x480 output from 160x120 input (x4)" for messages."""
    (_, _, rows, cols), (_, _, rows_lr, cols_lr) = shapes[0], shapes[1]
    scale = rows / rows_lr if rows_lr else float("nan")
    return f"{cols}x{rows} output from {cols_lr}x{rows_lr} input (x{scale:g})"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's CUDA OOM and the out-of-memory texts of ONNX Runtime, cuDNN and TensorRT."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # torch is optional: ONNX Runtime's texts are still recognised
        pass
    text = str(exc).lower()
    return any(s in text for s in ("out of memory", "failed to allocate memory", "cudnn_status_alloc_failed"))


class _translate_oom:
    """Context manager: a GPU out-of-memory becomes `GpuOutOfMemoryError` with the remedy."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:  # never swallows: other errors propagate unchanged
        if exc is not None and not isinstance(exc, GpuOutOfMemoryError) and is_out_of_memory(exc):
            raise GpuOutOfMemoryError(
                f"GPU out of memory at {describe_shapes(self.shapes)}: lower the output resolution or "
                "the scale, use precision fp16, a lighter backbone, or free GPU memory held by other "
                f"processes ({exc})"
            ) from exc


BACKENDS: Registry[type[InferenceBackend]] = Registry("inference backend")
_BACKEND_MODULES = (
    "depth_sr_ros.backends.tensorrt_backend",
    "depth_sr_ros.backends.onnxruntime_backend",
    "depth_sr_ros.backends.torch_backend",
)

# The documented order, as (backend, device kind) pairs.
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("tensorrt", "cuda"),
    ("onnxruntime", "cuda"),
    ("torch", "cuda"),
    ("onnxruntime", "cpu"),
    ("torch", "cpu"),
)


def load_backends() -> Registry[type[InferenceBackend]]:
    """Import the backend modules (each registers itself) and return the registry."""
    for module in _BACKEND_MODULES:
        importlib.import_module(module)
    return BACKENDS


def backend_names() -> list[str]:
    """Names accepted by `create_backend`."""
    return ["auto", *load_backends().names()]


@dataclass(frozen=True)
class Candidate:
    """One step of a fallback chain: the backend, the device it runs on and why it was chosen."""

    name: str
    device: str
    reason: str


def plan_chain(
    name: str, config: BackendConfig, availability: Availability | None = None
) -> tuple[list[Candidate], list[str]]:
    """The ordered candidates for `name` and the reasons the skipped ones were skipped.

    `auto` walks `AUTO_ORDER`; a named backend starts at its own entry for the configured
    device kind and keeps the later entries as fallbacks. CUDA entries are considered only when
    `config.device` asks for CUDA; the CPU entries always follow, so a robot whose GPU stack
    breaks still runs.
    """
    registry = load_backends()
    availability = availability or Availability.probe()
    skipped: list[str] = []
    order = [entry for entry in AUTO_ORDER if entry[1] == "cpu" or config.wants_cuda]
    if name != "auto":
        registry.get(name)  # KeyError listing the known names
        kind = "cuda" if config.wants_cuda else "cpu"
        starts = [i for i, entry in enumerate(order) if entry == (name, kind)]
        if starts:
            order = order[starts[0]:]
        else:
            skipped.append(f"{name} on {config.device}: {name} has no {kind} path")
    chain: list[Candidate] = []
    for backend, kind in order:
        device = config.device if kind == "cuda" else "cpu"
        why_not = registry.get(backend).unavailable_reason(_with_device(config, device), availability)
        if why_not is None:
            chain.append(Candidate(backend, device, _AUTO_REASON[backend, kind]))
        else:
            skipped.append(f"{backend} on {device}: {why_not}")
    return chain, skipped


_AUTO_REASON = {
    ("tensorrt", "cuda"): "TensorRT engine on the GPU, fastest where it builds",
    ("onnxruntime", "cuda"): "ONNX Runtime on a GPU execution provider",
    ("torch", "cuda"): "eager torch on the GPU",
    ("onnxruntime", "cpu"): "ONNX Runtime CPU, faster than eager torch on CPU",
    ("torch", "cpu"): "eager torch on the CPU, the last resort",
}


def _with_device(config: BackendConfig, device: str) -> BackendConfig:
    return config if device == config.device else replace(config, device=device)


class FallbackBackend(InferenceBackend):
    """Runs the first candidate whose build succeeds; a failed build moves on with a warning.

    With `config.strict` a failed build (or a fallback at creation) raises instead. A GPU
    out-of-memory error never falls back: the next GPU backend would run out of memory too.
    """

    name = "fallback"

    def __init__(self, model, config: BackendConfig, chain: Sequence[Candidate], onnx_path: Path | None = None) -> None:
        super().__init__(model, config, onnx_path)
        if not chain:
            raise BackendUnavailableError("no inference backend can run here")
        self.chain = list(chain)
        self.active: InferenceBackend = self._instantiate(self.chain[0])

    @staticmethod
    def unavailable_reason(config: BackendConfig, availability: Availability) -> str | None:
        return None

    def _instantiate(self, candidate: Candidate) -> InferenceBackend:
        cls = BACKENDS.get(candidate.name)
        return cls(self.model, _with_device(self.config, candidate.device), self.onnx_path)

    def describe(self) -> str:
        return self.active.describe()

    def _build(self, shapes: Shapes) -> None:
        while True:
            started = time.perf_counter()
            try:
                self.active.prepare(shapes)
                LOG.info(
                    "inference backend %s ready for %s in %.1f s",
                    self.active.describe(), describe_shapes(shapes), time.perf_counter() - started,
                )
                return
            except GpuOutOfMemoryError:
                raise
            except Exception as exc:  # every build failure takes the same path
                failed = self.chain.pop(0)
                if self.config.strict or not self.chain:
                    raise BackendBuildError(
                        f"{failed.name} on {failed.device} failed to build for {describe_shapes(shapes)}: {exc}"
                    ) from exc
                nxt = self.chain[0]
                LOG.warning(
                    "%s on %s failed to build for %s (%s); falling back to %s on %s",
                    failed.name, failed.device, describe_shapes(shapes), exc, nxt.name, nxt.device,
                )
                self.active = self._instantiate(nxt)

    def _infer(self, rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.active._infer(rgb, depth, mask)


def create_backend(
    name: str, model, config: BackendConfig | None = None, availability: Availability | None = None,
    onnx_path: Path | None = None,
) -> InferenceBackend:
    """Create backend `name` ("auto", "tensorrt", "onnxruntime", "torch") for `model`.

    `model` is the torch module, or None where torch is not installed; `onnx_path` a checked ONNX
    file of the same network with dynamic height and width (the shipped one, `models/shipped_onnx.py`),
    which `onnxruntime` runs instead of exporting `model`. Nothing is built until the first `run`
    (or `prepare`). Unavailable backends are skipped with a warning, or raise
    `BackendUnavailableError` when `config.strict` is set.
    """
    config = config or BackendConfig()
    availability = availability or Availability.probe()
    if model is None:  # no torch network (no [torch] extra: the shipped ONNX file runs): nothing for torch to run
        availability = replace(availability, torch=False)
    chain, skipped = plan_chain(name, config, availability)
    if name != "auto" and (not chain or chain[0].name != name or chain[0].device != config.device):
        message = f"backend {name!r} cannot run on {config.device}: " + "; ".join(skipped)
        if config.strict or not chain:
            raise BackendUnavailableError(message)
        LOG.warning("%s; falling back to %s on %s", message, chain[0].name, chain[0].device)
    elif name == "auto":
        if not chain:
            raise BackendUnavailableError("no inference backend can run here: " + "; ".join(skipped))
        LOG.info(
            "auto backend: %s on %s, %s%s",
            chain[0].name, chain[0].device, chain[0].reason,
            f" (skipped: {'; '.join(skipped)})" if skipped else "",
        )
    if config.strict:
        chain = chain[:1]
    return FallbackBackend(model, config, chain, onnx_path)
