"""Replay scores the model's confidence against ground truth: the sparsification curve and AUSE in
metrics.json, frames.csv and the end-of-run summary, sparsification.png (recorded in the output
folder's manifest), the curve in report.html and the `1 - confidence` panel in the previews."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_replay import replay_config, write_bag

from depth_sr_ros.core.preview import ERROR_COLORMAP, NO_DATA_BGR
from depth_sr_ros.core.preview_figure import FigureStyle, PreviewFrame, _colorize_distrust, render_preview
from depth_sr_ros.core.sparsification_plot import SIZE
from depth_sr_ros.replay import previews
from depth_sr_ros.replay.config import SPARSIFICATION_PNG
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.scoring import CONFIDENCE_CUT
from depth_sr_ros.replay.summary import format_summary


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A replay of test_replay's bag (5 good frames with ground truth) and its summary."""
    root = tmp_path_factory.mktemp("confidence")
    write_bag(root / "in")
    report = run_replay(replay_config(root / "in", root / "out"))
    return root, format_summary(report)


def test_metrics_json_holds_the_sparsification_of_every_scored_frame(scored: tuple[Path, str]) -> None:
    out = scored[0] / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    figures = metrics["confidence"]
    model = metrics["backbone"]
    assert figures["method"] == model and figures["frames"] == metrics["frames_scored"] == 5
    curve = {name: np.array(values) for name, values in figures["curve"].items()}
    # at 0 % removed both curves are the RMSE of all scored pixels: the frames' mean RMSE
    assert curve["rmse_m"][0] == curve["oracle_m"][0] == figures["rmse_m"]
    assert figures["rmse_m"] == pytest.approx(metrics["metrics"][model]["rmse"], abs=2e-6)
    # the oracle removes the largest errors first: no order leaves less
    assert np.all(curve["oracle_m"] <= curve["rmse_m"] + 1e-6)
    # AUSE is linear in the curves: the mean per-frame AUSE is the area between the mean curves
    gap = curve["rmse_m"] - curve["oracle_m"]
    area = float(np.sum((gap[1:] + gap[:-1]) * np.diff(curve["fractions"])) / 2)
    assert 0 < figures["ause_m"] == pytest.approx(area, abs=1e-5)
    index = int(np.flatnonzero(np.isclose(curve["fractions"], CONFIDENCE_CUT))[0])
    assert figures["removed_fraction"] == CONFIDENCE_CUT
    assert figures["rmse_after_removing_m"] == curve["rmse_m"][index]
    assert figures["oracle_rmse_after_removing_m"] == curve["oracle_m"][index]
    # the box's edges carry the error and the lowest confidence: removing them helps
    assert figures["rmse_after_removing_m"] < 0.7 * figures["rmse_m"] and figures["rmse_cut"] > 0.3
    with open(out / "frames.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["gt"] == "ok"]
    per_frame = [float(row[f"{model}_ause"]) for row in rows]
    assert len(per_frame) == 5 and figures["ause_m"] == pytest.approx(np.mean(per_frame), abs=2e-6)
    cuts = [float(row[f"{model}_rmse_cut_10pct"]) for row in rows]
    assert figures["rmse_cut"] == pytest.approx(np.mean(cuts), abs=2e-6)


def test_the_curve_png_the_summary_line_and_the_report(scored: tuple[Path, str]) -> None:
    root, summary = scored
    image = cv2.imread(str(root / "out" / SPARSIFICATION_PNG), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (SIZE[1], SIZE[0], 3)
    figures = json.loads((root / "out" / "metrics.json").read_text())["confidence"]
    assert (f"AUSE {figures['ause_m']:.4f} m" in summary and "removing the 10% least-confident pixels leaves "
            f"RMSE {figures['rmse_after_removing_m']:.4f} m" in summary)
    page = (root / "out" / "report.html").read_text()
    section = page[page.index('id="confidence"'):]
    assert f'<img src="{SPARSIFICATION_PNG}"' in section.split("</section>")[0]


def test_previews_get_the_confidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[PreviewFrame] = []

    def record(frame: PreviewFrame, style: FigureStyle) -> np.ndarray:
        drawn.append(frame)
        return render_preview(frame, style)

    monkeypatch.setattr(previews, "render_preview", record)
    write_bag(tmp_path / "in")
    run_replay(replay_config(tmp_path / "in", tmp_path / "out", max_frames=1))
    assert drawn and all(f.confidence is not None and f.confidence.shape == f.gt.shape for f in drawn)
    assert all(0 <= f.confidence.min() and f.confidence.max() <= 1 for f in drawn)


def test_a_rerun_without_ground_truth_removes_the_recorded_curve(tmp_path: Path) -> None:
    root = tmp_path
    write_bag(root / "in")
    run_replay(replay_config(root / "in", root / "out", previews=False))
    assert (root / "out" / SPARSIFICATION_PNG).is_file()
    report = run_replay(replay_config(root / "in", root / "out", gt_topic="", previews=False))
    assert report.frames_scored == 0 and not report.confidence
    assert not (root / "out" / SPARSIFICATION_PNG).exists()  # recorded in the manifest as this owner's
    metrics = json.loads((root / "out" / "metrics.json").read_text())
    assert metrics["confidence"] == {}
    assert "confidence of" not in format_summary(report)


def test_preview_panel_shows_one_minus_confidence_in_the_error_colours() -> None:
    h, w = 40, 60
    rgb = np.zeros((h, w, 3), np.uint8)
    gt = np.full((h, w), 2.0, np.float32)
    model = gt.copy()
    model[:, :4] = np.nan  # no output: grey, whatever the confidence says
    confidence = np.ones((h, w), np.float32)
    confidence[:, w // 2 :] = 0.0
    frame = PreviewFrame(rgb, {"model": model}, None, gt, {}, "t")
    plain = render_preview(frame)
    frame.confidence = confidence
    figure = render_preview(frame)
    assert figure.shape[1] > plain.shape[1]  # one more panel in the lower row
    with pytest.raises(ValueError, match="confidence"):
        render_preview(PreviewFrame(rgb, {"model": model}, None, gt, {}, "t", confidence[:, 1:]))
    panel = _colorize_distrust(confidence, model)
    ramp = cv2.applyColorMap(np.array([[0, 255]], np.uint8), ERROR_COLORMAP)[0]
    assert tuple(panel[5, 10]) == tuple(ramp[0])  # trusted: the colour of no error
    assert tuple(panel[5, w - 1]) == tuple(ramp[1])  # distrusted: the colour of the largest error
    assert tuple(panel[5, 0]) == NO_DATA_BGR
