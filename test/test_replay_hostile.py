"""Replay's peak memory with hostile compressed headers (issue 23): the sample bag with JPEG colour
and compressedDepth depth, and its twin where one JPEG claims 30000x30000 and one depth PNG
20000x20000 (each a few hundred bytes to a few kB), replayed in processes of their own. The
hostile messages are skipped as `oversize` before decoding, and the run's peak RSS stays within
1.5x of the clean run's (before the bounds: 5.5 GB and 3.0 GB)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from depth_sr_ros.replay import sample_bag as sb
from depth_sr_ros.replay.bag_io import BagReader, BagWriter, load_typestore

CHILD = """
import json, resource, sys
from pathlib import Path
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay import sample_bag as sb
from depth_sr_ros.replay.config import ReplayConfig
from depth_sr_ros.replay.runner import run_replay
bag, out, rgb, depth = sys.argv[1:5]
report = run_replay(ReplayConfig(bag=Path(bag), out_dir=Path(out), rgb_topic=rgb, rgb_info_topic=sb.RGB_INFO_TOPIC,
                                 depth_topic=depth, depth_info_topic=sb.DEPTH_INFO_TOPIC,
                                 sr=SRConfig(backbone="guided_filter"), previews=False, progress=False))
print(json.dumps({"processed": report.pairs_processed, "pairs_skipped": dict(report.pairs_skipped),
                  "balanced": report.ledger.balanced(), "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def claim(data: bytes, offset: int, width: int, height: int) -> bytes:
    """`data` (a JPEG, or a PNG at `offset`) with its header claiming `width x height`."""
    if data[offset:offset + 4] == b"\x89PNG":
        at = offset + 16
        return data[:at] + struct.pack(">II", width, height) + data[at + 8:]
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4:]


def replay_in_a_process(bag: Path, out: Path, rgb_topic: str, depth_topic: str) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, str(bag), str(out), rgb_topic, depth_topic],
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_hostile_compressed_headers_are_oversize_and_peak_memory_stays_that_of_good_frames(tmp_path):
    bag = sb.build_sample_bag(tmp_path / "bag", rgb_format="jpeg", depth_transport="compressedDepth")
    hostile = tmp_path / "hostile"
    counts = {bag.rgb_topic: 0, bag.depth_topic: 0}
    with BagReader(bag.path) as reader, BagWriter(hostile, load_typestore("humble")) as writer:
        for topic, (msgtype, _) in reader.topics().items():
            writer.add_topic(topic, msgtype)
        for record in reader.records(reader.topics()):
            message = record.message
            if record.topic in counts:
                counts[record.topic] += 1
                data = bytes(message.data)
                if record.topic == bag.rgb_topic and counts[record.topic] == 2:
                    message.data = np.frombuffer(claim(data, 0, 30000, 30000), np.uint8)
                elif record.topic == bag.depth_topic and counts[record.topic] == 3:
                    message.data = np.frombuffer(claim(data, 12, 20000, 20000), np.uint8)
            writer.write(record.topic, record.log_time_ns, message)

    clean = replay_in_a_process(bag.path, tmp_path / "clean_out", bag.rgb_topic, bag.depth_topic)
    attacked = replay_in_a_process(hostile, tmp_path / "hostile_out", bag.rgb_topic, bag.depth_topic)
    assert clean["processed"] >= 3 and attacked["processed"] == clean["processed"] - 2 and attacked["balanced"]
    assert attacked["pairs_skipped"] == {"oversize": 2} and clean["pairs_skipped"] == {}
    assert attacked["max_rss_kb"] <= 1.5 * clean["max_rss_kb"], (clean, attacked)
