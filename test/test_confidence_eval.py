"""`depth-sr confidence` on a tiny folder: the figures, the mean curve, the PNG, the sweep, and
flag mistakes as one-line usage errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from depth_sr_ros.cli import main
from depth_sr_ros.core.confidence import ConfidenceConfig
from depth_sr_ros.tools.confidence_eval import SWEEP


def write_folder(root):
    """Two 64x80 frames: a slanted floor and a box in front of it, colour following depth."""
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    (root / "dataset.json").write_text(json.dumps({"depth_unit_m": 0.001, "zero_is_invalid": True,
                                                   "gdsr_style": "rgbdd"}))
    rows, cols = np.mgrid[:64, :80]
    for index in range(2):
        depth = 2.0 + 0.01 * rows
        box = (np.abs(rows - 30 - 4 * index) < 12) & (np.abs(cols - 40 + 5 * index) < 15)
        depth[box] = 1.2
        grey = np.clip(255 * (depth - 1.0) / 1.8, 0, 255).astype(np.uint8)
        Image.fromarray(np.dstack([grey, 255 - grey, grey // 2])).save(root / "rgb" / f"{index:02d}.png")
        Image.fromarray(np.round(depth * 1000).astype(np.uint16)).save(root / "depth" / f"{index:02d}.png")
    return root


def test_scores_the_pipeline_output_and_writes_json_and_png(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    out, png = tmp_path / "out" / "c.json", tmp_path / "out" / "c.png"
    code = main(["confidence", "--data", str(data), "--scale", "4", "--backbone", "guided_filter",
                 "--json", str(out), "--png", str(png), "--no-progress"])
    assert code == 0
    result = json.loads(out.read_text())
    assert (result["backbone"], result["scale"], result["frames"], result["input"]) == ("guided_filter", 4, 2, "bicubic")
    assert result["config"] == json.loads(json.dumps(ConfidenceConfig().__dict__))
    assert result["rmse_m"] > 0 and 0 < result["ause_relative"] < 1
    curve = result["curve"]
    assert curve["fractions"][0] == 0 and len(curve["fractions"]) == len(curve["rmse_m"]) == len(curve["oracle_m"])
    # the box edges hold the error: dropping the least-confident 10 % cuts the RMSE
    assert result["rmse_cut"]["0.1"] > 0.3
    assert np.all(np.array(curve["oracle_m"]) <= np.array(curve["rmse_m"]) + 1e-12)
    assert result["sweep"] == []
    assert cv2.imread(str(png)).shape == (420, 640, 3)
    printed = capsys.readouterr().out
    assert "AUSE" in printed and "cuts RMSE by" in printed and f"wrote {png}" in printed


def test_sweep_ranks_every_combination(tmp_path, capsys):
    data = write_folder(tmp_path / "data")
    out = tmp_path / "s.json"
    assert main(["confidence", "--data", str(data), "--backbone", "bicubic", "--scenes", "00", "--sweep",
                 "--json", str(out), "--no-progress"]) == 0
    sweep = json.loads(out.read_text())["sweep"]
    combinations = np.prod([len(values) for values in SWEEP.values()])
    assert len(sweep) == combinations  # the shipped defaults are one of them
    relative = [row["ause_relative"] for row in sweep]
    assert relative == sorted(relative)
    assert len(capsys.readouterr().out.splitlines()) >= combinations


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--misregistration", "2"], "--misregistration needs --degrade"),
        (["--backbone", "nope"], "--backbone nope"),
        (["--weights", "/no/such.safetensors"], "--weights"),
    ],
)
def test_flag_mistakes_are_one_line_usage_errors(tmp_path, capsys, extra, message):
    data = write_folder(tmp_path / "data")
    assert main(["confidence", "--data", str(data), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
