"""Replay's accounting: every message of the requested topics is processed or skipped with a reason.

`MessageLedger` counts per topic; `AuxStream` holds a bounded window of a CameraInfo or
ground-truth stream for lookups and enters each message in the ledger when it leaves the window.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.sync import match_camera_info


class MessageLedger:
    """Per topic: messages read, processed, skipped by reason, and unreadable.

    read == processed + skipped (`balanced`), and read + unreadable + not_read == what the bag
    holds (`complete`): `held` is the bag's own message count for the topic, `unreadable` what
    damaged storage kept from being read, `not_read` what was left unread after `max_frames`.
    """

    def __init__(self) -> None:
        self.read: Counter[str] = Counter()
        self.processed: Counter[str] = Counter()
        self.skipped: dict[str, Counter[str]] = defaultdict(Counter)
        self.held: Counter[str] = Counter()
        self.unreadable: Counter[str] = Counter()
        self.not_read: Counter[str] = Counter()

    def skip(self, topic: str, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[topic][reason] += n

    def balanced(self) -> bool:
        return all(self.read[t] == self.processed[t] + sum(self.skipped[t].values()) for t in self.read)

    def complete(self) -> bool:
        return all(self.read[t] + self.unreadable[t] + self.not_read[t] == self.held[t] for t in self.held)

    def skip_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for reasons in self.skipped.values():
            totals.update(reasons)
        return dict(totals)

    def as_dict(self) -> dict[str, Any]:
        return {t: {"read": self.read[t], "processed": self.processed[t], "skipped": dict(self.skipped[t]),
                    "unreadable": self.unreadable[t], "not_read": self.not_read[t], "in_bag": self.held[t]}
                for t in sorted(set(self.read) | set(self.held))}



class AuxStream:
    """A CameraInfo or ground-truth stream: recent messages (bounded) and which ones were used.

    A message leaving the window can no longer be looked up, so it is entered in the ledger
    then (processed, skipped with the reason of the frames it went with, or `unused_reason`):
    memory stays bounded however long the bag.
    """

    def __init__(self, topic: str, keep: int, ledger: MessageLedger, unused_reason: str) -> None:
        self.topic = topic
        self.keep = keep
        self.ledger = ledger
        self.unused_reason = unused_reason
        self.items: list[tuple[int, int, Any]] = []  # (stamp ns, index, message)
        self.latest_stamp = -1
        self.decoded = 0
        self.used_ok: set[int] = set()  # indices of items in the window
        self.failed: dict[int, str] = {}  # index -> reason, for messages only attached to skipped frames

    def add(self, stamp_ns: int, message: Any) -> None:
        self.items.append((stamp_ns, self.decoded, message))
        self.decoded += 1
        self.latest_stamp = max(self.latest_stamp, stamp_ns)
        while len(self.items) > self.keep:
            self._settle_one(self.items.pop(0)[1])

    def camera_info_for(self, stamp_ns: int) -> tuple[int, Any] | None:
        match = match_camera_info([stamp_ns], [s for s, _, _ in self.items])[0]
        return None if match is None else self.items[match][1:]

    def nearest(self, stamp_ns: int, slop_ns: int) -> tuple[int, Any] | None:
        """The message with `stamp_ns`, else the nearest one within `slop_ns`, else None.

        Raises FrameError("ambiguous_ground_truth") when several are equally near (two messages
        with the pair's stamp, or one either side at the same distance): picking one would score
        the frame against a guess.
        """
        near = [item for item in self.items if abs(item[0] - stamp_ns) < max(slop_ns, 1)]
        if not near:
            return None
        distance = min(abs(item[0] - stamp_ns) for item in near)
        best = [item for item in near if abs(item[0] - stamp_ns) == distance]
        if len(best) > 1:
            for _, index, _ in best:
                self.failed.setdefault(index, "ambiguous_ground_truth")
            raise FrameError("ambiguous_ground_truth", f"{len(best)} ground-truth messages on {self.topic} are "
                             f"{distance / 1e6:.3f} ms from the stamp {stamp_ns}: cannot tell which is this frame's")
        return best[0][1:]

    def _settle_one(self, index: int) -> None:
        reason = self.failed.pop(index, None)
        if index in self.used_ok:
            self.used_ok.discard(index)
            self.ledger.processed[self.topic] += 1
        else:
            self.ledger.skip(self.topic, reason or self.unused_reason)

    def settle(self) -> None:
        """Enter the messages still in the window in the ledger (at the end of the bag)."""
        for _, index, _ in self.items:
            self._settle_one(index)
        self.items = []
