"""Recordings read and rosbag2 written with `rosbags` (no ROS needed): rosbag2 (sqlite3 and MCAP,
Humble and Jazzy) and ROS 1 `.bag` files (RealSense SDK and Viewer recordings among them).

Reading goes through `rosbags.highlevel.AnyReader`, which uses the message definitions a bag
embeds (MCAP, Jazzy sqlite3) and falls back to the typestore given here (Humble sqlite3 bags
carry none). A record that cannot be deserialised is yielded with `message=None` and the
error text, so the caller counts it as a "corrupt_record" skip and reads on.

Damaged storage (an MCAP chunk with a bad checksum, an unreadable sqlite3 page) does not end
the reading: the error is kept in `BagReader.storage_errors` and reading starts again at the
next point after the damage where it can (the next MCAP chunk; the next sqlite3 row, whose
stamps are read without their data). What could not be read is the difference between the
message counts the storage holds per topic (`stored_counts()`) and the records yielded.

A rosbag2's metadata.yaml declares its own per-topic counts (`topics()`); where they disagree
with what the storage files hold (an edited or stale metadata.yaml), the storage is right and
the difference is a notice, not messages that could not be read (`count_disagreements()`).
ROS 1 bags have no separate metadata: their counts come from the bag's own index.

ROS 1 messages keep their ROS 1 field names (`CameraInfo.K`); readers go through
`core.fields`. Message types are named the ROS 2 way (`sensor_msgs/msg/Image`) for both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.errors import UsageError

if TYPE_CHECKING:  # typing.Self is Python 3.11+; Humble runs 3.10
    from typing_extensions import Self

LOG = logging.getLogger(__name__)

TYPESTORES = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
STORAGE_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(UsageError):
    """The bag cannot be used at all: it does not open, or a required topic is missing."""


def load_typestore(name: str) -> Any:
    """The rosbags typestore for a ROS 2 distribution name ("humble" or "jazzy")."""
    try:
        return get_typestore(TYPESTORES[name])
    except KeyError:
        raise ValueError(f"unknown typestore {name!r}; choose from {sorted(TYPESTORES)}") from None


@dataclass(frozen=True)
class BagRecord:
    """One record: its topic, log (receive) time in ns, and the message, or None and `error`."""

    topic: str
    log_time_ns: int
    message: Any
    error: str = ""


class BagReader:
    """Context manager over one recording: a rosbag2 bag (a directory, or a single .mcap/.db3
    file) or a ROS 1 `.bag` file. `typestore` gives the definitions of rosbag2 bags that embed
    none; ROS 1 bags always carry theirs."""

    def __init__(self, path: str | Path, typestore: str = "humble") -> None:
        self.path = Path(path)
        self.typestore_name = typestore
        self._reader: AnyReader | None = None
        self.storage_errors: list[str] = []  # one entry per storage failure met by `records`

    def __enter__(self) -> Self:
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        try:
            self._reader = AnyReader([self.path], default_typestore=load_typestore(self.typestore_name))
            self._reader.open()
        except Exception as err:  # rosbags raises several unrelated types for unreadable bags
            self._reader = None
            raise BagError(f"cannot open bag {self.path}: {err}") from err
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def reader(self) -> AnyReader:
        if self._reader is None:
            raise BagError("bag is not open; use BagReader as a context manager")
        return self._reader

    def topics(self) -> dict[str, tuple[str, int]]:
        """topic -> (message type, message count)."""
        return {name: (info.msgtype or "?", info.msgcount) for name, info in self.reader.topics.items()}

    def stored_counts(self) -> dict[str, int] | None:
        """topic -> messages the storage itself holds (MCAP summary statistics, sqlite3 rows, a ROS 1
        bag's index); None when a storage cannot say (an MCAP file without a summary, a damaged
        sqlite3 database), in which case the declared counts are all there is."""
        counts: dict[str, int] = {}
        for bag in getattr(self.reader, "readers", ()):
            opened = getattr(bag, "storage", None)
            if opened is None:  # a ROS 1 bag: its connection index is the storage's own count
                for connection in getattr(bag, "connections", ()):
                    counts[connection.topic] = counts.get(connection.topic, 0) + int(connection.msgcount)
                continue
            for storage in getattr(opened, "storages", None) or [opened]:
                found = _storage_counts(storage)
                if found is None:
                    return None
                for topic, n in found.items():
                    counts[topic] = counts.get(topic, 0) + n
        return counts

    def count_disagreements(self) -> dict[str, tuple[int, int]]:
        """topic -> (declared in metadata.yaml, held by the storage) where the two differ."""
        stored = self.stored_counts()
        if stored is None:
            return {}
        return {topic: (declared, stored.get(topic, 0)) for topic, (_, declared) in self.topics().items()
                if declared != stored.get(topic, 0)}

    def describe_topics(self) -> str:
        """The recording's topics as a table, one topic a line: name, type, message count."""
        topics = sorted(self.topics().items())
        if not topics:
            return "  (no topics)"
        width = max(len(name) for name, _ in topics)
        return "\n".join(f"  {name:<{width}}  {msgtype:<34}{count:>8}" for name, (msgtype, count) in topics)

    def require(self, topics: Mapping[str, str], msgtypes: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """Raise `BagError` naming every role whose topic is absent (or not of one of its types)."""
        present = self.topics()
        problems = []
        for role, topic in topics.items():
            if topic not in present:
                problems.append(f"{role} topic {topic!r} is not in the bag")
            elif msgtypes and role in msgtypes and present[topic][0] not in msgtypes[role]:
                problems.append(f"{role} topic {topic!r} is {present[topic][0]}, expected {' or '.join(msgtypes[role])}")
        if problems:
            raise BagError(f"{self.path}: " + "; ".join(problems) + ". Topics in the bag (give the flag of "
                           f"each missing topic):\n{self.describe_topics()}")

    def records(self, topics: Iterable[str]) -> Iterator[BagRecord]:
        """Records of `topics` in log-time order; undecodable ones carry `message=None`.

        A storage-level failure (damaged file) is logged and kept in `storage_errors`, and reading
        goes on from the next resume point after the last record read (`_resume_points`); the
        messages skipped over are missing from what is yielded, so the caller counts them as
        unreadable against `topics()`.
        """
        wanted = set(topics)
        connections = [c for c in self.reader.connections if c.topic in wanted]
        if not connections:
            return
        start: int | None = None
        last_time: int | None = None
        resume: list[int] | None = None
        while True:
            try:
                for connection, timestamp, rawdata in self.reader.messages(connections=connections, start=start):
                    last_time = timestamp
                    yield self._decode(connection, timestamp, rawdata)
                return
            except Exception as err:  # noqa: BLE001 - rosbags and its storage raise many types for damage
                floor = max(t for t in (last_time, start, -1) if t is not None)
                resume = self._resume_points() if resume is None else resume
                start = next((point for point in resume if point > floor), None)
                self.storage_errors.append(f"{type(err).__name__}: {err}")
                where = f"going on at log time {start}" if start is not None else "nothing readable after it"
                LOG.error("bag %s: storage read failed after log time %s (%s); %s", self.path, last_time, err, where)
                if start is None:
                    return

    def _decode(self, connection: Any, timestamp: int, rawdata: bytes) -> BagRecord:
        try:
            message = self.reader.deserialize(rawdata, connection.msgtype)
        except Exception as err:  # noqa: BLE001 - garbage CDR raises SerdeError, IndexError, ...
            return BagRecord(connection.topic, timestamp, None, f"{type(err).__name__}: {err}")
        return BagRecord(connection.topic, timestamp, message)

    def _resume_points(self) -> list[int]:
        """Sorted log times where reading can start again after damage: the start of every MCAP
        chunk, the stamp of every sqlite3 row (the stamp index is read without the data)."""
        points: set[int] = set()
        for bag in getattr(self.reader, "readers", ()):
            opened = getattr(bag, "storage", None)  # a directory reader (its files) or one storage file
            for storage in getattr(opened, "storages", None) or [opened]:
                chunks = getattr(storage, "chunks", None)
                if chunks:
                    points.update(int(chunk.message_start_time) for chunk in chunks)
                elif getattr(storage, "dbconn", None) is not None:
                    try:
                        rows = storage.dbconn.execute("SELECT DISTINCT timestamp FROM messages")
                        points.update(int(row[0]) for row in rows)
                    except Exception as err:  # noqa: BLE001 - the stamp index itself may be damaged
                        LOG.warning("bag %s: cannot read the message stamps to resume after damage: %s",
                                    self.path, err)
        return sorted(points)


def _storage_counts(storage: Any) -> dict[str, int] | None:
    """Per-topic message counts of one rosbag2 storage file, or None when it cannot say."""
    statistics = getattr(storage, "statistics", None)
    channels = getattr(storage, "channels", None)
    if statistics is not None and channels is not None:  # MCAP: the summary section's statistics
        per_channel = statistics.channel_message_counts
        return {channel.topic: int(per_channel.get(cid, 0)) for cid, channel in channels.items()}
    dbconn = getattr(storage, "dbconn", None)
    if dbconn is not None:  # sqlite3: count the rows
        try:
            rows = dbconn.execute("SELECT topics.name, COUNT(messages.id) FROM topics LEFT JOIN messages "
                                  "ON messages.topic_id = topics.id GROUP BY topics.name").fetchall()
        except Exception as err:  # noqa: BLE001 - a damaged database raises sqlite3.DatabaseError and others
            LOG.debug("cannot count the rows of %s: %s", getattr(storage, "path", "?"), err)
            return None
        return {str(name): int(n) for name, n in rows}
    return None


def transport_topic(present: Mapping[str, object], topic: str, transports: tuple[str, ...]) -> str:
    """`topic` when the bag has it, else the first image_transport name `<topic>/<transport>` it
    has (`/camera/color/image_raw` -> `/camera/color/image_raw/compressed`), else `topic`."""
    if topic in present:
        return topic
    return next((f"{topic}/{t}" for t in transports if f"{topic}/{t}" in present), topic)


class BagWriter:
    """Context manager writing a rosbag2 bag (MCAP by default) with a typestore's message classes.

    `compress`: zstd-compressed MCAP chunks (the MCAP storage plugin's own compression, which
    `ros2 bag`, Foxglove and `rosbags` read as they are; not the file- or message-level
    compression of rosbag2, which MCAP tools do not read). MCAP only.
    """

    def __init__(self, path: str | Path, typestore: Any, storage: str = "mcap", compress: bool = False) -> None:
        if storage not in STORAGE_PLUGINS:
            raise ValueError(f"unknown storage {storage!r}; choose from {sorted(STORAGE_PLUGINS)}")
        if compress and storage != "mcap":
            raise ValueError(f"compressed chunks need MCAP storage, not {storage!r}")
        self.path = Path(path)
        self.typestore = typestore
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGE_PLUGINS[storage])
        if compress:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._connections: dict[str, Any] = {}
        self._msgtypes: dict[str, str] = {}

    def __enter__(self) -> Self:
        self._writer.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._writer.close()

    def add_topic(self, topic: str, msgtype: str) -> None:
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
        self._msgtypes[topic] = msgtype

    def write(self, topic: str, log_time_ns: int, message: Any) -> None:
        """Serialise `message` (a typestore class instance) as CDR and record it at `log_time_ns`."""
        self.write_raw(topic, log_time_ns, self.typestore.serialize_cdr(message, self._msgtypes[topic]))

    def write_raw(self, topic: str, log_time_ns: int, data: bytes | memoryview) -> None:
        self._writer.write(self._connections[topic], int(log_time_ns), data)
