"""On-disk cache of exported ONNX graphs and TensorRT engines, with the reasons for every rebuild.

A TensorRT engine is only valid for the ONNX graph, TensorRT version, GPU (name and compute
capability), precision and input shapes it was built for, so `EngineKey` holds all of them and
the engine file is named by their digest. Next to each engine a JSON file records the key and
the engine's sha256. `EngineCache.load_or_build` loads a matching engine, and otherwise builds
one, logging why: no engine yet, a corrupt or truncated file, an engine TensorRT refuses, or
one built for another TensorRT version, GPU or model. TensorRT itself is never imported here:
the build and deserialise functions are passed in, so the module is tested without a GPU.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
LOG = logging.getLogger(__name__)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_digest(model) -> str:
    """sha256 over the model's class, parameter and buffer names, shapes, dtypes and values."""
    import torch

    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def scale_of(shapes) -> int:
    """Integer upsampling factor of (rgb, depth, mask) NCHW shapes; ValueError when not integral."""
    rows, cols = shapes[0][2:]
    rows_lr, cols_lr = shapes[1][2:]
    scale = rows // rows_lr if rows_lr else 0
    if scale < 1 or rows != rows_lr * scale or cols != cols_lr * scale:
        raise ValueError(
            f"rgb {cols}x{rows} is not an integer multiple of depth {cols_lr}x{rows_lr} in both axes"
        )
    return scale


def cached_onnx(model, shapes, cache_dir: Path, opset: int = 17) -> Path:
    """The model exported to ONNX for these static shapes, exported on first use.

    The file name holds the model class, a digest of its weights, the output size, the scale
    and the opset, so new weights or a new resolution get a new file.
    """
    from depth_sr_ros.models.export import export_onnx

    rows, cols = shapes[0][2:]
    scale = scale_of(shapes)
    name = f"{type(model).__name__}-{model_digest(model)[:16]}-{cols}x{rows}-x{scale}-opset{opset}.onnx"
    path = Path(cache_dir) / "onnx" / name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    export_model = model if on_cpu else copy.deepcopy(model).cpu()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    started = time.perf_counter()
    try:
        written = Path(export_onnx(export_model, tmp, height=rows, width=cols, scale=scale, opset=opset))
        os.replace(written, path)
    finally:
        tmp.unlink(missing_ok=True)
    LOG.info("exported %s to %s in %.1f s", type(model).__name__, path, time.perf_counter() - started)
    return path


@dataclass(frozen=True)
class EngineKey:
    """Everything a TensorRT engine depends on. `label` names the model, size and precision
    for humans and ties together the engines of one model across versions and GPUs."""

    label: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    shapes: tuple[tuple[int, ...], ...]

    def digest(self) -> str:
        fields = asdict(self)
        fields["shapes"] = [list(s) for s in self.shapes]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]

    def as_json(self) -> dict:
        fields = asdict(self)
        fields["shapes"] = [list(s) for s in self.shapes]
        return fields


@dataclass(frozen=True)
class CacheOutcome(Generic[T]):
    """What `load_or_build` returned and how: loaded from `engine_path`, or built and why."""

    engine: T
    engine_path: Path
    built: bool
    reason: str
    seconds: float


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


class EngineCache:
    """Engine files `<label>-<digest>.engine` with `<label>-<digest>.json` metadata in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def engine_path(self, key: EngineKey) -> Path:
        return self.directory / f"{_slug(key.label)}-{key.digest()}.engine"

    def meta_path(self, key: EngineKey) -> Path:
        return self.engine_path(key).with_suffix(".json")

    def timing_cache_path(self, key: EngineKey) -> Path:
        """One TensorRT timing cache per TensorRT version and GPU, shared by all models."""
        return self.directory / (
            f"timing-trt{_slug(key.tensorrt_version)}-{_slug(key.gpu_name)}-sm{key.compute_capability}.cache"
        )

    def load_or_build(
        self,
        key: EngineKey,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], T | None],
    ) -> CacheOutcome[T]:
        """Deserialise the cached engine for `key`, or build, store and deserialise a new one.

        `deserialize` returns None (or raises) for an engine it cannot use; that is a rebuild,
        not an error. A freshly built engine that cannot be deserialised raises RuntimeError.
        """
        started = time.perf_counter()
        path = self.engine_path(key)
        reason = self._why_not_usable(key)
        if reason is None:
            data = path.read_bytes()
            try:
                engine = deserialize(data)
            except (RuntimeError, ValueError, TypeError) as exc:  # a refusal means rebuild
                engine, reason = None, f"TensorRT refused the cached engine ({exc})"
            if engine is not None:
                LOG.info("loaded TensorRT engine %s", path)
                return CacheOutcome(engine, path, False, "cached", time.perf_counter() - started)
            reason = reason or "TensorRT could not deserialise the cached engine (incompatible or corrupt)"
        log = LOG.info if reason.startswith("no cached engine") else LOG.warning
        log("building TensorRT engine %s: %s", path.name, reason)
        data = bytes(build())
        self._store(key, data)
        engine = deserialize(data)
        if engine is None:
            raise RuntimeError(f"the freshly built engine {path} could not be deserialised")
        seconds = time.perf_counter() - started
        LOG.info("built TensorRT engine %s in %.1f s", path, seconds)
        return CacheOutcome(engine, path, True, reason, seconds)

    def _why_not_usable(self, key: EngineKey) -> str | None:
        """None when the engine file for `key` is present and intact, else the reason."""
        path, meta_path = self.engine_path(key), self.meta_path(key)
        if not path.is_file():
            return self._explain_miss(key)
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            return "the engine's metadata file is missing"
        except (OSError, ValueError) as exc:
            return f"the engine's metadata file is unreadable ({exc})"
        stored = meta.get("key", {})
        if stored != key.as_json():
            return "the engine's metadata does not match: " + _changed_fields(stored, key.as_json())
        if meta.get("engine_sha256") != sha256_file(path):
            return "the engine file is corrupt or truncated (sha256 differs from its metadata)"
        return None

    def _explain_miss(self, key: EngineKey) -> str:
        """Name what differs from the newest engine cached for the same label, if any."""
        wanted = key.as_json()
        siblings = []
        for meta_path in self.directory.glob(f"{_slug(key.label)}-*.json"):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            if meta.get("key", {}).get("label") == key.label:
                siblings.append((meta.get("created", 0.0), meta["key"]))
        if not siblings:
            return "no cached engine for this model, precision and shapes"
        _, newest = max(siblings, key=lambda item: item[0])
        return "the cached engine for this model is stale: " + _changed_fields(newest, wanted)

    def _store(self, key: EngineKey, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path, meta_path = self.engine_path(key), self.meta_path(key)
        meta = {
            "key": key.as_json(),
            "engine_sha256": hashlib.sha256(data).hexdigest(),
            "engine_bytes": len(data),
            "created": time.time(),
        }
        for target, payload in ((path, data), (meta_path, json.dumps(meta, indent=2).encode())):
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(payload)
            os.replace(tmp, target)


def _changed_fields(old: dict, new: dict) -> str:
    """"tensorrt_version 10.0.1 -> 10.3.0, gpu_name A -> B" for the fields that differ."""
    names = {
        "onnx_sha256": "ONNX graph (model weights or export changed)",
        "tensorrt_version": "TensorRT version",
        "gpu_name": "GPU",
        "compute_capability": "compute capability",
        "precision": "precision",
        "shapes": "input shapes",
        "label": "label",
    }
    def show(value) -> str:
        text = str(value)
        return text[:12] if len(text) == 64 else text  # a sha256 is named by its prefix

    parts = [
        f"{names.get(field, field)} {show(old.get(field))} -> {show(new[field])}"
        for field in new
        if old.get(field) != new[field]
    ]
    return ", ".join(parts) if parts else "no field differs"
