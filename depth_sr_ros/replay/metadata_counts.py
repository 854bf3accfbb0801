"""How many messages each input topic holds, and metadata that disagrees with the data: a notice.

A rosbag2's metadata.yaml declares a message count per topic, but the storage files are what
holds the messages. Replay counts against the storage (`BagReader.stored_counts`: MCAP summary
statistics, sqlite3 rows, a ROS 1 bag's index) wherever it can say, so a metadata.yaml that
over- or under-states a count (edited, stale, or from an interrupted recording) is a
`metadata_count_mismatch` notice (one log line, counted per topic in metrics.json `notices`),
never messages "unreadable" that never existed.

Unreadable messages are only what damaged storage kept from being read: the difference between
what the storage holds and what was read, when a storage error was met. Without damage, reading
fewer messages than only the metadata declares (storage that cannot count: an MCAP file without
a summary) is the metadata's over-statement, again a notice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from depth_sr_ros.replay.bag_io import BagReader
from depth_sr_ros.replay.ledger import MessageLedger

LOG = logging.getLogger(__name__)

NOTICE = "metadata_count_mismatch"


def held_counts(reader: BagReader, topics: Iterable[str], notices: Counter[str]) -> dict[str, int]:
    """topic -> messages held: the storage's count where it has one, else the declared count.
    Topics whose declared count differs from the storage's are counted in `notices` and logged once."""
    declared = reader.topics()
    stored = reader.stored_counts()
    held: dict[str, int] = {}
    disagreements = []
    for topic in sorted(topics):
        claimed = declared[topic][1]
        held[topic] = claimed if stored is None else stored.get(topic, 0)
        if held[topic] != claimed:
            disagreements.append(f"{topic}: {claimed} declared, {held[topic]} stored")
    if disagreements:
        notices[NOTICE] += len(disagreements)
        LOG.warning("the bag's metadata disagrees with its data on message counts (%s); the data's counts are used",
                    "; ".join(disagreements))
    return held


def settle_counts(ledger: MessageLedger, stopped: bool, storage_damaged: bool, notices: Counter[str]) -> None:
    """After the reading: enter what was held but not read as `not_read` (reading stopped at
    max_frames) or `unreadable` (storage damage was met); otherwise a shortfall or an excess
    against the held count is the metadata's error: a notice, and `held` becomes what was read."""
    disagreements = []
    for topic, held in ledger.held.items():
        read = ledger.read[topic]
        if stopped:
            ledger.not_read[topic] = max(0, held - read)
        elif storage_damaged and read <= held:
            ledger.unreadable[topic] = held - read
        elif read != held:
            disagreements.append(f"{topic}: {held} counted, {read} read")
            ledger.held[topic] = read
        if stopped and read > held:
            disagreements.append(f"{topic}: {held} counted, {read} read")
            ledger.held[topic] = read
    if disagreements:
        notices[NOTICE] += len(disagreements)
        LOG.warning("the bag's message counts disagree with what it holds (%s); what was read is counted",
                    "; ".join(disagreements))
