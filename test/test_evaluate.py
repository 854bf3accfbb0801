"""`depth-sr evaluate` on a tiny folder: JSON form, baselines on the same frames, depth_lr/, previews."""

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

from PIL import Image

from depth_sr_ros.cli import main
from depth_sr_ros.models.lite import lite
from depth_sr_ros.models.weights import ModelCard, save_weights
from depth_sr_ros.train.synthetic import SyntheticConfig, make_scene


def write_folder(root, with_lr=False):
    for sub in ("rgb", "depth") + (("depth_lr",) if with_lr else ()):
        (root / sub).mkdir(parents=True)
    for seed in range(2):
        frame = make_scene(SyntheticConfig(height=64, width=80), seed)
        mm = np.round(frame.depth * 1000).astype(np.uint16)
        Image.fromarray(frame.rgb).save(root / "rgb" / f"{seed:02d}.png")
        Image.fromarray(mm).save(root / "depth" / f"{seed:02d}.png")
        if with_lr:
            Image.fromarray(mm[2::4, 2::4].copy()).save(root / "depth_lr" / f"{seed:02d}.png")
    return root


@pytest.fixture
def weights(tmp_path):
    model = lite(4, width=8, dilations=(1,), fine_width=4)
    return save_weights(model, tmp_path / "w" / "lite_x4.safetensors", ModelCard("lite", 4))


def test_gdsr_json_has_the_backbone_beside_both_baselines(tmp_path, weights, capsys):
    data = write_folder(tmp_path / "data")
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "lite", "--weights", str(weights),
                 "--protocol", "gdsr", "--json", str(out), "--previews", str(tmp_path / "prev")])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "gdsr" and result["scale"] == 4
    assert set(result["methods"]) == {"lite", "bicubic", "guided_filter"}
    assert all(np.isfinite(m["rmse"]) and m["rmse"] > 0 for m in result["methods"].values())
    assert [f["name"] for f in result["frames"]] == ["00", "01"]
    assert all(set(f["methods"]) == {"lite", "bicubic", "guided_filter"} for f in result["frames"])
    mean = np.mean([f["methods"]["bicubic"]["rmse"] for f in result["frames"]])
    assert result["methods"]["bicubic"]["rmse"] == pytest.approx(mean)
    assert sorted(p.name for p in (tmp_path / "prev").iterdir()) == ["00_x4.png", "01_x4.png"]
    printed = capsys.readouterr().out
    assert "guided_filter" in printed and "vs guided" in printed


def test_metric_protocol_with_a_sensor_model_and_real_depth_lr(tmp_path):
    data = write_folder(tmp_path / "data")
    out = tmp_path / "metric.json"
    main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--protocol", "metric",
          "--degrade", "tof", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["degrade"] == "tof" and set(result["methods"]) == {"bicubic", "guided_filter"}
    assert {"rmse", "mae", "absrel", "delta1", "edge_rmse"} <= set(result["methods"]["bicubic"])
    assert result["methods"]["bicubic"]["rmse"] < 0.5  # metres, on 0.5-5 m scenes

    real = write_folder(tmp_path / "real", with_lr=True)
    main(["evaluate", "--data", str(real), "--scale", "4", "--backbone", "bicubic", "--protocol", "metric",
          "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["degrade"] == "depth_lr"
    assert all(f["source"] == "depth_lr" for f in result["frames"])


def test_update_card_records_numbers_and_the_command(tmp_path, weights):
    data = write_folder(tmp_path / "data")
    main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "lite", "--weights", str(weights),
          "--protocol", "gdsr", "--json", str(tmp_path / "e.json"), "--update-card"])
    card = json.loads(weights.with_name("lite_x4.card.json").read_text())
    result = json.loads((tmp_path / "e.json").read_text())
    assert card["metrics"]["val_rmse"] == pytest.approx(result["methods"]["lite"]["rmse"])
    assert card["metrics"]["gdsr_bicubic_guided_filter_rmse"] == pytest.approx(result["methods"]["guided_filter"]["rmse"])
    assert "depth-sr evaluate" in card["notes"] and "--protocol gdsr" in card["notes"]
