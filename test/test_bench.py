"""`depth-sr bench` on a tiny run: a classic backbone and the small `lite` network (untrained) at
160x120, a few frames, both CPU backends; the JSON and Markdown outputs carry every field."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.models import zoo
from depth_sr_ros.tools import bench
from depth_sr_ros.tools.bench_frames import sample_frames
from depth_sr_ros.tools.bench_record import OVERHEAD_STAGES, STAGES

HEIGHT, WIDTH, SCALE = 120, 160, 4


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("torch", reason="bench times the torch backend and untrained networks: the torch extra")
    out = tmp_path_factory.mktemp("bench")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        [
            "--backbones", "bicubic", "lite",
            "--backends", "onnxruntime", "torch",
            "--height", str(HEIGHT), "--width", str(WIDTH), "--scale", str(SCALE),
            "--frames", "3", "--warmup", "1", "--repeats", "2", "--untrained", "--device", "cpu",
            "--cache-dir", str(out / "cache"),
            "--json", str(out / "bench.json"), "--markdown", str(out / "bench.md"),
        ]
    )
    assert bench.run(args) == 0
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


def test_one_record_per_backbone_and_backend(tiny_run):
    payload, _ = tiny_run
    combos = [(r["backbone"], r["backend"]) for r in payload["records"]]
    assert combos == [("bicubic", "numpy"), ("lite", "onnxruntime"), ("lite", "torch")]
    details = [r["backend_detail"] for r in payload["records"]]
    assert details[1] == "onnxruntime[CPUExecutionProvider]" and details[2].startswith("torch[cpu")


def test_record_fields(tiny_run):
    payload, _ = tiny_run
    for record in payload["records"]:
        assert set(record["stages_ms"]) == set(STAGES)
        assert all(v >= 0 for v in record["stages_ms"].values())
        assert record["network_ms"] == record["stages_ms"]["network"]
        assert (record["height"], record["width"], record["scale"]) == (HEIGHT, WIDTH, SCALE)
        assert 0 < record["overhead_ms"] < record["total_ms"]
        assert record["overhead_p90_ms"] >= record["overhead_ms"]
        assert record["copy_baseline_ms"] > 0 and record["bicubic_baseline_ms"] > 0
        assert set(record["stage_copy_baseline_ms"]) == set(OVERHEAD_STAGES)
        assert record["fps"] == pytest.approx(1e3 / record["total_ms"], rel=1e-3)
        assert record["memory"]["rss_peak_mb"] > 0 and record["memory"]["frame_alloc_peak_mb"] > 0
        assert "cores" in record["machine"]
        assert record["runs"] == 2 and len(record["run_medians_ms"]["overhead"]) == 2
        runs = sorted(record["run_medians_ms"]["total"])
        assert runs[0] - 1e-3 <= record["total_ms"] <= runs[-1] + 1e-3
    lite = payload["records"][1]
    shipped = zoo.find_weights("lite", SCALE)
    assert lite["untrained"] == (shipped is None)  # --untrained only stands in for missing weights
    assert lite["weights"] is not None and lite["network_vs_bicubic"] > 0


def test_confidence_stage_only_with_the_flag(tiny_run, tmp_path):
    payload, _ = tiny_run
    for record in payload["records"]:  # not asked for: not computed, no baseline
        assert record["stages_ms"]["confidence"] == 0 and record["stage_copy_baseline_ms"]["confidence"] == 0
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--backbones", "bicubic", "--height", str(HEIGHT), "--width", str(WIDTH),
                              "--scale", str(SCALE), "--frames", "2", "--warmup", "1", "--device", "cpu",
                              "--points", "none", "--confidence", "--json", str(tmp_path / "bench.json")])
    assert bench.run(args) == 0
    (record,) = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert record["stages_ms"]["confidence"] > 0 and record["stage_copy_baseline_ms"]["confidence"] > 0
    assert record["bytes"]["confidence"] == 2 * HEIGHT * WIDTH * 4  # the depth read, the confidence written


def test_copy_baseline_covers_messages_in_and_out(tiny_run):
    payload, _ = tiny_run
    lr = (HEIGHT // SCALE) * (WIDTH // SCALE)
    inputs = HEIGHT * WIDTH * 3 + lr * 2  # rgb8 + 16UC1
    outputs = HEIGHT * WIDTH * 4 + HEIGHT * WIDTH * 16  # 32FC1 image + XYZRGB cloud
    assert payload["records"][0]["bytes"]["frame"] == inputs + outputs


def test_machine_and_markdown(tiny_run):
    payload, text = tiny_run
    machine = payload["machine"]
    assert machine["cpu"] and machine["usable_cores"] >= 1 and machine["onnxruntime"]
    assert "load_average_1min_after" in machine
    assert machine["cpu"] in text and "depth-sr bench" in text
    assert text.count(f"| x{SCALE} |") == 2 * len(payload["records"])  # both tables


@pytest.mark.parametrize("scale", [2, 8, 3])
def test_sample_frames_are_real_messages(scale):
    frames = sample_frames(480, 640, scale)
    assert len(frames) >= 3
    frame = frames[0]
    rgb, depth = rgb_from_image(frame.rgb), depth_from_image(frame.depth)
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8
    assert depth.shape == (-(-480 // scale), -(-640 // scale))
    assert 0.2 < np.isfinite(depth).mean() < 1.0  # raw Kinect depth: holes and valid metres
    assert np.nanmax(depth) < 10.0
    assert (frame.depth_info.width, frame.depth_info.height) == (depth.shape[1], depth.shape[0])


def test_soak_beyond_its_bound_is_one_line_and_exit_2(capsys):
    """`bench --soak N` writes an N-frame bag to disk first: a typo's N is refused before anything runs."""
    from depth_sr_ros.cli import main
    from depth_sr_ros.tools.soak import MAX_SOAK_FRAMES

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert parser.parse_args(["--soak", str(MAX_SOAK_FRAMES)]).soak == MAX_SOAK_FRAMES
    assert main(["bench", "--soak", str(MAX_SOAK_FRAMES * 10)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--soak" in line and f"expected from 10 to {MAX_SOAK_FRAMES}" in line, line


def test_register_stage_only_with_a_residual(tiny_run, tmp_path):
    payload, _ = tiny_run
    for record in payload["records"]:  # no residual: nothing registered, no baseline
        assert record["residual_m"] is None
        assert record["stages_ms"]["register"] == 0 and record["stage_copy_baseline_ms"]["register"] == 0
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--backbones", "bicubic", "--height", str(HEIGHT), "--width", str(WIDTH),
                              "--scale", str(SCALE), "--frames", "2", "--warmup", "1", "--device", "cpu",
                              "--points", "none", "--residual", "0.03", "0.01", "0",
                              "--json", str(tmp_path / "bench.json")])
    assert bench.run(args) == 0
    (record,) = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert record["residual_m"] == [0.03, 0.01, 0.0]
    assert record["stages_ms"]["register"] > 0 and record["stage_copy_baseline_ms"]["register"] > 0
    lr = (HEIGHT // SCALE) * (WIDTH // SCALE)
    assert record["bytes"]["register"] == 2 * lr * 4  # a classic upsampler: the input re-registered


def test_a_networks_second_pass_is_counted_in_its_stages_bytes(tmp_path):
    pytest.importorskip("torch", reason="bench times the torch backend: the torch extra")
    records = {}
    for name, extra in (("two", []), ("one", ["--no-second-pass"])):
        parser = argparse.ArgumentParser()
        bench.add_arguments(parser)
        args = parser.parse_args(["--backbones", "lite", "--backends", "torch", "--height", str(HEIGHT),
                                  "--width", str(WIDTH), "--scale", str(SCALE), "--frames", "2", "--warmup", "1",
                                  "--device", "cpu", "--points", "none", "--residual", "0.03", "0.01", "0",
                                  "--no-progress", "--json", str(tmp_path / f"{name}.json"), *extra])
        assert bench.run(args) == 0
        (records[name],) = json.loads((tmp_path / f"{name}.json").read_text())["records"]
    lr, hr = (HEIGHT // SCALE) * (WIDTH // SCALE) * 4, HEIGHT * WIDTH * 4
    two, one = records["two"]["bytes"], records["one"]["bytes"]
    assert two["preprocess"] == 2 * one["preprocess"] and two["postprocess"] == 2 * one["postprocess"]
    assert two["register"] == one["register"] + hr + lr  # the reprojected output brought to the input grid
