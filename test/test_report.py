"""report.html building blocks: the error histogram's counts and the page's escaping and links."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depth_sr_ros.replay.previews import PreviewEntry
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
