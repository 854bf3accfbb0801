"""Replay output people can keep: the size per frame of a 300-frame replay with defaults, --every,
--max-frames, --points, the worst frames in report.html, and the report rendered by a headless browser."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_sr_ros.cli import main
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay import sample_bag as sb
from depth_sr_ros.replay.bag_io import BagReader
from depth_sr_ros.replay.config import WORST_PREVIEWS, ReplayConfig
from depth_sr_ros.replay.previews import WORST_MIN_GAP
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.writer import OUTPUT_IMAGE_TOPIC, OUTPUT_INFO_TOPIC, OUTPUT_POINTS_TOPIC, path_bytes
from depth_sr_ros.tools import replay as replay_tool

LONG_FRAMES = 300
MAX_MB_PER_FRAME = 0.6  # issue 12: a 300-frame 640x480 replay with defaults, bag + previews + csv + report
RAW_16UC1_BYTES = 640 * 480 * 2


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`depth-sr demo --frames 300`: the sample tiled to 300 frames, replayed with every default."""
    out = tmp_path_factory.mktemp("long")
    assert main(["demo", "--frames", str(LONG_FRAMES), "--out", str(out), "--no-progress"]) == 0
    return out


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "frames.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_300_frame_replay_with_defaults_stays_under_the_size_budget(long_run: Path) -> None:
    metrics = json.loads((long_run / "metrics.json").read_text())
    assert metrics["pairs_processed"] == LONG_FRAMES == metrics["frames_in_bag"]
    parts = {name: path_bytes(long_run / name)
             for name in ("sr_bag", "previews", "frames.csv", "report.html", "sparsification.png")}
    total = sum(parts.values())
    assert all(parts.values()), parts
    assert total / LONG_FRAMES / 1e6 <= MAX_MB_PER_FRAME, parts
    sizes = metrics["output_sizes"]
    assert sizes["total_bytes"] == total and sizes["mb_per_frame"] == pytest.approx(total / 1e6 / LONG_FRAMES, abs=1e-4)
    # the depth images sit in zstd-compressed MCAP chunks: well under their raw size
    mcap = next((long_run / "sr_bag").glob("*.mcap"))
    assert b"zstd" in mcap.read_bytes()[:4096 * 64] and parts["sr_bag"] < 0.5 * LONG_FRAMES * RAW_16UC1_BYTES
    assert metrics["output"] == {"encoding": "16UC1", "points": "none", "every": 1, "max_frames": 0,
                                 "previews": len(list((long_run / "previews").glob("*.png"))),
                                 "worst_frames": metrics["output"]["worst_frames"]}


def test_previews_go_to_every_100th_frame_and_the_worst_frames(long_run: Path) -> None:
    worst: list[int] = []  # the highest RMSE first, at least WORST_MIN_GAP frames apart
    for row in sorted(rows(long_run), key=lambda r: (-float(r["lite_rmse"]), int(r["frame"]))):
        if len(worst) < WORST_PREVIEWS and all(abs(int(row["frame"]) - f) >= WORST_MIN_GAP for f in worst):
            worst.append(int(row["frame"]))
    metrics = json.loads((long_run / "metrics.json").read_text())
    assert metrics["output"]["worst_frames"] == worst
    drawn = {int(p.name.split("_")[1]) for p in (long_run / "previews").glob("frame_*.png")}
    assert drawn == set(worst) | {0, 100, 200}


def test_report_lists_the_worst_frames_with_their_previews(long_run: Path) -> None:
    page = (long_run / "report.html").read_text()
    worst = json.loads((long_run / "metrics.json").read_text())["output"]["worst_frames"]
    section = page[page.index('id="worst-frames"') : page.index('id="sampled-frames"')]
    assert re.findall(r'id="frame-(\d+)"', section) == [str(f) for f in worst]
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (long_run / src).is_file() and not Path(src).is_absolute()
    assert 'id="rmse-chart"' in page and 'id="error-histogram-chart"' in page and 'id="time-chart"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def chromium(browser: str, args: list[str], page: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=10000", *args, page.resolve().as_uri()]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=180)


def test_report_renders_in_a_headless_browser_with_every_preview_loaded(long_run: Path, tmp_path: Path,
                                                                         chromium_browser: str) -> None:
    dom = chromium(chromium_browser, ["--dump-dom"], long_run / "report.html", tmp_path).stdout
    images = len(re.findall(r"<img ", dom))
    assert images >= WORST_PREVIEWS
    assert f'data-images-loaded="{images}"' in dom and 'data-images-broken="0"' in dom  # set by the page's script
    assert all(f'id="{chart}"' in dom for chart in ("rmse-chart", "error-histogram-chart", "time-chart"))
    shot = tmp_path / "report.png"
    chromium(chromium_browser, [f"--screenshot={shot}", "--window-size=1280,2400"], long_run / "report.html", tmp_path)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2400, 1280)
    colours = np.unique(image.reshape(-1, 3)[::7], axis=0)
    assert image.std() > 20 and len(colours) > 500  # charts, text and preview colours, not a blank page


def test_a_moved_report_says_its_previews_did_not_load(long_run: Path, tmp_path: Path, chromium_browser: str) -> None:
    moved = tmp_path / "report.html"
    moved.write_text((long_run / "report.html").read_text())
    dom = chromium(chromium_browser, ["--dump-dom"], moved, tmp_path).stdout
    assert 'data-images-loaded="0"' in dom and "did not load" in dom


def test_every_max_frames_and_xyz_points_via_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag", frames=9)
    parser = argparse.ArgumentParser()
    replay_tool.add_arguments(parser)
    args = parser.parse_args([str(bag.path), "--out", str(tmp_path / "out"), "--gt-topic", sb.GT_TOPIC,
                              "--backbone", "guided_filter", "--every", "3", "--max-frames", "7", "--points", "xyz",
                              "--point-stride", "4", "--no-progress"])
    assert replay_tool.run(args) == 0
    assert "damaged storage" not in capsys.readouterr().out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["pairs_processed"] == 7 and metrics["frames_scored"] == 7  # metrics over every frame
    assert metrics["frames_in_bag"] == 3 and metrics["skipped_messages"].get("max_frames", 0) >= 1
    # the rest of the bag is left unread on purpose, not mistaken for damaged storage
    assert metrics["not_read_messages"] > 0 and metrics["unreadable_messages"] == 0
    assert metrics["messages"][sb.RGB_TOPIC]["read"] + metrics["messages"][sb.RGB_TOPIC]["not_read"] == 9
    with BagReader(tmp_path / "out" / "sr_bag") as reader:
        counts = {topic: n for topic, (_, n) in reader.topics().items()}
        clouds = [r.message for r in reader.records([OUTPUT_POINTS_TOPIC])]
        images = [r.message for r in reader.records([OUTPUT_IMAGE_TOPIC])]
    assert counts == {OUTPUT_IMAGE_TOPIC: 3, OUTPUT_INFO_TOPIC: 3, OUTPUT_POINTS_TOPIC: 3}
    assert [c.name for c in clouds[0].fields] == ["x", "y", "z"] and (clouds[0].width, clouds[0].height) == (160, 120)
    ok = [r for r in rows(tmp_path / "out") if r["status"] == "ok"]
    stamps = [int(r["rgb_stamp_ns"]) for r in ok if r["in_bag"] == "1"]
    assert [r["in_bag"] for r in ok] == ["1", "0", "0", "1", "0", "0", "1"]
    assert [i.header.stamp.sec * 10**9 + i.header.stamp.nanosec for i in images] == stamps


def test_bad_output_options_are_one_line_errors_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag")
    for option, value in (("--every", "0"), ("--max-frames", "-1"), ("--preview-every", "-2"), ("--points", "rgb")):
        assert main(["replay", str(bag.path), "--out", str(tmp_path / "out"), option, value, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert option in err and "Traceback" not in err
    with pytest.raises(ValueError, match="--every must be >= 1"):
        ReplayConfig(bag=bag.path, out_dir=tmp_path / "out", rgb_topic=sb.RGB_TOPIC, rgb_info_topic=sb.RGB_INFO_TOPIC,
                     depth_topic=sb.DEPTH_TOPIC, every=0)


def test_without_ground_truth_the_report_says_so_and_draws_sampled_frames(tmp_path: Path) -> None:
    bag = sb.build_sample_bag(tmp_path / "bag")
    report = run_replay(ReplayConfig(bag=bag.path, out_dir=tmp_path / "out", rgb_topic=sb.RGB_TOPIC,
                                     rgb_info_topic=sb.RGB_INFO_TOPIC, depth_topic=sb.DEPTH_TOPIC,
                                     depth_info_topic=sb.DEPTH_INFO_TOPIC, sr=SRConfig(backbone="guided_filter"),
                                     preview_every=2, progress=False))
    assert report.pairs_processed == 3 and report.metrics == {}
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No ground truth" in page and 'id="rmse-chart"' not in page and 'id="worst-frames"' not in page
    assert sorted(p.name.split("_")[1] for p in (tmp_path / "out" / "previews").glob("*.png")) == ["0000", "0002"]
