"""Inference backends: auto order, fallback, strictness, ONNX Runtime vs torch parity, OOM text.

A tiny real network keeps the ONNX export and runs fast; TensorRT and CUDA tests run only where
those exist."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch
import torch.nn.functional as F
from torch import nn

from depth_sr_ros.backends import (
    Availability,
    BackendBuildError,
    BackendConfig,
    BackendUnavailableError,
    GpuOutOfMemoryError,
    cpu_threads,
    create_backend,
    plan_chain,
)
from depth_sr_ros.backends.onnxruntime_backend import OnnxRuntimeBackend, provider_list
from depth_sr_ros.backends.tensorrt_backend import tensorrt_available
from depth_sr_ros.backends.torch_backend import TorchBackend

ALL_GPU = Availability(
    cuda=True,
    tensorrt=True,
    ort_providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
)
CPU_ONLY = Availability(cuda=False, tensorrt=False, ort_providers=("CPUExecutionProvider",))


class TinyGuidedNet(nn.Module):
    """Contract-shaped network: bilinear depth plus a residual from RGB, depth and mask."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.fuse = nn.Conv2d(5, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, rgb, depth, mask):
        up = F.interpolate(torch.cat([depth, mask], 1), scale_factor=self.scale, mode="bilinear")
        return up[:, :1] + self.head(torch.relu(self.fuse(torch.cat([rgb, up], 1))))


def inputs(rows: int, cols: int, scale: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    rgb = rng.random((1, 3, rows, cols), dtype=np.float32)
    depth = rng.random((1, 1, rows // scale, cols // scale), dtype=np.float32)
    mask = (rng.random(depth.shape) > 0.2).astype(np.float32)
    return rgb, depth, mask


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyGuidedNet().eval()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("backend_cache")


def chain_of(name, availability, device="cuda"):
    chain, skipped = plan_chain(name, BackendConfig(device=device), availability)
    return [(c.name, c.device) for c in chain], skipped


def test_auto_order_with_everything_available():
    chain, skipped = chain_of("auto", ALL_GPU)
    assert chain == [
        ("tensorrt", "cuda"),
        ("onnxruntime", "cuda"),
        ("torch", "cuda"),
        ("onnxruntime", "cpu"),
        ("torch", "cpu"),
    ]
    assert skipped == []


def test_auto_without_tensorrt_prefers_onnxruntime_gpu():
    chain, skipped = chain_of("auto", Availability(True, False, ALL_GPU.ort_providers))
    assert chain[0] == ("onnxruntime", "cuda")
    assert any("tensorrt" in s and "not installed" in s for s in skipped)


def test_auto_with_cpu_onnxruntime_and_cuda_prefers_torch_cuda():
    chain, skipped = chain_of("auto", Availability(True, False, ("CPUExecutionProvider",)))
    assert chain[0] == ("torch", "cuda")
    assert any("onnxruntime on cuda" in s and "no GPU provider" in s for s in skipped)


def test_auto_without_gpu_uses_onnxruntime_cpu_then_torch():
    chain, skipped = chain_of("auto", CPU_ONLY)
    assert chain == [("onnxruntime", "cpu"), ("torch", "cpu")]
    assert any("torch on cuda" in s for s in skipped)
    chain, _ = chain_of("auto", Availability(False, False, ()), device="cpu")
    assert chain == [("torch", "cpu")]


def test_auto_logs_its_choice_and_reason(model, cache_dir, caplog):
    config = BackendConfig(device="cuda", engine_cache_dir=cache_dir)
    with caplog.at_level(logging.INFO):
        backend = create_backend("auto", model, config, availability=CPU_ONLY)
    assert "auto backend: onnxruntime on cpu" in caplog.text
    assert "faster than eager torch" in caplog.text and "no CUDA device" in caplog.text
    assert [c.name for c in backend.chain] == ["onnxruntime", "torch"]


def test_named_backend_starts_at_its_own_entry():
    assert chain_of("torch", ALL_GPU, device="cpu")[0] == [("torch", "cpu")]
    assert chain_of("onnxruntime", ALL_GPU, device="cpu")[0] == [("onnxruntime", "cpu"), ("torch", "cpu")]
    assert chain_of("torch", ALL_GPU)[0][0] == ("torch", "cuda")
    chain, skipped = chain_of("tensorrt", ALL_GPU, device="cpu")
    assert chain[0] == ("onnxruntime", "cpu") and "tensorrt" in skipped[0]


def test_unknown_backend_lists_the_known_ones(model):
    with pytest.raises(KeyError, match="onnxruntime"):
        create_backend("openvino", model, BackendConfig(device="cpu"))


def test_unavailable_backend_falls_back_or_fails_when_strict(model, cache_dir, caplog):
    config = BackendConfig(device="cuda", engine_cache_dir=cache_dir)
    with caplog.at_level(logging.WARNING):
        backend = create_backend("tensorrt", model, config, availability=CPU_ONLY)
    assert "falling back to onnxruntime on cpu" in caplog.text
    assert backend.chain[0].name == "onnxruntime"
    strict = BackendConfig(device="cuda", engine_cache_dir=cache_dir, strict=True)
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        create_backend("tensorrt", model, strict, availability=CPU_ONLY)


def test_build_failure_falls_back_with_a_warning(model, cache_dir, monkeypatch, caplog):
    def broken(self, shapes):
        raise BackendBuildError("simulated export failure")

    monkeypatch.setattr(OnnxRuntimeBackend, "_build", broken)
    config = BackendConfig(device="cpu", engine_cache_dir=cache_dir, warmup_runs=0)
    backend = create_backend("auto", model, config, availability=CPU_ONLY)
    with caplog.at_level(logging.WARNING):
        out = backend.run(*inputs(16, 24))
    assert "simulated export failure" in caplog.text and "falling back to torch" in caplog.text
    assert backend.describe().startswith("torch") and out.shape == (1, 1, 16, 24)

    strict = create_backend("auto", model, BackendConfig(device="cpu", engine_cache_dir=cache_dir, strict=True),
                            availability=CPU_ONLY)
    with pytest.raises(BackendBuildError, match="simulated export failure"):
        strict.run(*inputs(16, 24))


def test_onnxruntime_and_torch_agree_fp32(model, cache_dir):
    config = BackendConfig(device="cpu", engine_cache_dir=cache_dir, precision="fp32")
    ort_backend = create_backend("onnxruntime", model, config)
    torch_backend = create_backend("torch", model, config)
    for rows, cols in ((16, 24), (32, 20)):  # the second shape forces a rebuild
        arrays = inputs(rows, cols, seed=rows)
        a, b = ort_backend.run(*arrays), torch_backend.run(*arrays)
        assert a.shape == b.shape == (1, 1, rows, cols) and a.dtype == np.float32
        assert np.abs(a - b).max() / np.abs(b).max() < 1e-4
    assert ort_backend.describe() == "onnxruntime[CPUExecutionProvider]"
    assert ort_backend.active.shapes[0] == (1, 3, 32, 20)


def test_inputs_are_validated(model, cache_dir):
    backend = create_backend("torch", model, BackendConfig(device="cpu", engine_cache_dir=cache_dir))
    rgb, depth, mask = inputs(16, 24)
    with pytest.raises(ValueError, match="float32"):
        backend.run(rgb.astype(np.float64), depth, mask)
    with pytest.raises(ValueError, match="1x3xHxW"):
        backend.run(rgb[:, :2].copy(), depth, mask)
    with pytest.raises(ValueError, match="C-contiguous"):
        backend.run(np.asfortranarray(rgb), depth, mask)
    with pytest.raises(ValueError, match="differ"):
        backend.run(rgb, depth, mask[:, :, :4].copy())


def test_gpu_out_of_memory_names_resolution_and_scale(model, cache_dir, monkeypatch):
    def oom(self, rgb, depth, mask):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(TorchBackend, "_infer", oom)
    config = BackendConfig(device="cpu", engine_cache_dir=cache_dir, warmup_runs=0)
    backend = create_backend("torch", model, config)
    with pytest.raises(GpuOutOfMemoryError, match=r"640x480 output from 160x120 input \(x4\)"):
        backend.run(*inputs(480, 640, scale=4))


def test_provider_order_and_threads(monkeypatch):
    gpu = BackendConfig(device="cuda:1", precision="fp16")
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    names = [name for name, _ in provider_list(gpu, everything)]
    assert names == everything
    trt_options = provider_list(gpu, everything)[0][1]
    assert trt_options["device_id"] == "1" and trt_options["trt_fp16_enable"] == "True"
    assert [n for n, _ in provider_list(gpu, ["CUDAExecutionProvider", "CPUExecutionProvider"])] == everything[1:]
    assert [n for n, _ in provider_list(BackendConfig(device="cpu"), everything)] == ["CPUExecutionProvider"]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(BackendConfig(device="cpu")) == 3
    assert cpu_threads(BackendConfig(device="cpu", num_threads=5)) == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert cpu_threads(BackendConfig(device="cpu")) == 3  # one core left to the rest of the robot
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert cpu_threads(BackendConfig(device="cpu")) == 1


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="precision"):
        BackendConfig(precision="int8")
    with pytest.raises(ValueError, match="device"):
        BackendConfig(device="gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_cuda_matches_cpu(model, cache_dir):
    arrays = inputs(32, 48)
    cpu = create_backend("torch", model, BackendConfig(device="cpu", engine_cache_dir=cache_dir)).run(*arrays)
    cuda = create_backend("torch", model, BackendConfig(device="cuda", engine_cache_dir=cache_dir, strict=True))
    assert np.abs(cuda.run(*arrays) - cpu).max() / np.abs(cpu).max() < 1e-4


@pytest.mark.skipif(not tensorrt_available(), reason="needs tensorrt and CUDA")
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_tensorrt_matches_torch_and_caches(model, tmp_path, precision, tolerance):
    arrays = inputs(32, 48)
    reference = create_backend("torch", model, BackendConfig(device="cpu", engine_cache_dir=tmp_path)).run(*arrays)
    config = BackendConfig(device="cuda", engine_cache_dir=tmp_path, precision=precision, strict=True)
    first = create_backend("tensorrt", model, config)
    out = first.run(*arrays)
    assert np.abs(out - reference).max() / np.abs(reference).max() < tolerance
    assert first.active.outcome.built
    second = create_backend("tensorrt", model, config)
    np.testing.assert_allclose(second.run(*arrays), out, rtol=0, atol=1e-6)
    assert not second.active.outcome.built
