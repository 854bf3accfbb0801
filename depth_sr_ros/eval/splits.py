"""The fixed train / held-out splits of the data sets we recognise, and their published figures.

`known_sets.json` (beside this module) lists, per known set, every frame's name, split and a
fingerprint of its ground-truth file (the first 16 hex digits of the PNG's sha256), the split rule
in words and the published figures of the gdsr protocol:

- `rgbdd_dev` (RGB-D-D test frames, `../shared/data/rgbdd_dev`): the 56 frames captured on
  2020-06-05 are held out (validation and test, never trained on); the 157 of 2020-06-01..04
  are the training split.
- `middlebury`: scenes 15-20 held out, 01-14 train.

A folder is recognised by content, not by name: a frame belongs to a known set when its name and
its ground-truth fingerprint both match. So a copy of the set (or of part of it, such as the
training frames copied for a GPU machine) is recognised wherever it lives, and another set with
the same frame names is not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LOG = logging.getLogger(__name__)
KNOWN_SETS_FILE = Path(__file__).with_name("known_sets.json")
SPLITS = ("train", "heldout")
FINGERPRINT_HEX = 16


@dataclass(frozen=True)
class Published:
    """A published gdsr figure per scale for one method, and the frames it was measured on."""

    method: str
    rmse: dict[int, float]
    frames: str


@dataclass(frozen=True)
class KnownSet:
    """One recognised data set: frame name -> (split, ground-truth fingerprint), published figures."""

    name: str
    description: str
    gdsr_style: str
    rule: str
    units: str
    frames: dict[str, tuple[str, str]]
    published: tuple[Published, ...]

    def names(self, split: str) -> list[str]:
        """The frame names of `split` ("train" or "heldout"), sorted."""
        return sorted(name for name, (which, _) in self.frames.items() if which == split)


@dataclass(frozen=True)
class Recognition:
    """Which frames of a folder belong to a known set, and to which split."""

    known: KnownSet
    split_of: dict[str, str]  # frame name -> "train" | "heldout", for the matching frames only
    unmatched: tuple[str, ...]  # frames of the folder that are not frames of the known set

    def names(self, split: str) -> list[str]:
        return sorted(name for name, which in self.split_of.items() if which == split)


@cache
def known_sets() -> dict[str, KnownSet]:
    """The known sets of `known_sets.json`."""
    raw = json.loads(KNOWN_SETS_FILE.read_text(encoding="utf-8"))
    return {
        name: KnownSet(
            name=name,
            description=entry["description"],
            gdsr_style=entry["gdsr_style"],
            rule=entry["rule"],
            units=entry["units"],
            frames={frame: (split, digest) for frame, (split, digest) in entry["frames"].items()},
            published=tuple(Published(p["method"], {int(s): float(v) for s, v in p["rmse"].items()}, p["frames"])
                            for p in entry["published"]),
        )
        for name, entry in raw.items()
    }


def fingerprint(path: str | Path) -> str:
    """First `FINGERPRINT_HEX` hex digits of the file's sha256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:FINGERPRINT_HEX]


def recognise(depth_files: dict[str, Path], gdsr_style: str) -> Recognition | None:
    """The known set (of the same gdsr style) that the most of these frames belong to by name and
    ground-truth fingerprint, or None when no frame matches. `depth_files`: name -> depth PNG."""
    best: Recognition | None = None
    for known in known_sets().values():
        if known.gdsr_style != gdsr_style or not set(depth_files) & set(known.frames):
            continue
        split_of = {name: known.frames[name][0] for name, path in depth_files.items()
                    if name in known.frames and fingerprint(path) == known.frames[name][1]}
        if split_of and (best is None or len(split_of) > len(best.split_of)):
            unmatched = tuple(sorted(set(depth_files) - set(split_of)))
            best = Recognition(known, split_of, unmatched)
    return best


def select(names: Sequence[str], recognition: Recognition | None, split: str) -> list[str]:
    """The frames of `names` in `split` ("train", "heldout" or "all"); a split other than "all"
    needs a recognised set (ValueError otherwise)."""
    if split == "all":
        return list(names)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use train, heldout or all")
    if recognition is None:
        raise ValueError(f"split {split!r} needs a recognised data set ({', '.join(known_sets())}); "
                         "this folder is none of them: use --split all")
    return [name for name in names if recognition.split_of.get(name) == split]
