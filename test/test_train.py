"""A shortened training run (config/train/ci_smoke.yaml): validation falls; resume is exact."""

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

from safetensors.torch import load_file

from depth_sr_ros.train.loop import TrainConfig, export_best, train

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "train" / "ci_smoke.yaml"


@pytest.fixture
def smoke_config(shared_data):
    """ci_smoke.yaml with its Middlebury roots pointed at the shared data folder."""
    data = str(shared_data / "middlebury")

    def make(out: Path, **overrides) -> TrainConfig:
        config = TrainConfig.from_yaml(SMOKE, out=str(out), **overrides)
        config.train[0].root = data
        config.val_root = data
        return config

    return make


def test_short_training_lowers_validation_rmse_and_exports_a_card(tmp_path, smoke_config):
    config = smoke_config(tmp_path)
    summary = train(config)
    history = [h["val_rmse"] for h in summary["history"]]
    assert [h["step"] for h in summary["history"]] == [0, 100, 200]
    assert history[-1] < history[0], history
    assert summary["best_rmse"] == min(history[1:])
    path = Path(export_best(config, summary))
    card = path.with_name(path.name.replace(".safetensors", ".card.json")).read_text()
    assert '"val_rmse"' in card and '"lite"' in card


def test_training_is_deterministic_and_resumes_exactly(tmp_path, smoke_config):
    straight = train(smoke_config(tmp_path / "a", steps=12, val_every=6, batch=2, patch=32))
    train(smoke_config(tmp_path / "b", steps=6, val_every=6, batch=2, patch=32))
    resumed = train(smoke_config(tmp_path / "b", steps=12, val_every=6, batch=2, patch=32), resume=True)
    assert resumed["steps"] == straight["steps"] == 12
    a = load_file(tmp_path / "a" / "last.safetensors")
    b = load_file(tmp_path / "b" / "last.safetensors")
    for name, tensor in a.items():
        assert (tensor == b[name]).all(), name


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
