"""Which benchmark test frames a model saw in training, and what that rules out.

Some of the data in `../shared/data` are test frames of published benchmarks (data README):
`rgbdd_dev`'s 213 frames are RGB-D-D test frames, `nyu_test`'s 3 are NYU v2 test frames, and the
20 `middlebury` scenes are among the 30 scenes of the Middlebury benchmark, a test set only (the
literature trains on NYU v2). A model card's `benchmark_test_frames` counts the frames of each it
was trained on. Published test-set figures are for models that never saw those frames, so a
model that saw some of them is not set beside that benchmark's published table (`published_rows`);
it is compared with peers on the same held-out frames instead (`peers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

# data folder / known set -> the benchmark whose test frames it holds
BENCHMARK_TEST_SETS = {
    "rgbdd_dev": "RGB-D-D test set",
    "nyu_test": "NYU v2 test set",
    "middlebury": "Middlebury benchmark scenes",
}


@dataclass(frozen=True)
class PublishedVerdict:
    """Whether a benchmark's published figures may stand beside a method, and the reason in words."""

    show: bool
    note: str


def describe_seen(frames: dict[str, int] | None) -> str:
    """`benchmark_test_frames` of a card in words, e.g. "157 of the RGB-D-D test set (rgbdd_dev)"."""
    if frames is None:
        return "not recorded in the card"
    seen = [f"{count} of the {BENCHMARK_TEST_SETS.get(name, name)} ({name})" for name, count in frames.items() if count]
    return "; ".join(seen) or "none"


def published_rows(set_name: str, seen: dict[str, int] | None, classic: bool) -> PublishedVerdict:
    """May the published test-set figures of `set_name` stand beside this method?

    classic: a method without training (bicubic, guided filter); seen: its card's
    `benchmark_test_frames` (None: the card does not say)."""
    benchmark = BENCHMARK_TEST_SETS.get(set_name, set_name)
    if classic:
        return PublishedVerdict(True, "")
    if seen is None:
        return PublishedVerdict(False, f"the model card does not record which benchmark test frames it was trained on, "
                                       f"so the published {benchmark} figures are not set beside it")
    if seen.get(set_name, 0):
        return PublishedVerdict(False, f"the model was trained on {seen[set_name]} frames of the {benchmark} "
                                       f"({set_name}); the published figures are test-set figures of models that never "
                                       "saw them, so they are not set beside it")
    return PublishedVerdict(True, "")
