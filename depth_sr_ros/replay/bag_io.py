"""rosbag2 reading and writing with `rosbags` (no ROS needed): sqlite3 and MCAP, Humble and Jazzy.

Reading goes through `rosbags.highlevel.AnyReader`, which uses the message definitions a bag
embeds (MCAP, Jazzy sqlite3) and falls back to the typestore given here (Humble sqlite3 bags
carry none). A record that cannot be deserialised is yielded with `message=None` and the
error text, so the caller counts it as a "corrupt_record" skip and reads on.

Damaged storage (an MCAP chunk with a bad checksum, an unreadable sqlite3 page) does not end
the reading: the error is kept in `BagReader.storage_errors` and reading starts again at the
next point after the damage where it can (the next MCAP chunk; the next sqlite3 row, whose
stamps are read without their data). What could not be read is the difference between the
message counts the bag declares per topic (`topics()`) and the records yielded.
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
    """Context manager over one rosbag2 bag (a directory, or a single .mcap/.db3 file)."""

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

    def describe_topics(self) -> str:
        return "\n".join(f"  {name} [{msgtype}] {count} messages"
                         for name, (msgtype, count) in sorted(self.topics().items())) or "  (no topics)"

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
            listing = "; ".join(line.strip() for line in self.describe_topics().splitlines())
            raise BagError(f"{self.path}: " + "; ".join(problems) + f". Topics in the bag: {listing}")

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
