"""The machine a benchmark ran on: CPU model, cores, load, library versions, GPU (`depth-sr bench`
and its soak write it beside every figure)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def machine_info() -> dict[str, Any]:
    """CPU model, cores, load, library versions, GPU: what a benchmark row must name."""
    import onnxruntime
    import torch

    from depth_sr_ros.backends import BackendConfig, cpu_threads

    cpu, detail = platform.processor() or platform.machine(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "cpu family", "model", "cpu MHz", "flags") and key not in detail:
                detail[key] = value
        cpu = detail.get("model name", cpu)
    except OSError:
        pass
    simd = [flag for flag in ("avx2", "fma", "avx512f", "avx512_vnni", "neon") if flag in detail.get("flags", "").split()]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_detail": (
            f"family {detail.get('cpu family', '?')} model {detail.get('model', '?')}, "
            f"{float(detail.get('cpu MHz', 'nan')):.0f} MHz, {'/'.join(simd) or 'no AVX2'}"
        ),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "backend_cpu_threads": cpu_threads(BackendConfig(device="cpu")),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    return info


def machine_label(info: dict[str, Any]) -> str:
    gpu = f", {info['gpu']}" if info.get("gpu") else ", no GPU"
    return f"{info['cpu']} ({info['usable_cores']} cores){gpu}"
