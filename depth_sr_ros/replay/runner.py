"""Replay a rosbag2 bag through the node's `FrameProcessor`, write the results, score them.

One pass over the bag in record (log-time) order, as a live node would receive it:
- RGB and depth go through `StampSync` (message_filters' approximate or exact policy);
- a completed pair waits until its CameraInfo and ground-truth streams have caught up with its
  stamps (or the bag ends, or `queue_size` more pairs are waiting), then looks them up: CameraInfo
  with the image's stamp, else the latest earlier one; ground truth with the depth stamp, else the
  one nearest to it within `slop`. Two ground-truth messages equally near are ambiguous: the
  frame is not scored ("ambiguous_ground_truth") rather than scored against a guess. (The node puts both CameraInfo topics into its synchroniser as well. Where each
  CameraInfo carries its image's stamp, as camera drivers publish them, both give the same pairs;
  where CameraInfo is missing or sparse, replay uses the latest one while the node would wait.)
- the pair runs through `FrameProcessor` (and through the `bicubic` baseline when ground truth is
  given), and the outputs are written to an MCAP bag with the RGB header (frame and stamp).

LiDAR mode (`lidar_topic`): a PointCloud2 topic takes the depth stream's place in the sync (so a
10 Hz LiDAR pairs with the nearest of a 30 Hz camera's frames within `slop`; the other camera frames
are unpaired and counted), and each pair runs through `FrameProcessor.process_lidar`. The
LiDAR-to-camera extrinsic is `extrinsic` when given, else looked up at the cloud's stamp in the
bag's `/tf_static` and `/tf` (`TransformBuffer`); ground truth is matched to the RGB stamp.
Unaligned depth (`unaligned_depth`): a depth image in its own frame, with its own CameraInfo, is
registered into the RGB camera the same way (`FrameProcessor.process_unaligned`).

Bad timing is never silently paired: an image stamped 0 (an unset clock) is skipped as
"zero_stamp"; a pair whose stamps differ by more than half the observed RGB frame period (after
a dropped frame with a wide slop, depth pairs with the previous RGB frame) is counted and warned
about; a `scale` that differs from the ratio of the RGB and depth widths is warned about; a run
that pairs nothing ends with a hint about the slop.

Every message of the requested topics is accounted for (`MessageLedger`): processed, or skipped
with a reason, and what damaged storage kept from being read is counted as unreadable against
the bag's own message count per topic. Outputs in `out_dir`: `sr_bag/` (MCAP), `frames.csv`,
`metrics.json`, `previews/*.png`.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from depth_sr_ros.core.errors import FrameError, UsageError
from depth_sr_ros.core.frame_processor import FrameOutput, FrameProcessor, OutputConfig
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.core.metrics import METRIC_NAMES, depth_metrics, mean_metrics
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.preview import colorize_depth, colorize_error, depth_range, side_by_side, write_png
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.sync import (
    Pair,
    StampSync,
    frame_period_ns,
    match_camera_info,
    nearest_distances_ns,
    seconds_to_ns,
)
from depth_sr_ros.core.transforms import TransformBuffer
from depth_sr_ros.replay.bag_io import BagReader, BagWriter, load_typestore, transport_topic
from depth_sr_ros.ros.parameters import NodeParams, output_config

_NODE_DEFAULTS = NodeParams.defaults()  # replay syncs like the node with its default parameters

LOG = logging.getLogger(__name__)

OUTPUT_IMAGE_TOPIC = "/depth_sr/image"
OUTPUT_INFO_TOPIC = "/depth_sr/camera_info"
OUTPUT_POINTS_TOPIC = "/depth_sr/points"
BASELINE = "bicubic"
PREVIEW_ERROR_MAX_M = 0.10
WARNINGS_PER_REASON = 3  # log the first few skips of each reason; the summary counts them all
IMAGE_TYPE = "sensor_msgs/msg/Image"
IMAGE_TYPES: tuple[str, ...] = (IMAGE_TYPE, "sensor_msgs/msg/CompressedImage")  # raw, or any image_transport compression
RGB_TRANSPORTS = ("compressed",)  # topic suffixes tried when the bag lacks the raw topic
DEPTH_TRANSPORTS = ("compressedDepth", "compressed")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TOPICS = {"/tf_static": True, "/tf": False}  # topic -> static
NOTICES = {  # warnings about data that was processed anyway, counted per pair
    "scale_ratio_mismatch": "the RGB/depth width ratio is not the scale",
    "stamp_gap_over_half_period": "the pair's stamps differ by more than half the RGB frame period",
}


class ReplayConfigError(UsageError, ValueError):
    """Replay settings that cannot work together."""


@dataclass
class ReplayConfig:
    """Inputs, sync policy and outputs of one replay. Empty info/gt topics mean "not in use"."""

    bag: Path
    out_dir: Path
    rgb_topic: str
    rgb_info_topic: str
    depth_topic: str
    depth_info_topic: str = ""
    gt_topic: str = ""
    sr: SRConfig = field(default_factory=SRConfig)
    output: OutputConfig = field(default_factory=lambda: output_config(_NODE_DEFAULTS))  # the node's
    queue_size: int = _NODE_DEFAULTS.queue_size
    slop_s: float = _NODE_DEFAULTS.slop
    exact_sync: bool = False
    typestore: str = "humble"
    previews: bool = True
    points: bool = True
    progress: bool = True
    lidar_topic: str = ""  # PointCloud2 in place of depth_topic (depth_info_topic unused)
    unaligned_depth: bool = False  # depth in its own frame: registered with `extrinsic` or TF
    extrinsic: Extrinsic | None = None  # LiDAR/depth frame -> RGB optical frame; None: the bag's /tf_static, /tf

    def __post_init__(self) -> None:
        """UsageError for settings that cannot work together (flag names as `depth-sr replay`'s)."""
        if self.lidar_topic and self.unaligned_depth:
            raise ReplayConfigError("--lidar-topic and --unaligned-depth exclude each other: one depth source per replay")
        roles = {"--rgb-topic": self.rgb_topic, "--rgb-info-topic": self.rgb_info_topic,
                 "--lidar-topic" if self.lidar_topic else "--depth-topic": self.lidar_topic or self.depth_topic,
                 "--depth-info-topic": "" if self.lidar_topic else self.depth_info_topic,
                 "--gt-topic": self.gt_topic}
        seen: dict[str, str] = {}
        for flag, topic in roles.items():
            if topic and topic in seen:
                raise ReplayConfigError(f"{flag} and {seen[topic]} both name {topic}: each input needs its own topic")
            seen.setdefault(topic, flag)


class MessageLedger:
    """Per topic: messages read, processed, skipped by reason, and unreadable.

    read == processed + skipped (`balanced`), and read + unreadable == what the bag holds
    (`complete`): `held` is the bag's own message count for the topic, `unreadable` what damaged
    storage kept from being read.
    """

    def __init__(self) -> None:
        self.read: Counter[str] = Counter()
        self.processed: Counter[str] = Counter()
        self.skipped: dict[str, Counter[str]] = defaultdict(Counter)
        self.held: Counter[str] = Counter()
        self.unreadable: Counter[str] = Counter()

    def skip(self, topic: str, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[topic][reason] += n

    def balanced(self) -> bool:
        return all(self.read[t] == self.processed[t] + sum(self.skipped[t].values()) for t in self.read)

    def complete(self) -> bool:
        return all(self.read[t] + self.unreadable[t] == self.held[t] for t in self.held)

    def skip_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for reasons in self.skipped.values():
            totals.update(reasons)
        return dict(totals)

    def as_dict(self) -> dict[str, Any]:
        return {t: {"read": self.read[t], "processed": self.processed[t], "skipped": dict(self.skipped[t]),
                    "unreadable": self.unreadable[t], "in_bag": self.held[t]}
                for t in sorted(set(self.read) | set(self.held))}


@dataclass
class ReplayReport:
    backbone: str
    scale: int
    pairs_processed: int
    pairs_skipped: dict[str, int]  # reason -> pairs that paired but could not be processed
    ledger: MessageLedger
    metrics: dict[str, dict[str, float]]  # method name -> mean metrics ({} without ground truth)
    frames_scored: int
    outputs: dict[str, Path]
    notices: dict[str, int] = field(default_factory=dict)  # warnings on processed data, by kind
    hints: list[str] = field(default_factory=list)  # what to change when a run went wrong
    storage_errors: list[str] = field(default_factory=list)


class _AuxStream:
    """A CameraInfo or ground-truth stream: recent messages (bounded) and which ones were used."""

    def __init__(self, topic: str, keep: int) -> None:
        self.topic = topic
        self.keep = keep
        self.items: list[tuple[int, int, Any]] = []  # (stamp ns, index, message)
        self.latest_stamp = -1
        self.decoded = 0
        self.used_ok: set[int] = set()
        self.failed: dict[int, str] = {}  # index -> reason, for messages only attached to skipped frames

    def add(self, stamp_ns: int, message: Any) -> None:
        self.items.append((stamp_ns, self.decoded, message))
        self.decoded += 1
        self.latest_stamp = max(self.latest_stamp, stamp_ns)
        del self.items[: max(0, len(self.items) - self.keep)]

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

    def settle(self, ledger: MessageLedger, unused_reason: str) -> None:
        ledger.processed[self.topic] += len(self.used_ok)
        for index, reason in self.failed.items():
            if index not in self.used_ok:
                ledger.skip(self.topic, reason)
        ledger.skip(self.topic, unused_reason, self.decoded - len(self.used_ok | set(self.failed)))


def with_transport_topics(config: ReplayConfig) -> ReplayConfig:
    """`config` with each image topic the bag lacks replaced by its compressed image_transport
    name when the bag has that (`<topic>/compressed`, `<topic>/compressedDepth`)."""
    with BagReader(config.bag, config.typestore) as reader:
        present = reader.topics()
    resolved = replace(
        config,
        rgb_topic=transport_topic(present, config.rgb_topic, RGB_TRANSPORTS),
        depth_topic=config.depth_topic if config.lidar_topic else
        transport_topic(present, config.depth_topic, DEPTH_TRANSPORTS),
        gt_topic=config.gt_topic and transport_topic(present, config.gt_topic, DEPTH_TRANSPORTS),
    )
    for given, used in ((config.rgb_topic, resolved.rgb_topic), (config.depth_topic, resolved.depth_topic),
                        (config.gt_topic, resolved.gt_topic)):
        if given != used:
            LOG.info("the bag has no %s; reading %s (%s)", given, used, present[used][0])
    return resolved


def stamp_ns(message: Any) -> int:
    return int(message.header.stamp.sec) * 10**9 + int(message.header.stamp.nanosec)


class ReplayRunner:
    """Runs one replay; `run()` returns the report. Build once per bag."""

    def __init__(self, config: ReplayConfig) -> None:
        self.config = config = with_transport_topics(config)
        self.typestore = load_typestore(config.typestore)
        self.depth_topic = config.lidar_topic or config.depth_topic
        self.depth_info_topic = "" if config.lidar_topic else config.depth_info_topic
        with BagReader(config.bag, config.typestore) as reader:  # a bad bag fails before the pipeline loads
            reader.require(*self._inputs())
        self.builder = rosbags_builder(self.typestore)
        self.processor = FrameProcessor(DepthSR(config.sr), config.output)
        self.backbone = self.processor.pipeline.backbone_name
        self.baseline: FrameProcessor | None = None
        if config.gt_topic and self.backbone != BASELINE:
            baseline_sr = SRConfig(**{**vars(config.sr), "backbone": BASELINE, "weights": None})
            self.baseline = FrameProcessor(DepthSR(baseline_sr), OutputConfig())
        self.ledger = MessageLedger()
        self.sync = StampSync(config.queue_size, config.slop_s, config.exact_sync)
        self.slop_ns = 0 if config.exact_sync else seconds_to_ns(config.slop_s)
        keep = max(4 * config.queue_size, 32)
        self.tf = TransformBuffer()
        self.tf_latest_stamp = -1  # of dynamic transforms; a cloud waits for /tf to pass its stamp
        self.aux = {topic: _AuxStream(topic, keep)
                    for topic in (config.rgb_info_topic, self.depth_info_topic, config.gt_topic) if topic}
        self.pending: list[tuple[Pair, int]] = []  # (pair, log time it completed)
        self.frame_rows: list[dict[str, Any]] = []
        self.frame_metrics: dict[str, list[dict[str, float]]] = defaultdict(list)
        self.pairs_processed = 0
        self.pairs_skipped: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()  # warnings about processed data (NOTICES)
        self._warned: Counter[str] = Counter()
        self.storage_errors: list[str] = []
        self.stamps: dict[str, list[int]] = {"rgb": [], "depth": []}  # usable stamps per sync stream

    # -- reading -------------------------------------------------------------------------------
    def run(self) -> ReplayReport:
        cfg = self.config
        out_dir = Path(cfg.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        bag_out = out_dir / "sr_bag"
        if (bag_out / "metadata.yaml").exists():
            shutil.rmtree(bag_out)  # the output bag of an earlier run into the same folder
        topics, msgtypes = self._inputs()
        with BagReader(cfg.bag, cfg.typestore) as reader, BagWriter(bag_out, self.typestore) as writer:
            reader.require(topics, msgtypes)
            if (cfg.lidar_topic or cfg.unaligned_depth) and cfg.extrinsic is None:
                topics.update({topic: topic for topic in TF_TOPICS if topic in reader.topics()})
            writer.add_topic(OUTPUT_IMAGE_TOPIC, IMAGE_TYPE)
            writer.add_topic(OUTPUT_INFO_TOPIC, INFO_TYPE)
            if cfg.points:
                writer.add_topic(OUTPUT_POINTS_TOPIC, "sensor_msgs/msg/PointCloud2")
            in_bag = reader.topics()
            for topic in set(topics.values()):
                self.ledger.held[topic] = in_bag[topic][1]
            with tqdm(total=in_bag[cfg.rgb_topic][1], desc="replay", unit="rgb", disable=not cfg.progress) as bar:
                for record in reader.records(topics.values()):
                    self._on_record(record, writer)
                    bar.update(record.topic == cfg.rgb_topic)
            self._flush(writer, everything=True)
            self.storage_errors = list(reader.storage_errors)
        for topic, held in self.ledger.held.items():
            self.ledger.unreadable[topic] = max(0, held - self.ledger.read[topic])
            if self.ledger.read[topic] > held:
                LOG.warning("%s: read %d messages but the bag's metadata counts %d", topic,
                            self.ledger.read[topic], held)
                self.ledger.held[topic] = self.ledger.read[topic]
        for item in self.sync.finish():
            topic = cfg.rgb_topic if item.stream == "rgb" else self.depth_topic
            self.ledger.skip(topic, item.reason)
        for topic, stream in self.aux.items():
            stream.settle(self.ledger, "unmatched_ground_truth" if topic == cfg.gt_topic else "unused_camera_info")
        return self._finish(out_dir, bag_out)

    def _inputs(self) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """role -> topic of every input in use, and role -> the message type it must have."""
        cfg = self.config
        topics = {"rgb": cfg.rgb_topic, "rgb_info": cfg.rgb_info_topic, "depth": self.depth_topic,
                  "depth_info": self.depth_info_topic, "ground_truth": cfg.gt_topic}
        topics = {role: topic for role, topic in topics.items() if topic}
        msgtypes: dict[str, tuple[str, ...]] = {
            role: (INFO_TYPE,) if role.endswith("info") else IMAGE_TYPES for role in topics}
        if cfg.lidar_topic:
            msgtypes["depth"] = (CLOUD_TYPE,)
        return topics, msgtypes

    def _on_record(self, record: Any, writer: BagWriter) -> None:
        topic = record.topic
        self.ledger.read[topic] += 1
        if record.message is None:
            self._warn("corrupt_record", f"skipping {topic} record at {record.log_time_ns}: {record.error}")
            self.ledger.skip(topic, "corrupt_record")
            return
        if topic in TF_TOPICS:
            self._add_transforms(topic, record.message)
            self._flush(writer)
            return
        stamp = stamp_ns(record.message)
        if stamp == 0 and topic not in (self.config.rgb_info_topic, self.depth_info_topic):
            # an unset clock: stamp 0 says nothing about which frame this is, so it never pairs
            self._warn("zero_stamp", f"skipping a {topic} message stamped 0 (the publisher's clock is not set)")
            self.ledger.skip(topic, "zero_stamp")
            return
        if topic in self.aux:
            self.aux[topic].add(stamp, record.message)
        else:
            stream = "rgb" if topic == self.config.rgb_topic else "depth"
            self.stamps[stream].append(stamp)
            for pair in self.sync.add(stream, stamp, record.log_time_ns, record.message):
                self.pending.append((pair, record.log_time_ns))
        self._flush(writer)

    def _add_transforms(self, topic: str, message: Any) -> None:
        try:
            self.tf.add_message(message, static=TF_TOPICS[topic])
        except ValueError as err:
            self._warn("bad_transform", f"skipping a {topic} message: {err}")
            self.ledger.skip(topic, "bad_transform")
            return
        self.ledger.processed[topic] += 1
        if not TF_TOPICS[topic] and message.transforms:
            self.tf_latest_stamp = max(self.tf_latest_stamp, *(stamp_ns(t) for t in message.transforms))

    def _gt_stamp(self, pair: Pair) -> int:
        """Ground truth lives at the RGB camera: matched to the depth stamp, or the RGB stamp for LiDAR."""
        return pair.rgb.stamp_ns if self.config.lidar_topic else pair.depth.stamp_ns

    def _ready(self, pair: Pair) -> bool:
        cfg = self.config
        needs = {cfg.rgb_info_topic: pair.rgb.stamp_ns, self.depth_info_topic: pair.depth.stamp_ns,
                 cfg.gt_topic: self._gt_stamp(pair) + self.slop_ns}
        tf_ready = self.tf_latest_stamp < 0 or self.tf_latest_stamp >= pair.depth.stamp_ns
        return tf_ready and all(self.aux[t].latest_stamp >= s for t, s in needs.items() if t)

    def _flush(self, writer: BagWriter, everything: bool = False) -> None:
        while self.pending and (everything or len(self.pending) > self.config.queue_size
                                or self._ready(self.pending[0][0])):
            pair, log_time = self.pending.pop(0)
            self._process(pair, log_time, writer)

    def _warn(self, reason: str, text: str) -> None:
        self._warned[reason] += 1
        if self._warned[reason] <= WARNINGS_PER_REASON:
            suffix = " (further skips for this reason are counted, not logged)" if \
                self._warned[reason] == WARNINGS_PER_REASON else ""
            LOG.warning("%s%s", text, suffix)

    # -- one pair ------------------------------------------------------------------------------
    def _lookup(self, topic: str, pair_stamp: int, nearest: bool = False) -> tuple[int, Any] | None:
        if not topic:
            return None
        stream = self.aux[topic]
        return stream.nearest(pair_stamp, self.slop_ns) if nearest else stream.camera_info_for(pair_stamp)

    def _process(self, pair: Pair, log_time: int, writer: BagWriter) -> None:
        cfg = self.config
        rgb_info = self._lookup(cfg.rgb_info_topic, pair.rgb.stamp_ns)
        depth_info = self._lookup(self.depth_info_topic, pair.depth.stamp_ns)
        try:
            gt = self._lookup(cfg.gt_topic, self._gt_stamp(pair), nearest=True)
            gt_problem = None
        except FrameError as err:
            gt, gt_problem = None, err
        looked_up = [(cfg.rgb_info_topic, rgb_info), (self.depth_info_topic, depth_info), (cfg.gt_topic, gt)]
        used = [(topic, item[0]) for topic, item in looked_up if item is not None]  # (topic, message index)
        row: dict[str, Any] = {"frame": len(self.frame_rows), "rgb_stamp_ns": pair.rgb.stamp_ns,
                               "depth_stamp_ns": pair.depth.stamp_ns}
        self.frame_rows.append(row)
        self._check_scale(pair, row)
        try:
            if self.depth_info_topic and depth_info is None:
                raise FrameError("missing_camera_info", "no depth CameraInfo at or before the depth stamp")
            out = self._run(self.processor, pair, rgb_info, depth_info, cfg.points)
        except FrameError as err:
            self._warn(err.reason, f"frame at {pair.rgb.stamp_ns} skipped ({err.reason}): {err}")
            row.update(status=err.reason)
            self.pairs_skipped[err.reason] += 1
            for topic in (cfg.rgb_topic, self.depth_topic):
                self.ledger.skip(topic, err.reason)
            for topic, index in used:
                self.aux[topic].failed[index] = err.reason
            return
        row.update(status="ok", **{f"{stage}_ms": round(ms, 3) for stage, ms in out.timings_ms.items()})
        row.update({f"points_{reason}": n for reason, n in out.input_counts.items()})  # projected inputs only
        for topic in (cfg.rgb_topic, self.depth_topic):
            self.ledger.processed[topic] += 1
        for topic, index in used:
            if topic != cfg.gt_topic:
                self.aux[topic].used_ok.add(index)
        self.pairs_processed += 1
        self._write(pair, log_time, out, writer)
        gt_depth = self._score(pair, rgb_info, depth_info, gt, out, row, gt_problem)
        if gt is not None:
            ground_truth = self.aux[cfg.gt_topic]
            if gt_depth is not None:
                ground_truth.used_ok.add(gt[0])
            else:
                ground_truth.failed[gt[0]] = f"ground_truth_{row['gt']}"
        if cfg.previews:
            self._preview(len(self.frame_rows) - 1, pair, out, gt_depth)

    def _run(self, processor: FrameProcessor, pair: Pair, rgb_info: Any, depth_info: Any,
             want_points: bool) -> FrameOutput:
        rgb_info_msg = rgb_info[1] if rgb_info else None
        depth_info_msg = depth_info[1] if depth_info else None
        if not (self.config.lidar_topic or self.config.unaligned_depth):
            return processor.process(pair.rgb.payload, rgb_info_msg, pair.depth.payload, depth_info_msg,
                                     want_points=want_points)
        extrinsic = self.config.extrinsic
        if extrinsic is None:
            extrinsic = self.tf.lookup(pair.rgb.payload.header.frame_id, pair.depth.payload.header.frame_id,
                                       pair.depth.stamp_ns)
        if self.config.lidar_topic:
            return processor.process_lidar(pair.rgb.payload, rgb_info_msg, pair.depth.payload, extrinsic, want_points)
        return processor.process_unaligned(pair.rgb.payload, rgb_info_msg, pair.depth.payload, depth_info_msg,
                                           extrinsic, want_points)

    def _write(self, pair: Pair, log_time: int, out: FrameOutput, writer: BagWriter) -> None:
        header = pair.rgb.payload.header  # outputs carry the RGB frame and stamp
        writer.write(OUTPUT_IMAGE_TOPIC, log_time, self.builder.image(header, out.image))
        writer.write(OUTPUT_INFO_TOPIC, log_time, self.builder.camera_info(header, out.camera_info))
        if out.points is not None:
            writer.write(OUTPUT_POINTS_TOPIC, log_time, self.builder.point_cloud(header, out.points))

    def _check_scale(self, pair: Pair, row: dict[str, Any]) -> None:
        """Count and warn when the RGB/depth width ratio is not `scale` (depth image input only)."""
        if self.config.lidar_topic or self.config.unaligned_depth:
            return  # another camera or a cloud: its size says nothing about the scale
        rgb_width = int(getattr(pair.rgb.payload, "width", 0) or 0)  # CompressedImage: no size before decoding
        depth_width = int(getattr(pair.depth.payload, "width", 0) or 0)
        if rgb_width <= 0 or depth_width <= 0:
            return  # compressed, or a broken image (the decoder says why)
        ratio, scale = rgb_width / depth_width, self.config.sr.scale
        row["width_ratio"] = round(ratio, 3)
        if abs(ratio - scale) <= 0.05 * scale:
            return
        self.notices["scale_ratio_mismatch"] += 1
        effect = (f"the depth is reduced to 1/{(scale / ratio) ** 2:.0f} of its samples first" if scale > ratio
                  else "the depth is resampled up before the network")
        self._warn("scale_ratio_mismatch", f"RGB {rgb_width} px wide over depth {depth_width} px is a x{ratio:.3g} "
                   f"ratio but the scale is x{scale}: {effect}; use --scale {round(ratio)} if that is a shipped "
                   "scale")

    def _score(self, pair: Pair, rgb_info: Any, depth_info: Any, gt: Any, out: FrameOutput,
               row: dict[str, Any], gt_problem: FrameError | None = None) -> np.ndarray | None:
        if gt_problem is not None:
            row["gt"] = gt_problem.reason
            self._warn(gt_problem.reason, f"frame at {pair.rgb.stamp_ns} not scored: {gt_problem}")
            return None
        if gt is None:
            row["gt"] = "none"
            return None
        try:
            gt_depth = depth_from_image(gt[1])
            if gt_depth.shape != out.depth.shape:
                raise FrameError("size_mismatch", f"ground truth {gt_depth.shape[::-1]} differs from the output "
                                 f"{out.depth.shape[::-1]} (width, height)")
        except FrameError as err:
            row["gt"] = err.reason
            self._warn(f"ground_truth_{err.reason}", f"frame at {pair.rgb.stamp_ns} not scored: {err}")
            return None
        row["gt"] = "ok"
        scores = {self.backbone: depth_metrics(out.depth, gt_depth)}
        if self.baseline is not None:
            base = self._run(self.baseline, pair, rgb_info, depth_info, want_points=False)
            scores[BASELINE] = depth_metrics(base.depth, gt_depth)
        for method, values in scores.items():
            self.frame_metrics[method].append(values)
            row.update({f"{method}_{name}": round(v, 6) for name, v in values.items()})
        return gt_depth

    def _preview(self, index: int, pair: Pair, out: FrameOutput, gt_depth: np.ndarray | None) -> None:
        depth_in = None if self.config.lidar_topic else depth_from_image(pair.depth.payload)
        lo, hi = depth_range(out.depth, *(d for d in (depth_in, gt_depth) if d is not None))
        rgb = cv2.cvtColor(np.ascontiguousarray(rgb_from_image(pair.rgb.payload)), cv2.COLOR_RGB2BGR)
        panels = [("rgb", rgb)]
        if depth_in is not None:  # a LiDAR cloud has no input image to show
            panels.append((f"input {depth_in.shape[1]}x{depth_in.shape[0]}", colorize_depth(depth_in, lo, hi)))
        panels.append((self.backbone, colorize_depth(out.depth, lo, hi)))
        if gt_depth is not None:
            panels += [("ground truth", colorize_depth(gt_depth, lo, hi)),
                       (f"|error| 0-{PREVIEW_ERROR_MAX_M:.2f} m", colorize_error(out.depth, gt_depth, PREVIEW_ERROR_MAX_M))]
        write_png(Path(self.config.out_dir) / "previews" / f"frame_{index:04d}_{pair.rgb.stamp_ns}.png",
                  side_by_side(panels))

    # -- outputs -------------------------------------------------------------------------------
    def _check_stamp_gaps(self) -> None:
        """Count pairs whose stamps differ by more than half the observed RGB frame period."""
        period = frame_period_ns(self.stamps["rgb"])
        if not period:
            return
        for row in self.frame_rows:
            gap = abs(row["rgb_stamp_ns"] - row["depth_stamp_ns"])
            row["stamp_gap_ms"] = round(gap / 1e6, 3)
            if gap > period / 2:
                self.notices["stamp_gap_over_half_period"] += 1
        late = self.notices["stamp_gap_over_half_period"]
        if late:
            LOG.warning("%d pair(s) have stamps further apart than half the RGB frame period (%.1f ms): with a slop "
                        "of %.1f ms a depth frame can pair with a neighbouring RGB frame, e.g. after a dropped "
                        "frame; frames.csv has stamp_gap_ms per pair. A slop under %.1f ms prevents it",
                        late, period / 1e6, self.slop_ns / 1e6, period / 2e6)

    def _hints(self) -> list[str]:
        """What to change, for runs that paired or scored nothing."""
        hints = []
        rgb, depth = self.stamps["rgb"], self.stamps["depth"]
        if not self.frame_rows and rgb and depth:
            gaps = nearest_distances_ns(depth, rgb)
            nearest, median = min(gaps) / 1e6, sorted(gaps)[len(gaps) // 2] / 1e6
            if self.config.exact_sync:
                hints.append(f"nothing paired: --exact-sync pairs equal stamps only, and the nearest RGB and "
                             f"depth stamps are {nearest:.3f} ms apart; use approximate sync (--slop)")
            else:
                hints.append(f"nothing paired: the nearest RGB and depth stamps are {nearest:.3f} ms apart (median "
                             f"{median:.3f} ms) but --slop is {self.config.slop_s * 1e3:.3f} ms; raise --slop above "
                             "the usual offset (keep it under half the frame period), or check that both topics "
                             "are stamped by the same clock")
        elif not self.frame_rows:
            hints.append(f"nothing paired: {len(rgb)} RGB and {len(depth)} depth message(s) had usable stamps; "
                         "see the skip reasons above")
        if self.config.gt_topic and self.pairs_processed and not self.frame_metrics:
            reasons = Counter(row.get("gt", "none") for row in self.frame_rows if row.get("status") == "ok")
            hints.append(f"no frame scored against {self.config.gt_topic} ({_reasons(dict(reasons))}): ground truth "
                         "needs the depth stamp (within --slop) and the RGB resolution")
        return hints

    def _finish(self, out_dir: Path, bag_out: Path) -> ReplayReport:
        self._check_stamp_gaps()
        hints = self._hints()
        for hint in hints:
            LOG.warning("%s", hint)
        metrics = {method: mean_metrics(values) for method, values in self.frame_metrics.items()}
        frames_scored = len(self.frame_metrics.get(self.backbone, []))
        outputs = {"bag": bag_out, "frames_csv": out_dir / "frames.csv", "metrics_json": out_dir / "metrics.json"}
        if self.config.previews:
            outputs["previews"] = out_dir / "previews"
        columns: list[str] = []
        for row in self.frame_rows:
            columns += [key for key in row if key not in columns]
        with open(outputs["frames_csv"], "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.frame_rows)
        timings = defaultdict(list)
        for row in self.frame_rows:
            for key, value in row.items():
                if key.endswith("_ms"):
                    timings[key.removesuffix("_ms")].append(value)
        summary = {
            "bag": str(self.config.bag),
            "backbone": self.backbone,
            "baseline": BASELINE,
            "scale": self.config.sr.scale,
            "pairs_processed": self.pairs_processed,
            "pairs_skipped": dict(self.pairs_skipped),
            "frames_scored": frames_scored,
            "metrics": {m: {k: _json_number(v) for k, v in values.items()} for m, values in metrics.items()},
            "metric_units": "rmse, mae: metres; absrel, delta1 (delta < 1.25), coverage: fractions",
            "mean_timings_ms": {stage: round(float(np.mean(v)), 3) for stage, v in timings.items()},
            "messages": self.ledger.as_dict(),
            "skipped_messages": self.ledger.skip_totals(),
            "unreadable_messages": sum(self.ledger.unreadable.values()),
            "storage_errors": self.storage_errors,
            "notices": dict(self.notices),
            "hints": hints,
            "sync": {"policy": "exact" if self.config.exact_sync else "approximate",
                     "queue_size": self.config.queue_size, "slop_s": self.config.slop_s},
        }
        outputs["metrics_json"].write_text(json.dumps(summary, indent=2) + "\n")
        if not (self.ledger.balanced() and self.ledger.complete()):  # a bug, not a bad input
            raise RuntimeError(f"message accounting does not balance: {self.ledger.as_dict()}")
        return ReplayReport(self.backbone, self.config.sr.scale, self.pairs_processed, dict(self.pairs_skipped),
                            self.ledger, metrics, frames_scored, outputs, dict(self.notices), hints,
                            self.storage_errors)


def _json_number(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)


def run_replay(config: ReplayConfig) -> ReplayReport:
    return ReplayRunner(config).run()


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "none"


def format_summary(report: ReplayReport) -> str:
    """The end-of-run table: messages per topic, pairs, skips, metrics (backbone vs bicubic), outputs."""
    lines = ["", "messages                                      read  processed  skipped"]
    for topic, counts in report.ledger.as_dict().items():
        skipped = _reasons(counts["skipped"]) if counts["skipped"] else "-"
        unreadable = f"  (+{counts['unreadable']} unreadable of {counts['in_bag']})" if counts["unreadable"] else ""
        lines.append(f"  {topic:<42}{counts['read']:>5}{counts['processed']:>11}  {skipped}{unreadable}")
    lines.append(f"pairs processed: {report.pairs_processed}  (backbone {report.backbone}, x{report.scale})")
    lines.append("pairs skipped: " + _reasons(report.pairs_skipped))
    lines.append("skipped messages by reason: " + _reasons(report.ledger.skip_totals()))
    unread = sum(report.ledger.unreadable.values())
    if report.storage_errors or unread:
        lines.append(f"damaged storage: {len(report.storage_errors)} read error(s), {unread} message(s) "
                     "unreadable (read on after each damage where the storage allows)")
    if report.notices:
        lines.append("warnings: " + "; ".join(f"{kind} {n} ({NOTICES.get(kind, '')})"
                                              for kind, n in sorted(report.notices.items())))
    if report.metrics:
        lines.append(f"metrics over {report.frames_scored} frames (valid ground-truth pixels):")
        lines.append(f"  {'method':<16}{'RMSE m':>9}{'MAE m':>9}{'AbsRel':>9}{'d<1.25':>9}{'cover':>8}")
        for method, values in report.metrics.items():
            cells = "".join(f"{values[name]:>9.4f}" for name in METRIC_NAMES[:4])
            lines.append(f"  {method:<16}{cells}{values['coverage']:>8.3f}")
    else:
        lines.append("metrics: none (no ground-truth topic given or matched)")
    lines += [f"hint: {hint}" for hint in report.hints]
    lines.append("outputs:")
    lines += [f"  {name:<13}{path}" for name, path in report.outputs.items()]
    return "\n".join(lines)
