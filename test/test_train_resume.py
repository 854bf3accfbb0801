"""Resumable training: a run cut off at any step and resumed ends with the weights of a run that went
straight through; a stretch pauses a run without touching its schedule; the resume state is one
safetensors file (no pickles) that refuses another recipe, and records the time spent."""

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from depth_sr_ros.train import loop
from depth_sr_ros.train.checkpoint import PROGRESS_FILE, RESUME_FILE, ResumeError
from depth_sr_ros.train.config import TrainConfig

STEPS = 14


def tiny(out: Path, **overrides) -> TrainConfig:
    """A tiny lite_unet on synthetic scenes with a random degradation in the mix and range jitter,
    past its warm-up into the cosine decay within STEPS steps."""
    values = {"backbone": "lite_unet", "scale": 4, "synthetic_scenes": 3, "synthetic_size": (80, 96),
              "model": {"width": 4, "enc_blocks": [1, 1], "middle_dilations": [1], "dec_blocks": [1, 1],
                        "fine_width": 4},
              "degradations": {"bicubic": 0.5, "real_tof": 0.5}, "range_jitter": 0.1, "patch": 32, "batch": 3,
              "steps": STEPS, "warmup_steps": 3, "lr": 3e-3, "out": str(out), "threads": 1, "progress": False,
              "checkpoint_every_s": 0.0, "log_every": 4}
    values.update(overrides)
    return TrainConfig(**values)


class Interrupted(Exception):
    """Stands for the process being killed in the middle of a step."""


def interrupt_at(monkeypatch, step: int) -> None:
    """Make BatchMaker.batch fail when asked for `step`, as a kill during that step would."""
    original = loop.BatchMaker.batch

    def batch(self, t):
        if t == step:
            raise Interrupted(t)
        return original(self, t)

    monkeypatch.setattr(loop.BatchMaker, "batch", batch)


def weights(out: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(out / RESUME_FILE), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys() if k.startswith(("model/", "optim/"))}  # noqa: SIM118


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run: its resume state (model and optimiser) and summary."""
    out = tmp_path_factory.mktemp("straight")
    summary = loop.train(tiny(out))
    return weights(out), summary


@pytest.mark.parametrize("cut, every_s", [(1, 1e-9), (6, 1e-9), (13, 1e-9), (9, 3600.0)])
def test_a_run_cut_off_and_resumed_ends_with_the_same_weights(tmp_path, monkeypatch, straight, cut, every_s):
    """Cut at step `cut` (checkpoints after every step, or only the initial one at 3600 s: the
    resume then starts over from the last state on disk, here none, so from step 0)."""
    expected, summary = straight
    with monkeypatch.context() as patch:
        interrupt_at(patch, cut)
        with pytest.raises(Interrupted):
            loop.train(tiny(tmp_path, checkpoint_every_s=every_s), resume=True)
    if every_s < 1:
        progress = json.loads((tmp_path / PROGRESS_FILE).read_text())
        assert progress["step"] == cut and not progress["finished"]
    resumed = loop.train(tiny(tmp_path, checkpoint_every_s=every_s), resume=True)
    assert resumed["steps"] == summary["steps"] == STEPS and resumed["finished"]
    got = weights(tmp_path)
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name
    shipped = load_file(tmp_path / "lite_unet_x4.safetensors")
    assert all(torch.equal(shipped[k], expected[f"model/{k}"]) for k in shipped)


def test_a_stretch_pauses_the_run_and_resume_finishes_it_on_the_same_schedule(tmp_path, straight):
    expected, _ = straight
    first = loop.train(tiny(tmp_path, stretch_s=1e-9), resume=True)  # stops before its first step
    assert first["steps"] == 0 and not first["finished"]
    card = json.loads((tmp_path / "lite_unet_x4.card.json").read_text())
    assert "had not finished" in card["notes"]
    loop.train(tiny(tmp_path), resume=True)
    progress = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert progress["finished"] and progress["step"] == STEPS and progress["samples"] == STEPS * 3
    assert [(s["from_step"], s["to_step"]) for s in progress["stretches"]] == [(0, 0), (0, STEPS)]
    assert progress["wall_s"] >= sum(s["train_s"] for s in progress["stretches"]) > 0
    assert all(torch.equal(weights(tmp_path)[k], v) for k, v in expected.items())


def test_the_resume_state_is_safetensors_and_json_only(tmp_path, straight):
    loop.train(tiny(tmp_path, steps=2))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["config.yaml", RESUME_FILE, PROGRESS_FILE, "lite_unet_x4.safetensors",
                            "lite_unet_x4.card.json"])
    with safe_open(str(tmp_path / RESUME_FILE), framework="pt") as handle:
        keys = set(handle.keys())
        metadata = handle.metadata()
    assert {"rng/cpu", "optim/0/exp_avg", "optim/0/exp_avg_sq", "optim/0/step"} <= keys
    assert json.loads(metadata["progress"])["step"] == 2
    assert json.loads(metadata["param_groups"])[0]["weight_decay"] == pytest.approx(1e-4)


def test_resume_refuses_another_recipe_and_a_damaged_file(tmp_path):
    loop.train(tiny(tmp_path, steps=2))
    with pytest.raises(ResumeError, match="other lr, seed"):
        loop.train(tiny(tmp_path, steps=2, lr=1e-2, seed=5), resume=True)
    with pytest.raises(ResumeError, match="other synthetic_scenes"):
        loop.train(tiny(tmp_path, steps=2, synthetic_scenes=4), resume=True)
    (tmp_path / RESUME_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ResumeError, match="unreadable resume state"):
        loop.train(tiny(tmp_path, steps=2), resume=True)


def test_a_channels_last_run_resumes_exactly_too(tmp_path, monkeypatch):
    loop.train(tiny(tmp_path / "straight", channels_last=True, steps=8))
    with monkeypatch.context() as patch:
        interrupt_at(patch, 5)
        with pytest.raises(Interrupted):
            loop.train(tiny(tmp_path / "cut", channels_last=True, steps=8, checkpoint_every_s=1e-9), resume=True)
    loop.train(tiny(tmp_path / "cut", channels_last=True, steps=8), resume=True)
    expected, got = weights(tmp_path / "straight"), weights(tmp_path / "cut")
    assert all(torch.equal(got[k], v) for k, v in expected.items())


def test_depth_sr_train_killed_mid_run_resumes_to_the_same_weights(tmp_path):
    """The CLI killed (SIGKILL) while training and checkpointing every step, then `--resume`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    config = tiny(tmp_path, steps=100, checkpoint_every_s=1e-9)
    raw = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("out", "progress")}
    raw["synthetic_size"] = list(raw["synthetic_size"])
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def command(out, *extra):
        return [sys.executable, "-m", "depth_sr_ros.cli", "train", "--config", str(tmp_path / "tiny.yaml"), "--out",
                str(tmp_path / out), "--no-progress", *extra]

    victim = subprocess.Popen(command("cut"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "cut" / PROGRESS_FILE
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        if progress.exists() and json.loads(progress.read_text() or "{}").get("step", 0) >= 10:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    cut_at = json.loads(progress.read_text())["step"]
    assert 10 <= cut_at < 100
    for out, extra in (("cut", ["--resume"]), ("straight", [])):
        done = subprocess.run(command(out, *extra), env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    expected, got = weights(tmp_path / "straight"), weights(tmp_path / "cut")
    assert all(torch.equal(got[k], v) for k, v in expected.items())
