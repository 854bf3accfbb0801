"""Engine cache: keys, load vs rebuild, and the reasons logged. No TensorRT needed: the build and
deserialise functions are stand-ins that record their calls."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch
from torch import nn

from depth_sr_ros.backends import engine_cache
from depth_sr_ros.backends.engine_cache import EngineCache, EngineKey, cached_onnx, model_digest, scale_of

SHAPES = ((1, 3, 64, 96), (1, 1, 16, 24), (1, 1, 16, 24))


def make_key(**changes) -> EngineKey:
    key = EngineKey(
        label="Tiny-96x64-x4-fp16",
        onnx_sha256="a" * 64,
        tensorrt_version="10.3.0",
        gpu_name="Orin",
        compute_capability="8.7",
        precision="fp16",
        shapes=SHAPES,
    )
    return dataclasses.replace(key, **changes)


class FakeTensorRT:
    """Builds "engines" that are bytes and deserialises only what it built itself."""

    def __init__(self, version: str = "10.3.0") -> None:
        self.version = version
        self.builds = 0

    def build(self) -> bytes:
        self.builds += 1
        return f"engine built by {self.version} #{self.builds}".encode()

    def deserialize(self, data: bytes):
        return data.decode() if data.startswith(f"engine built by {self.version}".encode()) else None


@pytest.mark.parametrize(
    "field, value",
    [
        ("onnx_sha256", "b" * 64),
        ("tensorrt_version", "10.4.0"),
        ("gpu_name", "NVIDIA GeForce RTX 4090"),
        ("compute_capability", "8.9"),
        ("precision", "fp32"),
        ("shapes", ((1, 3, 128, 192), (1, 1, 32, 48), (1, 1, 32, 48))),
    ],
)
def test_key_changes_with_each_part(tmp_path, field, value):
    base, changed = make_key(), make_key(**{field: value})
    assert base.digest() != changed.digest()
    cache = EngineCache(tmp_path)
    assert cache.engine_path(base) != cache.engine_path(changed)
    assert make_key().digest() == base.digest()  # deterministic


def test_second_load_uses_the_cached_engine(tmp_path, caplog):
    trt, cache, key = FakeTensorRT(), EngineCache(tmp_path), make_key()
    with caplog.at_level(logging.INFO):
        first = cache.load_or_build(key, trt.build, trt.deserialize)
    assert first.built and trt.builds == 1
    assert "no cached engine" in first.reason and "no cached engine" in caplog.text
    second = cache.load_or_build(key, trt.build, trt.deserialize)
    assert not second.built and trt.builds == 1
    assert second.engine == first.engine and second.engine_path == first.engine_path
    meta = json.loads(cache.meta_path(key).read_text())
    assert meta["key"]["tensorrt_version"] == "10.3.0"


def test_corrupt_engine_file_is_rebuilt(tmp_path, caplog):
    trt, cache, key = FakeTensorRT(), EngineCache(tmp_path), make_key()
    cache.load_or_build(key, trt.build, trt.deserialize)
    path = cache.engine_path(key)
    path.write_bytes(path.read_bytes()[:10])  # truncated
    with caplog.at_level(logging.WARNING):
        outcome = cache.load_or_build(key, trt.build, trt.deserialize)
    assert outcome.built and trt.builds == 2
    assert "corrupt" in outcome.reason and "corrupt" in caplog.text
    assert cache.load_or_build(key, trt.build, trt.deserialize).built is False


def test_engine_the_runtime_refuses_is_rebuilt(tmp_path):
    cache, key = EngineCache(tmp_path), make_key()
    old = FakeTensorRT("10.0.1")
    cache.load_or_build(key, old.build, old.deserialize)  # intact file, but another runtime's
    new = FakeTensorRT("10.3.0")
    outcome = cache.load_or_build(key, new.build, new.deserialize)
    assert outcome.built and new.builds == 1
    assert "could not deserialise" in outcome.reason


def test_deserialize_that_raises_takes_the_rebuild_path(tmp_path):
    trt, cache, key = FakeTensorRT(), EngineCache(tmp_path), make_key()
    cache.load_or_build(key, trt.build, trt.deserialize)

    calls = []

    def flaky(data: bytes):
        calls.append(data)
        if len(calls) == 1:
            raise RuntimeError("Serialization assertion failed: magic tag mismatch")
        return trt.deserialize(data)

    outcome = cache.load_or_build(key, trt.build, flaky)
    assert outcome.built and "magic tag mismatch" in outcome.reason


def test_other_tensorrt_version_names_the_change(tmp_path, caplog):
    cache = EngineCache(tmp_path)
    old, new = FakeTensorRT("10.0.1"), FakeTensorRT("10.3.0")
    cache.load_or_build(make_key(tensorrt_version="10.0.1"), old.build, old.deserialize)
    with caplog.at_level(logging.WARNING):
        outcome = cache.load_or_build(make_key(tensorrt_version="10.3.0"), new.build, new.deserialize)
    assert outcome.built
    assert "TensorRT version 10.0.1 -> 10.3.0" in outcome.reason
    assert "stale" in caplog.text


def test_missing_metadata_is_rebuilt(tmp_path):
    trt, cache, key = FakeTensorRT(), EngineCache(tmp_path), make_key()
    cache.load_or_build(key, trt.build, trt.deserialize)
    cache.meta_path(key).unlink()
    outcome = cache.load_or_build(key, trt.build, trt.deserialize)
    assert outcome.built and "metadata" in outcome.reason
    assert cache.meta_path(key).is_file()


def test_fresh_engine_that_cannot_be_loaded_raises(tmp_path):
    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError, match="could not be deserialised"):
        cache.load_or_build(make_key(), lambda: b"garbage", lambda data: None)


def test_timing_cache_is_per_version_and_gpu(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.timing_cache_path(make_key()) != cache.timing_cache_path(make_key(gpu_name="A100"))
    assert cache.timing_cache_path(make_key()) == cache.timing_cache_path(make_key(precision="fp32"))


def test_scale_of():
    assert scale_of(SHAPES) == 4
    with pytest.raises(ValueError, match="integer multiple"):
        scale_of(((1, 3, 64, 96), (1, 1, 16, 25), (1, 1, 16, 25)))


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, rgb, depth, mask):
        return self.conv(rgb)


def test_cached_onnx_exports_once_per_weights(tmp_path, monkeypatch):
    exports = []

    def fake_export(model, out, height, width, scale, dynamic=False, opset=17):
        exports.append((height, width, scale, opset))
        out.write_bytes(b"onnx")
        return out

    monkeypatch.setattr("depth_sr_ros.models.export.export_onnx", fake_export)
    model = Small()
    first = cached_onnx(model, SHAPES, tmp_path, opset=17)
    assert cached_onnx(model, SHAPES, tmp_path, opset=17) == first
    assert exports == [(64, 96, 4, 17)]
    with torch.no_grad():
        model.conv.weight.add_(1.0)
    changed = cached_onnx(model, SHAPES, tmp_path, opset=17)
    assert changed != first and len(exports) == 2
    assert not list(first.parent.glob(".*tmp*"))


def test_model_digest_tracks_weights():
    a, b = Small(), Small()
    assert model_digest(a) != model_digest(b)  # different random init
    b.load_state_dict(a.state_dict())
    assert model_digest(a) == model_digest(b)


def test_module_imports_no_tensorrt():
    assert "tensorrt" not in engine_cache.__dict__
