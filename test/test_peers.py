"""Honest yardsticks: peers on exactly the frames scored (peer_reference), published tables only
labelled and only beside models that never saw that benchmark's test frames."""

from __future__ import annotations

import json

import pytest

from depth_sr_ros.cli import main
from depth_sr_ros.eval.peers import same_frames
from depth_sr_ros.eval.test_frames import describe_seen, published_rows
from depth_sr_ros.eval.yardsticks import peer_metrics


def write_peer(directory, name="peer.json", unit="cm, no crop"):
    directory.mkdir(exist_ok=True)
    per_image = {"a": 1.0, "b": 2.0, "c": 6.0}
    (directory / name).write_text(json.dumps({"sets": {"toy heldout (3 frames)": {"unit": unit, "scales": {
        "4": {"dctnet": {"rmse": 3.0, "per_image": per_image},
              "bicubic": {"rmse": 9.0, "per_image": {k: 3 * v for k, v in per_image.items()}}}}}}}))
    return directory


def test_the_peer_figure_is_its_mean_over_exactly_the_frames_scored_here(tmp_path):
    peers_dir = write_peer(tmp_path / "peer_reference")
    ours = {"a": {"lite": 0.5, "bicubic": 3.0}, "b": {"lite": 1.5, "bicubic": 6.0}, "z": {"lite": 9.0, "bicubic": 9.0}}
    figures = {f.method: f for f in same_frames(peers_dir, "toy", "rgbdd", 4, ours)}
    dctnet = figures["dctnet"]
    assert dctnet.frames == ("a", "b") and dctnet.evaluated == 3  # z: not in the peer file
    assert dctnet.rmse == pytest.approx(1.5)  # (1 + 2) / 2, not the file's mean over a, b, c (3.0)
    assert dctnet.ours == {"lite": pytest.approx(1.0), "bicubic": pytest.approx(4.5)}  # ours on a, b only
    assert dctnet.ratio("lite") == pytest.approx(1.0 / 1.5) and dctnet.baseline == ""
    assert figures["bicubic"].baseline == "bicubic" and figures["bicubic"].rmse == pytest.approx(4.5)
    assert same_frames(peers_dir, "toy", "rgbdd", 8, ours) == []  # no x8 in the file
    assert same_frames(peers_dir, "other", "rgbdd", 4, ours) == []  # another set
    assert same_frames(peers_dir, "toy", "middlebury", 4, ours) == []  # cm figures are no 0-255 figures
    (peers_dir / "broken.json").write_text("{not json")
    assert len(same_frames(peers_dir, "toy", "rgbdd", 4, ours)) == 2  # a bad file is logged and skipped


def test_card_metrics_take_only_peers_that_scored_every_frame():
    full = {"method": "dctnet", "baseline": "", "frames": ["a", "b"], "rmse": 2.0, "ours": {"lite": 1.5},
            "source": "p.json", "peer_set": "toy"}
    partial = {**full, "method": "other", "frames": ["a"]}
    check = {**full, "method": "bicubic", "baseline": "bicubic"}
    result = {"backbone": "lite", "frames": [{}, {}], "peers": [full, partial, check]}
    assert peer_metrics(result, "gdsr_bicubic_toy_heldout") == {
        "gdsr_bicubic_toy_heldout_peer_dctnet_rmse": 2.0, "gdsr_bicubic_toy_heldout_lite_to_dctnet_ratio": 0.75}


def test_published_test_set_figures_stand_only_beside_models_that_never_saw_its_frames():
    assert published_rows("rgbdd_dev", {}, classic=True).show
    assert published_rows("rgbdd_dev", {"middlebury": 14}, classic=False).show
    seen = published_rows("rgbdd_dev", {"rgbdd_dev": 157, "nyu_test": 3}, classic=False)
    assert not seen.show and "157 frames of the RGB-D-D test set" in seen.note
    unknown = published_rows("middlebury", None, classic=False)
    assert not unknown.show and "does not record" in unknown.note
    assert describe_seen({"rgbdd_dev": 157, "nyu_test": 0}) == "157 of the RGB-D-D test set (rgbdd_dev)"
    assert describe_seen({}) == "none" and describe_seen(None) == "not recorded in the card"


@pytest.mark.parametrize(("folder", "peer", "bicubic"), [("middlebury", 1.1492, 2.4760), ("rgbdd_dev", 0.8026, 1.3258)])
def test_evaluate_sets_dctnet_on_the_same_held_out_frames_beside_ours(shared_data, tmp_path, capsys, folder, peer,
                                                                      bicubic):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--data", str(shared_data / folder), "--scale", "4", "--backbone", "bicubic",
                 "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    peers = {p["method"]: p for p in result["peers"]}
    assert peers["dctnet"]["frames"] == result["scenes"]  # every held-out frame, and only those
    assert peers["dctnet"]["rmse"] == pytest.approx(peer, abs=1e-4)  # issue 21: 1.149 on Middlebury 15-20
    assert peers["bicubic"]["rmse"] == pytest.approx(result["methods"]["bicubic"]["rmse"], abs=1e-3) == bicubic
    printed = capsys.readouterr().out
    count = len(result["scenes"])
    assert f"dctnet (peer, same {count} frames)" in printed and f"protocol check on the same {count} frames" in printed
    assert f"not the {count} frames scored here: other frames and other counts" in printed  # published: labelled
