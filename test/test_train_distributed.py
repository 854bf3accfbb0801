"""Scale-out training: `torchrun --nproc_per_node 2 -m depth_sr_ros.cli train` (DistributedDataParallel,
gloo on the CPU) reaches the weights of one process training on the combined batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch
from safetensors import safe_open

from depth_sr_ros.train.checkpoint import RESUME_FILE

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
backbone: lite_unet
scale: 4
model: {width: 4, enc_blocks: [1, 1], middle_dilations: [1], dec_blocks: [1, 1], fine_width: 4}
synthetic_scenes: 3
synthetic_size: [80, 96]
degradations: {bicubic: 1.0}
patch: 32
batch: 4
steps: 6
warmup_steps: 2
lr: 0.003
threads: 1
device: cpu
checkpoint_every_s: 0
"""


def run(args: list[str], out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *args, "--out", str(out), "--no-progress"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def model_tensors(out: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(out / RESUME_FILE), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys() if k.startswith("model/")}  # noqa: SIM118


def test_two_gloo_processes_reach_the_weights_of_one_process_with_the_combined_batch(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    train = ["-m", "depth_sr_ros.cli", "train", "--config", str(config)]
    single = run(train, tmp_path / "one")
    port = str(29500 + os.getpid() % 1000)
    double = run(["-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2", "--master_addr",
                  "127.0.0.1", "--master_port", port, *train], tmp_path / "two")  # one summary: rank 0's
    assert single["steps"] == double["steps"] == 6 and double["rank"] == 0
    progress = json.loads((tmp_path / "two" / "progress.json").read_text())
    assert progress["stretches"][0]["world_size"] == 2 and progress["samples"] == 24
    one, two = model_tensors(tmp_path / "one"), model_tensors(tmp_path / "two")
    assert one.keys() == two.keys()
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    config.write_text(CONFIG.replace("batch: 4", "batch: 2"))  # one process with rank 0's half only
    run(train, tmp_path / "half")
    half = model_tensors(tmp_path / "half")
    assert max(float((half[k] - one[k]).abs().max()) for k in one) > 1e-3
