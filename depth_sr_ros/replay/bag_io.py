"""rosbag2 reading and writing with `rosbags` (no ROS needed): sqlite3 and MCAP, Humble and Jazzy.

Reading goes through `rosbags.highlevel.AnyReader`, which uses the message definitions a bag
embeds (MCAP, Jazzy sqlite3) and falls back to the typestore given here (Humble sqlite3 bags
carry none). A record that cannot be deserialised is yielded with `message=None` and the
error text, so the caller counts it as a "corrupt_record" skip and reads on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

if TYPE_CHECKING:  # typing.Self is Python 3.11+; Humble runs 3.10
    from typing_extensions import Self

LOG = logging.getLogger(__name__)

TYPESTORES = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
STORAGE_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(RuntimeError):
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
            raise BagError(f"{self.path}: " + "; ".join(problems) + f".\nTopics in the bag:\n{self.describe_topics()}")

    def records(self, topics: Iterable[str]) -> Iterator[BagRecord]:
        """Records of `topics` in log-time order; undecodable ones carry `message=None`.

        A storage-level failure (a damaged file) ends the iteration with one record on topic ""
        that carries the error, instead of raising mid-bag.
        """
        wanted = set(topics)
        connections = [c for c in self.reader.connections if c.topic in wanted]
        if not connections:
            return
        stream = self.reader.messages(connections=connections)
        while True:
            try:
                connection, timestamp, rawdata = next(stream)
            except StopIteration:
                return
            except Exception as err:  # noqa: BLE001 - damaged storage: report once and stop reading
                LOG.error("bag %s: storage read failed, stopping: %s", self.path, err)
                yield BagRecord("", 0, None, f"storage read failed: {err}")
                return
            try:
                message = self.reader.deserialize(rawdata, connection.msgtype)
            except Exception as err:  # noqa: BLE001 - garbage CDR raises SerdeError, IndexError, ...
                yield BagRecord(connection.topic, timestamp, None, f"{type(err).__name__}: {err}")
            else:
                yield BagRecord(connection.topic, timestamp, message)


def transport_topic(present: Mapping[str, object], topic: str, transports: tuple[str, ...]) -> str:
    """`topic` when the bag has it, else the first image_transport name `<topic>/<transport>` it
    has (`/camera/color/image_raw` -> `/camera/color/image_raw/compressed`), else `topic`."""
    if topic in present:
        return topic
    return next((f"{topic}/{t}" for t in transports if f"{topic}/{t}" in present), topic)


class BagWriter:
    """Context manager writing a rosbag2 bag (MCAP by default) with a typestore's message classes."""

    def __init__(self, path: str | Path, typestore: Any, storage: str = "mcap") -> None:
        if storage not in STORAGE_PLUGINS:
            raise ValueError(f"unknown storage {storage!r}; choose from {sorted(STORAGE_PLUGINS)}")
        self.path = Path(path)
        self.typestore = typestore
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGE_PLUGINS[storage])
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
