"""Pair RGB and depth messages by header stamp, the way the node's synchroniser would.

`StampSync` replays message_filters' Python `ApproximateTimeSynchronizer` (and, with
`exact=True`, its `TimeSynchronizer`) for two streams, "rgb" and "depth", fed in arrival order.
For an offline bag the arrival order is the record (log-time) order. The policy is the one of
ros2/message_filters `__init__.py`:

- each stream keeps a queue keyed by stamp; a message whose stamp is already queued replaces the
  queued one; a queue longer than `queue_size` drops its oldest stamp (which may be the message
  that just arrived, when it is out of order);
- approximate: on arrival, the queued messages of the other stream within `slop` of the new stamp
  are sorted by distance and the nearest one is taken if the distance is strictly below `slop`;
  both leave their queues. Exact: equal stamps pair.

Differences from the live synchroniser, all deliberate:

- Arrival order is the bag's record order. A live node also sees executor scheduling and QoS
  drops, so near the margins (distance close to `slop`, queues close to full) it can pair
  differently.
- message_filters drops messages silently; here every message that does not pair gets a
  reason (`UNPAIRED_REASONS`), resolved once the whole stream is known.
- The C++ `sync_policies::ApproximateTime` (used by depth_image_proc) is another algorithm: it
  has no slop, waits until no better set can arrive, and weighs age and inter-message bounds.
  It can pick a different partner than the greedy Python policy reproduced here.

`match_camera_info` pairs CameraInfo messages with images: the info with the image's stamp,
else the latest one stamped before it. Stamps are integer nanoseconds throughout.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

STREAMS = ("rgb", "depth")

UNPAIRED_REASONS = {
    "no_match_within_slop": "no message on the other stream lies within slop of this stamp",
    "queue_overflow": "dropped as the oldest stamp of a full queue before a partner arrived",
    "duplicate_stamp": "a later message on the same stream carried the same stamp and replaced it",
    "partner_taken": "every message within slop was paired with a nearer message or dropped first",
}


@dataclass(frozen=True)
class Queued:
    """One message in a sync queue: the caller's `key` and `payload`, and its header stamp (ns)."""

    key: Any
    stamp_ns: int
    payload: Any = None


@dataclass(frozen=True)
class Pair:
    rgb: Queued
    depth: Queued


@dataclass(frozen=True)
class Unpaired:
    stream: str
    key: Any
    stamp_ns: int
    reason: str


@dataclass
class SyncResult:
    pairs: list[Pair]
    unpaired: list[Unpaired]

    def skip_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.unpaired:
            counts[item.reason] = counts.get(item.reason, 0) + 1
        return counts


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * 1e9)


class StampSync:
    """Online two-stream synchroniser; `add` returns the pairs the new message completes."""

    def __init__(self, queue_size: int = 10, slop_s: float = 0.05, exact: bool = False) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not exact and slop_s <= 0:
            raise ValueError(f"slop must be > 0 seconds, got {slop_s}")
        self.queue_size = queue_size
        self.slop_ns = 0 if exact else seconds_to_ns(slop_s)
        self.exact = exact
        self._queues: dict[str, dict[int, Queued]] = {name: {} for name in STREAMS}
        self._stamps: dict[str, list[int]] = {name: [] for name in STREAMS}
        self._dropped: list[tuple[str, Queued, str]] = []

    def add(self, stream: str, stamp_ns: int, key: Any, payload: Any = None) -> list[Pair]:
        if stream not in self._queues:
            raise ValueError(f"unknown stream {stream!r}; expected one of {STREAMS}")
        item = Queued(key, int(stamp_ns), payload)
        self._stamps[stream].append(item.stamp_ns)
        queue = self._queues[stream]
        if item.stamp_ns in queue:
            self._dropped.append((stream, queue[item.stamp_ns], "duplicate_stamp"))
        queue[item.stamp_ns] = item
        while len(queue) > self.queue_size:
            self._dropped.append((stream, queue.pop(min(queue)), "queue_overflow"))
        if item.stamp_ns not in queue or queue[item.stamp_ns] is not item:
            return []
        other_name = STREAMS[1 - STREAMS.index(stream)]
        partner = self._partner(item.stamp_ns, self._queues[other_name])
        if partner is None:
            return []
        del queue[item.stamp_ns]
        del self._queues[other_name][partner.stamp_ns]
        return [Pair(item, partner) if stream == "rgb" else Pair(partner, item)]

    def _partner(self, stamp_ns: int, other: dict[int, Queued]) -> Queued | None:
        if self.exact:
            return other.get(stamp_ns)
        near = [(abs(s - stamp_ns), q) for s, q in other.items() if abs(s - stamp_ns) <= self.slop_ns]
        near.sort(key=lambda entry: entry[0])  # stable: ties keep queue order, as message_filters
        if near and near[0][0] < self.slop_ns:
            return near[0][1]
        return None

    def finish(self) -> list[Unpaired]:
        """Everything that never paired (dropped or still queued), each with its reason."""
        leftovers = [(name, q, "") for name in STREAMS for q in self._queues[name].values()]
        for queue in self._queues.values():
            queue.clear()
        sorted_stamps = {name: sorted(stamps) for name, stamps in self._stamps.items()}
        unpaired = []
        for stream, item, cause in self._dropped + leftovers:
            other = sorted_stamps[STREAMS[1 - STREAMS.index(stream)]]
            if cause != "duplicate_stamp" and not self._has_candidate(item.stamp_ns, other):
                cause = "no_match_within_slop"
            unpaired.append(Unpaired(stream, item.key, item.stamp_ns, cause or "partner_taken"))
        self._dropped = []
        return unpaired

    def _has_candidate(self, stamp_ns: int, sorted_other: list[int]) -> bool:
        """Whether any stamp of the other stream could pair with `stamp_ns` (|d| < slop, or equal)."""
        lowest = stamp_ns - max(self.slop_ns - 1, 0)
        i = bisect.bisect_left(sorted_other, lowest)
        return i < len(sorted_other) and sorted_other[i] < stamp_ns + max(self.slop_ns, 1)

def pair_stamps(
    arrivals: Iterable[tuple[str, int, Any]], queue_size: int = 10, slop_s: float = 0.05, exact: bool = False
) -> SyncResult:
    """Batch form of `StampSync`: `arrivals` are (stream, stamp_ns, key) in arrival order."""
    sync = StampSync(queue_size, slop_s, exact)
    pairs = [pair for stream, stamp, key in arrivals for pair in sync.add(stream, stamp, key)]
    return SyncResult(pairs, sync.finish())


def frame_period_ns(stamps: Iterable[int]) -> int | None:
    """The observed frame period of a stream: the median step between its distinct stamps (ns),
    or None with fewer than two distinct stamps."""
    ordered = sorted(set(stamps))
    steps = [b - a for a, b in pairwise(ordered)]
    return int(sorted(steps)[len(steps) // 2]) if steps else None


def nearest_distances_ns(stamps: Iterable[int], others: Sequence[int]) -> list[int]:
    """For each stamp, the distance (ns) to the nearest of `others` (empty when `others` is)."""
    ordered = sorted(others)
    if not ordered:
        return []
    distances = []
    for stamp in stamps:
        i = bisect.bisect_left(ordered, stamp)
        distances.append(min(abs(ordered[j] - stamp) for j in (i - 1, i) if 0 <= j < len(ordered)))
    return distances


def match_camera_info(image_stamps: Sequence[int], info_stamps: Sequence[int]) -> list[int | None]:
    """Index of the CameraInfo for each image: equal stamp, else the latest earlier one, else None.

    Among infos with the same stamp the last one received wins.
    """
    order = sorted(range(len(info_stamps)), key=lambda i: (info_stamps[i], i))
    keys = [info_stamps[i] for i in order]
    matches: list[int | None] = []
    for stamp in image_stamps:
        j = bisect.bisect_right(keys, stamp)
        matches.append(order[j - 1] if j else None)
    return matches
