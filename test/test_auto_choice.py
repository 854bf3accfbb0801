"""`backbone: auto`'s rule (zoo.AUTO_RULE) on temporary cards, never the shipped ones: the most
accurate shipped network holding 10 FPS (640x480, ONNX Runtime, one CPU thread) per scale, the
classic fallback said plainly where none qualifies, and the FPS figure written from a bench result."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from depth_sr_ros.cli import main
from depth_sr_ros.eval.speed_figures import record_fps
from depth_sr_ros.models import zoo
from depth_sr_ros.models.card import ModelCard, read_card, sha256_file
from depth_sr_ros.ros.pipeline_slot import describe_pipeline


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    directory = tmp_path / "models"
    directory.mkdir()
    monkeypatch.setattr(zoo, "model_dirs", lambda: [directory])
    monkeypatch.setattr(zoo, "has_torch_weights", lambda: True)  # every card's network can run here
    return directory


def card(directory, stem, scale=4, val_rmse=None, fps=None, foundation=(), second_pass_for=""):
    """A weights file (placeholder bytes) and its card with the given figures; the weights path."""
    weights = directory / f"{stem}.safetensors"
    weights.write_bytes(stem.encode())
    metrics = {key: value for key, value in ((zoo.RANK_METRIC, val_rmse), (zoo.SPEED_METRIC, fps)) if value is not None}
    (directory / f"{stem}.card.json").write_text(ModelCard(
        backbone="lite", scale=scale, metrics=metrics, foundation=list(foundation), sha256=sha256_file(weights),
        benchmark_test_frames={}, second_pass_for=second_pass_for).to_json())
    return weights


def test_second_pass_weights_go_with_the_network_they_were_made_for_and_never_take_its_input(model_dir):
    first = card(model_dir, "lite_x4", val_rmse=0.8, fps=17.0)
    other = card(model_dir, "lite_x4_other", val_rmse=0.9, fps=17.0)
    companion = card(model_dir, "lite_x4_second_pass", val_rmse=0.1, fps=17.0,
                     second_pass_for=read_card(first).sha256)
    assert zoo.auto_choice(4).weights == first and zoo.find_weights("lite", 4) == first  # its val_rmse is lower
    assert "second pass" in dict(line.split(": ", 1) for line in zoo.auto_choice(4).passed_over)[companion.name]
    assert zoo.second_pass_weights(first) == companion
    assert zoo.second_pass_weights(other) is None  # made for another network's output
    assert zoo.second_pass_choice("auto", "lite", 4, None) == companion  # None: the shipped network's
    assert zoo.second_pass_choice("same", "lite", 4, first) is None
    assert zoo.second_pass_choice("auto", "lite", 4, other) is None
    assert zoo.second_pass_choice("mine.safetensors", "lite", 4, first) == "mine.safetensors"
    assert zoo.second_pass_weights(model_dir / "no_card.safetensors") is None


def test_auto_takes_the_most_accurate_network_at_ten_fps_or_more(model_dir):
    card(model_dir, "accurate_but_slow", val_rmse=0.5, fps=3.0)
    card(model_dir, "fast", val_rmse=0.8, fps=30.0)
    chosen = card(model_dir, "just_fast_enough", val_rmse=0.7, fps=zoo.MIN_AUTO_FPS)  # at least 10: in
    card(model_dir, "unmeasured", val_rmse=0.1)
    card(model_dir, "unscored", fps=50.0)
    card(model_dir, "needs_vit", val_rmse=0.05, fps=50.0, foundation=["dinov2_vits14"])
    choice = zoo.auto_choice(4)
    assert (choice.backbone, choice.weights, choice.fallback) == ("lite", chosen, False)
    assert "lowest val_rmse (0.7)" in choice.reason and "10.0 FPS" in choice.reason
    passed = dict(line.split(": ", 1) for line in choice.passed_over)
    assert passed["accurate_but_slow.safetensors"] == "3.0 FPS, under 10"
    assert passed["fast.safetensors"] == "val_rmse 0.8, above 0.7"
    assert passed["unmeasured.safetensors"].startswith(f"no {zoo.SPEED_METRIC} in its card")
    assert passed["unscored.safetensors"] == "no val_rmse in its card"
    assert passed["needs_vit.safetensors"].startswith("needs foundation weights")
    assert zoo.default_backbone(4) == ("lite", chosen)


def test_without_a_qualifying_network_auto_falls_back_and_says_so(model_dir, monkeypatch):
    card(model_dir, "slow_x16", scale=16, val_rmse=0.5, fps=2.0)
    card(model_dir, "fast_x8", scale=8, val_rmse=0.5, fps=20.0)
    x2, x16 = zoo.auto_choice(2), zoo.auto_choice(16)
    assert (x2.backbone, x2.weights, x2.fallback) == ("bicubic", None, True)
    assert x2.reason == "no trained model for x2: classic fallback bicubic" and x2.passed_over == ()
    assert (x16.backbone, x16.fallback) == ("guided_filter", True)
    assert x16.reason == "no shipped model for x16 qualifies: classic fallback guided_filter"
    assert "2.0 FPS" in x16.passed_over[0]
    monkeypatch.setattr(zoo, "has_torch_weights", lambda: False)  # no torch, no ONNX file beside the weights
    x8 = zoo.auto_choice(8)
    assert x8.fallback and "cannot run here" in x8.passed_over[0]


def test_models_command_shows_the_rule_the_choices_and_the_x2_fallback(model_dir, tmp_path, capsys):
    card(model_dir, "lite_x4", val_rmse=0.7, fps=12.5)
    card(model_dir, "slow_x4", val_rmse=0.6, fps=2.5)
    out = tmp_path / "models.json"
    assert main(["models", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert zoo.AUTO_RULE in printed
    assert "x2   bicubic       (no trained model for x2: classic fallback bicubic)" in printed
    assert "x4   lite          (lite_x4.safetensors: lowest val_rmse" in printed
    assert "passed over: slow_x4.safetensors: 2.5 FPS, under 10" in printed
    document = json.loads(out.read_text())
    assert document["auto"]["2"]["fallback"] and document["auto"]["2"]["weights"] is None
    assert document["auto"]["4"]["weights"] == str(model_dir / "lite_x4.safetensors")
    assert {w["fps"] for w in document["weights"]} == {12.5, 2.5}


def test_the_node_log_says_when_auto_has_no_trained_model(model_dir):
    pipeline = SimpleNamespace(config=SimpleNamespace(backbone="auto"), upsampler=SimpleNamespace(),
                               backbone_name="bicubic", scale=2)
    assert describe_pipeline(pipeline) == ("backbone bicubic x2 on numpy/OpenCV, cpu; auto: no trained model for x2: "
                                           "classic fallback bicubic")
    pipeline.config.backbone = "bicubic"  # chosen by name: nothing to explain
    assert describe_pipeline(pipeline) == "backbone bicubic x2 on numpy/OpenCV, cpu"


def bench_result(path, weights, threads=1, load=(0.5, 1.5), **record):
    """A `depth-sr bench --json` file with one record of `weights` (fields as the bench writes them)."""
    base = {"backbone": "lite", "backend": "onnxruntime", "device": "cpu", "width": 640, "height": 480, "scale": 4,
            "precision": "fp32", "untrained": False, "weights": str(weights), "fps": 12.3, "network_ms": 70.0,
            "overhead_ms": 5.0, "runs": 3, "frames": 20, "machine": "Test CPU (2 cores), no GPU"}
    machine = {"backend_cpu_threads": threads, "onnxruntime": "1.0", "load_average_1min": load[0],
               "load_average_1min_after": load[1], "usable_cores": 2}
    path.write_text(json.dumps({"machine": machine, "command": "depth-sr bench --backbones lite",
                                "records": [{**base, **record}]}))
    return path


def test_bench_fps_is_recorded_in_the_card_with_command_and_machine(model_dir, tmp_path, capsys):
    weights = card(model_dir, "lite_x4", val_rmse=0.7)
    assert zoo.auto_choice(4).fallback  # no FPS figure yet: not auto's pick
    written, passed = record_fps(bench_result(tmp_path / "bench.json", weights))
    assert len(written) == 1 and passed == []
    recorded = read_card(weights)
    assert recorded.metrics[zoo.SPEED_METRIC] == 12.3
    assert "depth-sr bench --backbones lite | Test CPU (2 cores), no GPU" in recorded.notes
    assert zoo.auto_choice(4).weights == weights
    _, passed = record_fps(bench_result(tmp_path / "torch.json", weights, backend="torch", fps=1.0))
    assert passed == ["lite x4 torch: backend torch, not onnxruntime"]
    assert read_card(weights).metrics[zoo.SPEED_METRIC] == 12.3  # unchanged
    for load in ((2.07, 2.39), (0.5, 2.2)):  # a neighbour on the bench's core before it, or joining during it
        _, passed = record_fps(bench_result(tmp_path / "busy.json", weights, load=load, fps=9.8))
        why = (f"the machine was busy (load average {load[0]:g} before, {load[1]:g} after, on 2 usable cores: at "
               "most 1 before and 2 after leave the bench a core): rerun it when it is quiet")
        assert passed == [f"lite x4 onnxruntime: {why}"]
    assert read_card(weights).metrics[zoo.SPEED_METRIC] == 12.3  # a contended figure never replaces a quiet one
    capsys.readouterr()
    assert main(["models", "--record-fps", str(bench_result(tmp_path / "two.json", weights, threads=2))]) == 2
    err = capsys.readouterr()
    assert "2 ONNX Runtime threads, not 1" in err.out and "--record-fps" in err.err and "Traceback" not in err.err
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert main(["models", "--record-fps", str(tmp_path / "junk.json")]) == 2
    assert "is not a `depth-sr bench --json` result" in capsys.readouterr().err
