"""Training runs: the CI smoke run beats its bicubic start; a time budget ends a run with weights and
a card; held-out frames are refused; configs extend each other (resume: test/test_train_resume.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

from depth_sr_ros.train.loop import (
    SourceConfig,
    TrainConfig,
    build_model,
    learning_rate,
    train,
    validate,
)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "train" / "ci_smoke.yaml"


@pytest.fixture
def smoke_config(shared_data):
    """ci_smoke.yaml with its data root at the shared data folder."""

    def make(out: Path, **overrides) -> TrainConfig:
        return TrainConfig.from_yaml(SMOKE, out=str(out), data_root=str(shared_data), **overrides)

    return make


def test_short_training_beats_its_bicubic_start_and_writes_a_card(tmp_path, smoke_config):
    config = smoke_config(tmp_path)
    val = config.val[0]
    start = validate(build_model(config), {val.label: (val, val.frames(config.resolved_data_root))}, 4, "cpu")
    summary = train(config)
    validations = [h["val_middlebury_all_bicubic"] for h in summary["history"] if "val_middlebury_all_bicubic" in h]
    assert [h["step"] for h in summary["history"] if "val_middlebury_all_bicubic" in h] == [200, 400]
    assert validations[-1] < 0.995 * start[val.label]  # lite starts as its bicubic base
    card = json.loads((tmp_path / "lite_x4.card.json").read_text())
    assert card["metrics"]["train_val_middlebury_all_bicubic_rmse"] == pytest.approx(min(validations))  # best
    assert "400 steps of 8 x 48px crops" in card["training_data"] and card["trained_on"] == "CPU"


def test_a_time_budget_ends_the_run_with_checkpointed_weights_and_a_decayed_rate(tmp_path, smoke_config):
    config = smoke_config(tmp_path, steps=0, time_budget_s=4.0, checkpoint_every_s=1.0, val=[], select="last",
                          batch=2, patch=32, log_every=5)
    summary = train(config)
    assert 3.5 < summary["seconds"] < 30 and summary["steps"] > 5
    card = json.loads((tmp_path / "lite_x4.card.json").read_text())
    assert "not evaluated during training" in card["evaluation_protocol"]
    assert "had not finished" not in card["notes"]  # the final card replaced the periodic ones
    assert learning_rate(config, 10_000, 4.0) == pytest.approx(config.min_lr)
    assert learning_rate(config, config.warmup_steps, 2.0) == pytest.approx(0.5 * (config.lr + config.min_lr))


def test_stop_at_fits_the_budget_to_a_wall_clock_deadline(tmp_path, smoke_config):
    import time

    from depth_sr_ros.train.loop import FINISH_S

    stop_at = time.time() + FINISH_S + 6
    config = smoke_config(tmp_path, steps=0, time_budget_s=0, stop_at=stop_at, checkpoint_every_s=0, val=[],
                          select="last", batch=2, patch=32)
    summary = train(config)
    assert time.time() < stop_at and 0 < summary["seconds"] <= 6.5 and summary["steps"] > 0
    assert (tmp_path / "lite_x4.safetensors").exists()
    with pytest.raises(RuntimeError, match="too close"):
        train(smoke_config(tmp_path / "late", steps=0, stop_at=time.time() + 1, val=[], select="last"))


def test_held_out_frames_are_never_trained_on(shared_data, tmp_path):
    with pytest.raises(ValueError, match="held-out split of rgbdd_dev"):
        SourceConfig("rgbdd_dev").frames(str(shared_data))
    with pytest.raises(ValueError, match="held-out split of middlebury"):
        SourceConfig("middlebury", scenes="14-15").frames(str(shared_data))
    frames = SourceConfig("rgbdd_dev", split="train").frames(str(shared_data), limit=3)
    assert len(frames) == 3 and not any(f.name.startswith("20200605") for f in frames)


def test_configs_extend_a_base_and_refuse_runs_without_an_end(tmp_path):
    (tmp_path / "base.yaml").write_text("backbone: lite\nscale: 8\npatch: 64\ntrain: [{root: x}]\nsteps: 5\n")
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nscale: 4\n")
    config = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert (config.scale, config.patch, config.train[0].root) == (4, 64, "x")
    with pytest.raises(ValueError, match="needs an end"):
        TrainConfig.from_yaml(tmp_path / "run.yaml", steps=0)
    with pytest.raises(ValueError, match="unknown config keys"):
        (tmp_path / "bad.yaml").write_text("extends: base.yaml\nmax_minutes: 3\n")
        TrainConfig.from_yaml(tmp_path / "bad.yaml")


def test_configs_extend_several_bases_later_ones_winning(tmp_path):
    (tmp_path / "base.yaml").write_text("backbone: lite\nscale: 8\npatch: 64\ntrain: [{root: x}]\nsteps: 5\n")
    (tmp_path / "mix.yaml").write_text("train: [{root: y}, {root: z}]\nlr: 0.002\nsteps: 7\n")
    (tmp_path / "run.yaml").write_text("extends: [base.yaml, mix.yaml]\nsteps: 9\n")
    config = TrainConfig.from_yaml(tmp_path / "run.yaml")
    assert (config.scale, config.patch, config.lr, config.steps) == (8, 64, 0.002, 9)
    assert [s.root for s in config.train] == ["y", "z"]


def test_zero_init_head_starts_a_network_at_its_bicubic_base(tmp_path, smoke_config):
    import torch

    from depth_sr_ros.models.blocks import upsample_depth
    from depth_sr_ros.train.loop import build_model

    config = smoke_config(tmp_path, backbone="nafnet_adain", zero_init=["head"],
                          model={"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]})
    model = build_model(config)
    depth = torch.rand(1, 1, 8, 8)
    out = model(torch.rand(1, 3, 32, 32), depth, torch.ones_like(depth))
    torch.testing.assert_close(out, upsample_depth(depth, 4))
    with pytest.raises(ValueError, match="matches no parameter"):
        build_model(smoke_config(tmp_path, zero_init=["nope"]))
    assert np.isfinite(out.detach().numpy()).all()


def test_every_shipped_config_parses_and_the_nyu_recipe_leaves_test_frames_out(shared_data):
    import yaml

    every = sorted((ROOT / "config" / "train").rglob("*.yaml"))
    bases = set()  # the fragments other configs extend: not runs of their own
    for path in every:
        parents = yaml.safe_load(path.read_text()).get("extends", [])
        bases |= {(path.parent / p).resolve() for p in ([parents] if isinstance(parents, str) else parents)}
    configs = [p for p in every if p.resolve() not in bases]
    assert len(configs) >= 10 and len(bases) >= 3
    for path in configs:
        config = TrainConfig.from_yaml(path, data_root=str(shared_data))
        for source in config.train:
            assert (shared_data / source.root).is_dir(), (path, source.root)
    nyu = TrainConfig.from_yaml(ROOT / "config" / "train" / "nyu" / "lite_unet_x4.yaml")
    roots = {s.root: s for s in nyu.train}
    assert "nyu_test" not in roots and roots["nyu_train"].depth_bins_per_m == 25.5
    assert roots["rgbdd_dev"].split == roots["middlebury"].split == "train"
    assert nyu.out.startswith("checkpoints/") and nyu.threads == 1 and nyu.amp == "off"


def test_a_second_pass_run_trains_on_the_first_networks_reprojected_output(tmp_path, smoke_config, shared_data):
    from depth_sr_ros.models.card import read_card
    from depth_sr_ros.train.loop import load_frames

    first = ROOT / "models" / "lite_x4.safetensors"
    scenes = ",".join(sorted(p.stem for p in (shared_data / "rgbdd_dev" / "depth").glob("20200601*.png"))[:2])
    config = smoke_config(tmp_path, model=read_card(first).config, init_weights=str(first), second_pass_of=str(first),
                          train=[{"root": "rgbdd_dev", "split": "train", "scenes": scenes,
                                  "degradations": {"given": 1.0}}], val=[], select="last", steps=2)
    frames, mixes = load_frames(config)
    assert mixes == [{"given": 1.0}] and len(frames) == 2 * config.second_pass_poses
    assert sum(f.weight for f in frames) == pytest.approx(1.0)
    for frame in frames:
        assert frame.given_lr.shape == (frame.gt.shape[0] // 4, frame.gt.shape[1] // 4)
        assert np.isfinite(frame.given_lr).mean() > 0.9
    assert not np.array_equal(frames[0].given_lr, frames[1].given_lr)  # two sensors, two inputs
    train(config)
    card = json.loads((tmp_path / "lite_x4.card.json").read_text())
    assert card["second_pass_for"] == read_card(first).sha256 and "given 1" in card["training_data"]
    assert f"{config.second_pass_poses} simulated sensors per frame (parallax)" in card["training_data"]
    with pytest.raises(ValueError, match="second_pass_of"):
        smoke_config(tmp_path, train=[{"root": "middlebury", "degradations": {"given": 1.0}}])
    with pytest.raises(ValueError, match="second-pass sensor kinds"):
        smoke_config(tmp_path, second_pass_of=str(first), second_pass_sensors=["phone"],
                     train=[{"root": "middlebury", "degradations": {"given": 1.0}}])
