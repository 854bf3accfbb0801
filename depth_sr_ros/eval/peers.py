"""Peers scored on the same frames: `peer_reference/*.json` beside the data folders.

A peer reference file (`../shared/data/peer_reference/dctnet.json`) holds another method run with
its own code and weights on frames of our data sets, gdsr protocol with bicubic inputs, per image:

    {"about": "...", "sets": {"<set> <words>": {"unit": "cm, ...",
        "scales": {"4": {"<method>": {"rmse": mean, "per_image": {"<frame>": rmse, ...}}}}}}}

A set's key starts with the name of the known set it covers (`rgbdd_dev heldout (...)`,
`middlebury 01-20`). `same_frames` gives, for the frames one `depth-sr evaluate` run scored, each
peer's mean RMSE over exactly those frames and ours over the same ones, so the ratio compares like
with like; published tables average over other frames and other counts. The peer file's own
`bicubic` and `guided` rows are the baselines it ran beside the peer: they check that both runs
followed the same protocol (our bicubic on the same frames should match theirs).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

PEER_DIR = "peer_reference"
# The peer file's baseline rows and the methods of ours that they are.
PEER_BASELINES = {"bicubic": "bicubic", "guided": "guided_filter"}
# A word the peer set's `unit` must hold for each gdsr style (units must agree to compare).
STYLE_UNIT = {"rgbdd": "cm", "nyu": "cm", "middlebury": "0-255"}


@dataclass(frozen=True)
class PeerFigure:
    """One peer method on the frames both runs scored.

    method: the peer file's method key ("dctnet"); source: the peer file; peer_set: its set key;
    frames: the frames both scored (sorted); evaluated: how many frames our run scored; rmse: the
    peer's mean per-image RMSE over `frames`; ours: our methods' mean RMSE over the same `frames`
    (units of the gdsr style); baseline: our method that the peer row is a run of (bicubic, guided
    filter), "" for a peer proper."""

    method: str
    source: str
    peer_set: str
    frames: tuple[str, ...]
    evaluated: int
    rmse: float
    ours: dict[str, float]
    baseline: str = ""

    def ratio(self, method: str) -> float:
        """Our `method` over the peer on the same frames (below 1: ours is better)."""
        return self.ours[method] / self.rmse

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "source": self.source, "peer_set": self.peer_set, "frames": list(self.frames),
                "evaluated": self.evaluated, "rmse": self.rmse, "ours": self.ours, "baseline": self.baseline}


def peer_dir(data: str | Path) -> Path:
    """Where the peer reference files of a data folder live: `peer_reference/` beside it."""
    return Path(data).resolve().parent / PEER_DIR


def _read(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        sets = document["sets"]
        if not isinstance(sets, dict):
            raise TypeError("'sets' is not an object")
        return sets
    except (OSError, ValueError, KeyError, TypeError) as err:
        LOG.warning("skipping peer reference %s: %s", path, err)
        return None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def same_frames(directory: Path, set_name: str, style: str, scale: int,
                ours_per_frame: dict[str, dict[str, float]]) -> list[PeerFigure]:
    """Every peer method of the files in `directory` that scored frames of `set_name` at `scale`
    among ours, with the peer's and our means over the frames both scored.

    ours_per_frame: frame name -> our method -> RMSE (gdsr, bicubic inputs, units of `style`)."""
    if not directory.is_dir():
        return []
    figures = []
    for path in sorted(directory.glob("*.json")):
        sets = _read(path)
        for key, entry in (sets or {}).items():
            if key.split()[0] != set_name or not isinstance(entry, dict):
                continue
            if STYLE_UNIT.get(style, "?") not in str(entry.get("unit", "")):
                LOG.warning("skipping %s of %s: unit %r does not fit the %s style", key, path, entry.get("unit"),
                            style)
                continue
            for method, scored in (entry.get("scales", {}).get(str(scale)) or {}).items():
                per_image = scored.get("per_image", {}) if isinstance(scored, dict) else {}
                shared = tuple(sorted(set(per_image) & set(ours_per_frame)))
                if not shared:
                    continue
                ours = {name: _mean([ours_per_frame[f][name] for f in shared]) for name in ours_per_frame[shared[0]]}
                figures.append(PeerFigure(method, path.name, key, shared, len(ours_per_frame),
                                          _mean([float(per_image[f]) for f in shared]), ours,
                                          PEER_BASELINES.get(method, "")))
    return figures
