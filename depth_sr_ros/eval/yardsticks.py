"""What `depth-sr evaluate` sets beside its own figures: peers on the same frames, and published
tables only where they are fair, each labelled for what it is.

- Peers (`peers.py`): a method run on exactly the frames scored here, mean over the same frame list
  per scale, and the ratio of ours to it. Only gdsr with bicubic inputs on a recognised set (what
  the peer runs used).
- Published figures (`splits.py`, `known_sets.json`): means over other frames and other counts
  (405 RGB-D-D test frames, 30 Middlebury scenes), shown without a ratio, and not at all beside a
  model that was trained on test frames of that benchmark or whose card does not say
  (`test_frames.py`).
"""

from __future__ import annotations

from typing import Any

from depth_sr_ros.eval import peers, splits
from depth_sr_ros.eval.test_frames import describe_seen, published_rows

NO_TRAINING = "none (a classic method, not trained)"


def seen_test_frames(backbone: str, scale: int, weights: str | None, classic: bool) -> dict[str, int] | None:
    """The card's `benchmark_test_frames` of the evaluated weights ({} for a classic method)."""
    if classic:
        return {}
    from depth_sr_ros.models.card import read_card
    from depth_sr_ros.models.zoo import find_weights

    path = weights or find_weights(backbone, scale)
    return read_card(path).benchmark_test_frames if path else None


def compare(result: dict[str, Any], selection: dict[str, Any], style: str, seen: dict[str, int] | None,
            classic: bool) -> dict[str, Any]:
    """`peers`, `published`, `published_note` and `test_frames_seen` for an evaluate `result`
    (needs its `protocol`, `degrade`, `scale`, `data` and `frames`)."""
    fair = result["protocol"] == "gdsr" and result["degrade"] == "bicubic" and selection["recognised"]
    out: dict[str, Any] = {"peers": [], "published": [], "published_note": "",
                           "test_frames_seen": NO_TRAINING if classic else describe_seen(seen)}
    if not fair:
        return out
    scores = {f["name"]: {name: m["rmse"] for name, m in f["methods"].items()} for f in result["frames"]}
    found = peers.same_frames(peers.peer_dir(result["data"]), selection["set"], style, result["scale"], scores)
    out["peers"] = [figure.to_json() for figure in found]
    verdict = published_rows(selection["set"], seen, classic)
    if not verdict.show:
        out["published_note"] = verdict.note
        return out
    known = splits.known_sets()[selection["set"]]
    out["published"] = [{"method": p.method, "rmse": p.rmse[result["scale"]], "frames": p.frames}
                        for p in known.published if result["scale"] in p.rmse]
    return out


def print_comparisons(result: dict[str, Any], row: Any) -> None:
    """Peer rows and published rows under the table; `row(label, rmse, bicubic, guided)` prints one
    table row with its gains against the given bicubic and guided-filter figures (None: blank)."""
    backbone, evaluated = result["backbone"], len(result["frames"])
    lines = []
    for peer in result["peers"]:
        ours, count = peer["ours"], len(peer["frames"])
        frames = f"same {count} frames" if count == evaluated else f"{count} of the {evaluated} frames"
        if peer["baseline"]:
            lines.append(f"protocol check on the {frames}: {peer['baseline']} {ours[peer['baseline']]:.4f} here, "
                         f"{peer['rmse']:.4f} in {peers.PEER_DIR}/{peer['source']}")
            continue
        row(f"{peer['method']} (peer, {frames})", peer["rmse"], ours.get("bicubic"), ours.get("guided_filter"))
        lines.append(f"{backbone} / {peer['method']} on the {frames} ({peers.PEER_DIR}/{peer['source']}, "
                     f"{peer['peer_set']}): {ours[backbone]:.4f} / {peer['rmse']:.4f} = "
                     f"{ours[backbone] / peer['rmse']:.3f}")
    for entry in result["published"]:
        row(f"{entry['method']} (published)", entry["rmse"], None, None)
    if result["published"]:
        frames = "; ".join(sorted({e["frames"] for e in result["published"]}))
        lines.append(f"published figures: {frames}, not the {evaluated} frames scored here: other frames and "
                     "other counts, so no gain or ratio is taken against them")
    if result["published_note"]:
        lines.append(f"published figures left out: {result['published_note']}")
    if result["test_frames_seen"] != NO_TRAINING:
        lines.append(f"benchmark test frames {backbone} saw in training: {result['test_frames_seen']}")
    for line in lines:
        print(line)


def peer_metrics(result: dict[str, Any], prefix: str) -> dict[str, float]:
    """Card metrics of the peers on the same frames: `<prefix>_peer_<method>_rmse` and
    `<prefix>_<backbone>_to_<method>_ratio`, for peers that scored every evaluated frame."""
    backbone, added = result["backbone"], {}
    for peer in result["peers"]:
        if peer["baseline"] or len(peer["frames"]) != len(result["frames"]):
            continue
        added[f"{prefix}_peer_{peer['method']}_rmse"] = float(peer["rmse"])
        added[f"{prefix}_{backbone}_to_{peer['method']}_ratio"] = float(peer["ours"][backbone] / peer["rmse"])
    return added


def peer_sources(result: dict[str, Any]) -> str:
    """The peer files of a result for a card's notes line ("" when none)."""
    return "; ".join(sorted({f"{peers.PEER_DIR}/{p['source']} ({p['peer_set']})" for p in result["peers"]}))
