"""Builders of small real rosbag2 bags (rosbags CDR, MCAP or sqlite3) for the bad-input tests.

`good_records` makes the records of a clean RGB-D recording (the moving box of test_replay: RGB
64x48 rgb8, depth 16x12 16UC1 millimetres, both CameraInfos, ground truth at the RGB size); a
test edits that list (replace a message, drop or add records) and `write_bag` records it. Only
APIs that predate the bad-input work are used here, so the regression tests that import this
module also run against the old code (and fail there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from test_replay import EPOCH, PERIOD, TOPICS, S, fields, good_depth, info, scene

from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.replay.bag_io import BagWriter, load_typestore

STORE = load_typestore("humble")
BUILD = rosbags_builder(STORE)
DEPTH_OFFSET = 3_000_000  # depth stamp after its RGB stamp, ns
FRAME = "cam_optical"
MSGTYPES = {"rgb": "Image", "rgb_info": "CameraInfo", "depth": "Image", "depth_info": "CameraInfo", "gt": "Image"}


@dataclass
class Record:
    log_ns: int
    role: str  # key of TOPICS, or a full topic name for extra topics
    message: Any  # a rosbags message, or raw bytes written as they are
    msgtype: str = ""  # for extra topics

    @property
    def topic(self) -> str:
        return TOPICS.get(self.role, self.role)


def header(stamp_ns: int, frame_id: str = FRAME) -> Any:
    time = STORE.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return STORE.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def good_records(frames: int = 4, gt: bool = True) -> list[Record]:
    """A clean recording: RGB at 30 Hz, depth 3 ms later, each message logged a little after."""
    records = []
    for i in range(frames):
        rgb, depth_m = scene(i)
        rgb_stamp = EPOCH + i * PERIOD
        depth_stamp = rgb_stamp + DEPTH_OFFSET
        records += [
            Record(rgb_stamp + 5_000_000, "rgb", BUILD.image(header(rgb_stamp), fields(rgb, "rgb8"))),
            Record(rgb_stamp + 5_000_001, "rgb_info", BUILD.camera_info(header(rgb_stamp), info(64, 48, 1.0))),
            Record(depth_stamp + 5_000_000, "depth", BUILD.image(header(depth_stamp), good_depth(depth_m))),
            Record(depth_stamp + 5_000_001, "depth_info",
                   BUILD.camera_info(header(depth_stamp), info(64 // S, 48 // S, 1 / S))),
        ]
        if gt:
            gt_image = fields(np.rint(depth_m * 1000).astype(np.uint16), "16UC1")
            records.append(Record(depth_stamp + 5_000_002, "gt", BUILD.image(header(depth_stamp), gt_image)))
    return records


def find(records: list[Record], role: str, index: int) -> Record:
    """The `index`-th record of `role`."""
    return [r for r in records if r.role == role][index]


def replace(record: Record, **changes: Any) -> None:
    """Replace fields of the record's message (a rosbags dataclass) in place."""
    record.message = dataclasses.replace(record.message, **changes)


def restamp(record: Record, stamp_ns: int, frame_id: str | None = None) -> None:
    frame = record.message.header.frame_id if frame_id is None else frame_id
    replace(record, header=header(stamp_ns, frame))


def write_bag(path: Path, records: list[Record], storage: str = "mcap") -> dict[str, int]:
    """Record `records` (sorted by log time) into a new bag; returns messages per topic."""
    counts: dict[str, int] = {}
    with BagWriter(path, STORE, storage=storage) as writer:
        for role, topic in TOPICS.items():
            writer.add_topic(topic, f"sensor_msgs/msg/{MSGTYPES[role]}")
            counts[topic] = 0
        for record in records:
            if record.topic not in counts:
                writer.add_topic(record.topic, record.msgtype)
                counts[record.topic] = 0
        for record in sorted(records, key=lambda r: r.log_ns):
            if isinstance(record.message, (bytes, bytearray)):
                writer.write_raw(record.topic, record.log_ns, bytes(record.message))
            else:
                writer.write(record.topic, record.log_ns, record.message)
            counts[record.topic] += 1
    return counts


def mcap_chunk_offsets(path: Path) -> list[int]:
    """Byte offsets of the chunk records (opcode 0x06) of the bag's MCAP file."""
    (mcap,) = path.glob("*.mcap")
    data = mcap.read_bytes()
    offsets, position = [], 8  # after the magic
    while position + 9 <= len(data):
        opcode = data[position]
        length = int.from_bytes(data[position + 1 : position + 9], "little")
        if opcode == 0x06:
            offsets.append(position)
        if opcode == 0x0F:  # footer: the data section is over
            break
        position += 9 + length
    return offsets


def break_mcap_chunk_checksum(path: Path, chunk: int) -> None:
    """Give chunk number `chunk` a wrong CRC-32 of its records, as a damaged copy would have."""
    (mcap,) = path.glob("*.mcap")
    data = bytearray(mcap.read_bytes())
    crc_at = mcap_chunk_offsets(path)[chunk] + 9 + 24  # opcode, length, start, end, uncompressed size
    data[crc_at : crc_at + 4] = (0xDEADBEEF).to_bytes(4, "little")
    mcap.write_bytes(bytes(data))


def break_sqlite_page(path: Path, fraction: float = 0.5, page: int = 4096) -> None:
    """Overwrite one page near `fraction` of the bag's sqlite3 file with garbage."""
    (db3,) = path.glob("*.db3")
    data = bytearray(db3.read_bytes())
    start = int(len(data) * fraction) // page * page
    data[start : start + page] = b"\xee" * page
    db3.write_bytes(bytes(data))


def big_records(frames: int) -> list[Record]:
    """`good_records` with 320x240 RGB, so that an MCAP bag spans several 1 MiB chunks."""
    records = good_records(frames, gt=False)
    for record in records:
        if record.role == "rgb":
            rgb = np.kron(np.asarray(record.message.data).reshape(48, 64, 3), np.ones((5, 5, 1), np.uint8))
            record.message = BUILD.image(record.message.header, fields(rgb, "rgb8"))
        elif record.role == "rgb_info":
            record.message = BUILD.camera_info(record.message.header, info(320, 240, 5.0))
        elif record.role == "depth":
            depth = np.kron(np.asarray(record.message.data).view("<u2").reshape(12, 16), np.ones((5, 5), np.uint16))
            record.message = BUILD.image(record.message.header, fields(depth, "16UC1"))
        elif record.role == "depth_info":
            record.message = BUILD.camera_info(record.message.header, info(80, 60, 5.0 / S))
    return records
