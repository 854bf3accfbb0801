"""`depth-sr evaluate` on tiny folders: JSON and CSV, baselines on the same frames, depth_lr/,
previews, sensor models at a misregistration level, and the gdsr protocol against an independent
implementation of PROTOCOL.md."""

import csv
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
    assert card["metrics"]["gdsr_bicubic_data_all_lite_rmse"] == pytest.approx(result["methods"]["lite"]["rmse"])
    assert card["metrics"]["gdsr_bicubic_data_all_guided_filter_rmse"] == pytest.approx(
        result["methods"]["guided_filter"]["rmse"])
    assert "val_rmse" not in card["metrics"]  # only the held-out split of rgbdd_dev ranks models
    assert "depth-sr evaluate" in card["notes"] and "--protocol gdsr" in card["notes"]


def test_csv_has_one_row_per_frame_and_misregistration_is_a_level(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    out = tmp_path / "mis.json"
    figures = []
    for level in ("0", "3"):
        main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--degrade", "real_tof",
              "--misregistration", level, "--json", str(out)])
        result = json.loads(out.read_text())
        assert result["degrade"] == f"real_tof@{level}px" and "Misregister" in result["degradation"]
        figures.append(result["methods"]["bicubic"]["rmse"])
        rows = list(csv.DictReader(out.with_suffix(".csv").open()))
        assert [r["frame"] for r in rows] == ["00", "01"]
        assert float(rows[1]["guided_filter_rmse"]) == pytest.approx(result["frames"][1]["methods"]["guided_filter"]
                                                                     ["rmse"], rel=1e-5)
    assert figures[1] > figures[0]  # 3 px of misregistration hurts
    capsys.readouterr()
    assert main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--misregistration", "1",
                 "--json", str(out)]) == 2
    assert "--misregistration needs --degrade" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--split", "heldout",
                 "--json", str(out)]) == 2
    assert "recognised data set" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(data), "--scale", "4", "--degrade", "nope", "--json", str(out)]) == 2
    assert "real_tof" in capsys.readouterr().err  # the known names


def protocol_md_bicubic_rmse(gt_u8: np.ndarray, s: int) -> float:
    """PROTOCOL.md for the bicubic baseline on one 0-255 frame, written from the text alone."""
    height, width = gt_u8.shape
    h, w = height - height % s, width - width % s  # 1. crop to a multiple of s
    gt = gt_u8[:h, :w].astype(np.float32)
    lr = np.asarray(Image.fromarray(gt).resize((w // s, h // s), Image.BICUBIC))  # 2. PIL bicubic
    lo, hi = gt.min(), gt.max()
    lr = (lr - lo) / (hi - lo)  # 3. normalise by the ground truth's range
    up = np.asarray(Image.fromarray(lr).resize((w, h), Image.BICUBIC))  # 4. bicubic up
    pred = np.clip(up, 0, 1) * (hi - lo) + lo  # 5. clamp, de-normalise
    pred = np.clip(pred, 0, 255)  # 6. Middlebury: clip to [0, 255], all pixels, 0-255 scale
    return float(np.sqrt(np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2)))


def test_a_0_255_folder_with_zero_ground_truth_scores_as_protocol_md_says(tmp_path):
    root = tmp_path / "lu_like"  # not named like any preset: only dataset.json says how to read it
    for sub in ("rgb", "depth"):
        (root / sub).mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"depth_unit_m": 0.01, "zero_is_invalid": False,
                                                   "gdsr_style": "middlebury"}))
    expected = {4: [], 8: []}
    for seed in range(3):
        frame = make_scene(SyntheticConfig(height=45 + seed, width=61 - seed), seed)
        gt = np.round(255 * (frame.depth - frame.depth.min()) / np.ptp(frame.depth)).astype(np.uint8)
        gt[: 8 + seed, : 10] = 0  # zero pixels: values on this scale
        assert (gt == 0).sum() > 50
        Image.fromarray(frame.rgb).save(root / "rgb" / f"{seed:02d}.png")
        Image.fromarray(gt).save(root / "depth" / f"{seed:02d}.png")
        for s, figures in expected.items():
            figures.append(protocol_md_bicubic_rmse(gt, s))
    for s, figures in expected.items():
        out = tmp_path / f"lu_x{s}.json"
        assert main(["evaluate", "--data", str(root), "--scale", str(s), "--backbone", "bicubic",
                     "--json", str(out)]) == 0
        result = json.loads(out.read_text())
        assert result["units"] == "0-255 disparity scale" and result["gt_holes_frames"] == 0
        assert [f["methods"]["bicubic"]["rmse"] for f in result["frames"]] == pytest.approx(figures, rel=1e-5)
        assert result["methods"]["bicubic"]["rmse"] == pytest.approx(np.mean(figures), rel=1e-5)


def test_recognised_sets_score_their_held_out_split_with_published_figures(shared_data, tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)  # no --json: the result goes to runs/evaluate/ under the current folder
    main(["evaluate", "--data", str(shared_data / "middlebury"), "--scale", "16", "--backbone", "bicubic"])
    out = tmp_path / "runs" / "evaluate" / "middlebury_heldout_x16_gdsr_bicubic.json"
    assert out.with_suffix(".csv").exists()
    result = json.loads(out.read_text())
    assert (result["set"], result["split"]) == ("middlebury", "heldout")
    assert result["scenes"] == ["15", "16", "17", "18", "19", "20"]
    assert {p["method"] for p in result["published"]} >= {"DCTNet (CVPR 2022)", "NAIMA (2026)"}
    assert result["methods"]["bicubic"]["rmse"] == pytest.approx(7.159, abs=0.01)  # README, Middlebury 15-20
    printed = capsys.readouterr().out
    assert "NAIMA (2026) (published)" in printed and "30 Middlebury scenes" in printed


def test_a_corrupt_png_is_a_counted_reported_skip_and_the_other_frames_score_as_before(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    clean = tmp_path / "clean.json"
    assert main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--json", str(clean)]) == 0
    depth = data / "depth" / "01.png"
    depth.write_bytes(depth.read_bytes()[:200])  # truncated mid-stream
    out = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--json", str(out)]) == 0
    result, before = json.loads(out.read_text()), json.loads(clean.read_text())
    assert [f["name"] for f in result["frames"]] == ["00"] and set(result["unreadable_frames"]) == {"01"}
    assert result["frames"][0]["methods"] == before["frames"][0]["methods"]  # same seed, same input for frame 00
    printed = capsys.readouterr()
    assert "skipped 1 unreadable frame(s), not scored: 01" in printed.out and "Traceback" not in printed.err
    (data / "rgb" / "00.png").write_bytes(b"not a png")  # now no frame reads: one line, exit 2
    assert main(["evaluate", "--data", str(data), "--scale", "4", "--backbone", "bicubic", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--data" in err and "no frame could be read" in err


def test_the_second_pass_network_follows_second_pass_weights(tmp_path, weights):
    from depth_sr_ros.tools.evaluate import second_pass_method

    other = save_weights(lite(4, width=8, dilations=(1,), fine_width=4), tmp_path / "o" / "lite_x4.safetensors",
                         ModelCard("lite", 4))
    assert second_pass_method("bicubic", 4, None, str(other)) == (None, None)  # a classic method runs itself
    assert second_pass_method("lite", 4, str(weights), "same") == (None, None)
    assert second_pass_method("lite", 4, str(weights), "auto") == (None, None)  # none made for these weights
    method, path = second_pass_method("lite", 4, str(weights), str(other))
    assert path == str(other) and method is not None
    rgb, depth = np.zeros((32, 32, 3), np.uint8), np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    assert method(rgb, depth, np.ones((8, 8), bool), 4).shape == (32, 32)
