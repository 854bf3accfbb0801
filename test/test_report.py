"""report.html building blocks: the error histogram's counts, the page's escaping and links, and
which frames get a preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depth_sr_ros.core.preview_figure import PreviewFrame
from depth_sr_ros.replay.previews import PreviewEntry, PreviewPlan
from depth_sr_ros.replay.report import HIST_EDGES_M, ErrorHistogram, ReportInputs, render_report


def test_error_histogram_counts_scored_pixels_and_the_overflow() -> None:
    gt = np.array([[1.0, 1.0, 1.0, 1.0, np.nan, 1.0]], np.float32)
    pred = np.array([[1.002, 1.007, 0.96, 1.5, 1.0, np.nan]], np.float32)  # 2 mm, 7 mm, 4 cm, 50 cm
    histogram = ErrorHistogram()
    histogram.add("m", pred, gt)
    histogram.add("m", pred, gt)
    assert histogram.total("m") == 8  # no ground truth / no output: not scored
    assert histogram.overflow["m"] == 2
    assert histogram.counts["m"][0] == 2 and histogram.counts["m"][1] == 2 and histogram.counts["m"][8] == 2
    assert histogram.share_within("m", 0.01) == pytest.approx(0.5)
    assert histogram.share_within("m", 0.05) == pytest.approx(0.75)
    assert len(histogram.counts["m"]) == len(HIST_EDGES_M) - 1


def test_page_escapes_names_and_links_previews_relatively() -> None:
    histogram = ErrorHistogram()
    gt = np.full((4, 4), 2.0, np.float32)
    histogram.add("net<b>", gt + 0.01, gt)
    rows = [{"frame": i, "rgb_stamp_ns": 10**9 + i * 33_333_333, "status": "ok", "net<b>_rmse": 0.01 * (i + 1),
             "total_ms": 50.0} for i in range(5)]
    worst = [PreviewEntry(4, rows[4]["rgb_stamp_ns"], {"net<b>": 0.05}, Path("previews") / "frame_0004_x.png")]
    page = render_report(ReportInputs(bag="/bags/a&b", backbone="net<b>", scale=4, rows=rows, methods=["net<b>"],
                                      metrics={"net<b>": {"rmse": 0.03}}, histogram=histogram, worst=worst,
                                      sampled=[], sample_every=100, skipped={"corrupt_record": 2}))
    assert "net<b>" not in page and "net&lt;b&gt;" in page and "/bags/a&amp;b" in page
    assert '<img src="previews/frame_0004_x.png"' in page and 'href="#frame-4"' in page
    assert "<td>corrupt_record</td><td>2</td>" in page
    assert page.count("<polyline") == 2  # RMSE and time per frame


def test_preview_plan_draws_every_nth_and_the_worst_frames_a_gap_apart(tmp_path: Path) -> None:
    made: list[int] = []
    rgb = np.zeros((8, 8, 3), np.uint8)

    def maker(index: int):
        def make() -> PreviewFrame:
            made.append(index)
            return PreviewFrame(rgb, {"m": np.full((8, 8), 1.0 + index, np.float32)})
        return make

    scores = [0.1] * 40
    scores[3], scores[5], scores[12], scores[30], scores[33] = 0.9, 0.8, 0.5, 0.7, 0.95  # 3/5 and 30/33: one moment each
    plan = PreviewPlan(tmp_path, every=20, worst=2, min_gap=10)
    for i, score in enumerate(scores):
        plan.offer(i, PreviewEntry(i, i, {"m": score}, Path("previews") / f"f{i}.png"), score, maker(i))
    worst = plan.finish()
    assert [e.frame for e in worst] == [33, 3] and [e.frame for e in plan.sampled] == [0, 20]
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == ["f0.png", "f20.png", "f3.png", "f33.png"]
    # prepared only when drawn or kept for a while (13 fills the second slot until 30 beats it);
    # 5 and 12, within the gap of the worse frame 3, never are
    assert sorted(set(made)) == [0, 3, 13, 20, 30, 33]
