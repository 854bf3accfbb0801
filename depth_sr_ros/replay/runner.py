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
the bag's own message count per topic. Outputs in `out_dir`: `sr_bag/` (MCAP, zstd chunks;
`replay/writer.py`), `frames.csv`, `metrics.json` (with the outputs' size per frame),
`previews/*.png` (every `preview_every`-th frame and the `worst_previews` worst;
`replay/previews.py`) and `report.html` (`replay/report.py`). Metrics always cover every
processed frame; `every` thins the bag only.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from depth_sr_ros.core.errors import FrameError, UsageError
from depth_sr_ros.core.frame_processor import FrameOutput, FrameProcessor, OutputConfig
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.core.metrics import METRIC_NAMES, depth_metrics, mean_metrics
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.preview_figure import PreviewFrame
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
from depth_sr_ros.replay.bag_io import BagReader, load_typestore, transport_topic
from depth_sr_ros.replay.frame_log import FrameLog
from depth_sr_ros.replay.previews import PreviewEntry, PreviewPlan
from depth_sr_ros.replay.report import ErrorHistogram, ReportInputs, write_report
from depth_sr_ros.replay.writer import POINTS_MODES, OutputBag, format_sizes, output_sizes
from depth_sr_ros.ros.parameters import NodeParams, output_config

_NODE_DEFAULTS = NodeParams.defaults()  # replay syncs like the node with its default parameters

LOG = logging.getLogger(__name__)

BASELINE = "bicubic"
# Replay's outputs are kept, so depth goes out as 16UC1 millimetres (REP 118; 0.2 MB per 640x480
# frame in a zstd chunk, against 0.85 MB for the node's 32FC1); metrics use the float depth.
REPLAY_OUTPUT = replace(output_config(_NODE_DEFAULTS), output_encoding="16UC1", point_cloud_rgb=False)
PREVIEW_EVERY = 100  # a preview per 100 processed frames (every 3.3 s at 30 Hz) ...
WORST_PREVIEWS = 6  # ... and of the 6 frames with the highest RMSE (1 s apart or more, previews.py)
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
    output: OutputConfig = field(default_factory=lambda: REPLAY_OUTPUT)  # point_cloud_rgb: set from `points`
    queue_size: int = _NODE_DEFAULTS.queue_size
    slop_s: float = _NODE_DEFAULTS.slop
    exact_sync: bool = False
    typestore: str = "humble"
    previews: bool = True  # False: no preview at all, whatever preview_every and worst_previews say
    preview_every: int = PREVIEW_EVERY  # a preview per this many processed frames (0 = none)
    worst_previews: int = WORST_PREVIEWS  # previews of the frames with the highest RMSE (0 = none)
    points: str = "none"  # "none", "xyz" or "xyzrgb": the cloud in the output bag
    every: int = 1  # write the outputs of every n-th processed frame to the bag (metrics: all frames)
    max_frames: int = 0  # stop after this many processed frames (0 = the whole bag)
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
        if self.points not in POINTS_MODES:
            raise ReplayConfigError(f"--points must be one of {', '.join(POINTS_MODES)}, got {self.points!r}")
        for flag, value, least in (("--every", self.every, 1), ("--max-frames", self.max_frames, 0),
                                   ("--preview-every", self.preview_every, 0),
                                   ("--worst-previews", self.worst_previews, 0)):
            if value < least:
                raise ReplayConfigError(f"{flag} must be >= {least}, got {value}")
        self.output = replace(self.output, point_cloud_rgb=self.points == "xyzrgb")


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
    frames_in_bag: int = 0
    sizes: dict[str, Any] = field(default_factory=dict)  # writer.output_sizes: bytes and MB per frame


class _AuxStream:
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

    frame_log: FrameLog  # frames.csv rows, spooled to disk so that memory stays flat; made by run()

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
        self.baseline: FrameProcessor | None = None  # scores every frame with ground truth, drawn in previews
        if (config.gt_topic or config.previews) and self.backbone != BASELINE:
            baseline_sr = SRConfig(**{**vars(config.sr), "backbone": BASELINE, "weights": None})
            self.baseline = FrameProcessor(DepthSR(baseline_sr), OutputConfig())
        self.ledger = MessageLedger()
        self.sync = StampSync(config.queue_size, config.slop_s, config.exact_sync)
        self.slop_ns = 0 if config.exact_sync else seconds_to_ns(config.slop_s)
        keep = max(4 * config.queue_size, 32)
        self.tf = TransformBuffer()
        self.tf_latest_stamp = -1  # of dynamic transforms; a cloud waits for /tf to pass its stamp
        self.aux = {topic: _AuxStream(topic, keep, self.ledger,
                                      "unmatched_ground_truth" if topic == config.gt_topic else "unused_camera_info")
                    for topic in (config.rgb_info_topic, self.depth_info_topic, config.gt_topic) if topic}
        self.pending: list[tuple[Pair, int]] = []  # (pair, log time it completed)
        self.frame_metrics: dict[str, list[dict[str, float]]] = defaultdict(list)
        self.pairs_processed = 0
        self.pairs_skipped: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()  # warnings about processed data (NOTICES)
        self._warned: Counter[str] = Counter()
        self.storage_errors: list[str] = []
        self.stamps: dict[str, list[int]] = {"rgb": [], "depth": []}  # usable stamps per sync stream
        self.histogram = ErrorHistogram()
        self.previews = PreviewPlan(config.out_dir, config.preview_every if config.previews else 0,
                                    config.worst_previews if config.previews else 0)
        self.stopped = False  # max_frames reached: later pairs are skipped as "max_frames"

    # -- reading -------------------------------------------------------------------------------
    def run(self) -> ReplayReport:
        cfg = self.config
        out_dir = Path(cfg.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.frame_log = FrameLog(out_dir / "frames.csv")
        bag_out = out_dir / "sr_bag"
        if (bag_out / "metadata.yaml").exists():
            shutil.rmtree(bag_out)  # the output bag of an earlier run into the same folder
        for stale in (out_dir / "previews").glob("frame_*.png"):
            stale.unlink()  # an earlier run's previews would be mistaken for this one's
        topics, msgtypes = self._inputs()
        output_bag = OutputBag(bag_out, self.typestore, self.builder, cfg.points, cfg.every)
        with BagReader(cfg.bag, cfg.typestore) as reader, output_bag as writer:
            reader.require(topics, msgtypes)
            if (cfg.lidar_topic or cfg.unaligned_depth) and cfg.extrinsic is None:
                topics.update({topic: topic for topic in TF_TOPICS if topic in reader.topics()})
            in_bag = reader.topics()
            for topic in set(topics.values()):
                self.ledger.held[topic] = in_bag[topic][1]
            with tqdm(total=in_bag[cfg.rgb_topic][1], desc="replay", unit="rgb", disable=not cfg.progress) as bar:
                for record in reader.records(topics.values()):
                    self._on_record(record, writer)
                    bar.update(record.topic == cfg.rgb_topic)
                    if self.stopped:
                        break
            self._flush(writer, everything=True)
            self.storage_errors = list(reader.storage_errors)
        for topic, held in self.ledger.held.items():  # the rest of the bag, when max_frames stopped the reading
            (self.ledger.not_read if self.stopped else self.ledger.unreadable)[topic] = max(0, held - self.ledger.read[topic])
            if self.ledger.read[topic] > held:
                LOG.warning("%s: read %d messages but the bag's metadata counts %d", topic,
                            self.ledger.read[topic], held)
                self.ledger.held[topic] = self.ledger.read[topic]
        for item in self.sync.finish():
            topic = cfg.rgb_topic if item.stream == "rgb" else self.depth_topic
            self.ledger.skip(topic, "max_frames" if self.stopped else item.reason)
        for stream in self.aux.values():
            stream.settle()
        return self._finish(out_dir, bag_out, output_bag.frames_written)

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

    def _on_record(self, record: Any, writer: OutputBag) -> None:
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

    def _flush(self, writer: OutputBag, everything: bool = False) -> None:
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

    def _process(self, pair: Pair, log_time: int, writer: OutputBag) -> None:
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
        row: dict[str, Any] = {"frame": self.frame_log.count, "rgb_stamp_ns": pair.rgb.stamp_ns,
                               "depth_stamp_ns": pair.depth.stamp_ns}
        try:
            self._process_pair(pair, log_time, writer, row, rgb_info, depth_info, gt, gt_problem, used)
        finally:
            self.frame_log.add(row)  # the row is complete: spooled to disk

    def _process_pair(self, pair: Pair, log_time: int, writer: OutputBag, row: dict[str, Any], rgb_info: Any,
                      depth_info: Any, gt: Any, gt_problem: FrameError | None, used: list[tuple[str, int]]) -> None:
        cfg = self.config
        self._check_scale(pair, row)
        frame_index = self.pairs_processed  # among processed frames, for `every` and the previews
        try:
            if self.stopped:
                raise FrameError("max_frames", f"max_frames={cfg.max_frames} frames were processed")
            if self.depth_info_topic and depth_info is None:
                raise FrameError("missing_camera_info", "no depth CameraInfo at or before the depth stamp")
            want_points = cfg.points != "none" and writer.wants(frame_index)
            out = self._run(self.processor, pair, rgb_info, depth_info, want_points)
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
        self.stopped = cfg.max_frames > 0 and self.pairs_processed >= cfg.max_frames
        # outputs carry the RGB frame and stamp
        row["in_bag"] = int(writer.write(frame_index, pair.rgb.payload.header, log_time, out))
        gt_depth, base_depth = self._score(pair, rgb_info, depth_info, gt, out, row, gt_problem)
        if gt is not None:
            ground_truth = self.aux[cfg.gt_topic]
            if gt_depth is not None:
                ground_truth.used_ok.add(gt[0])
            else:
                ground_truth.failed[gt[0]] = f"ground_truth_{row['gt']}"
        self._offer_preview(frame_index, pair, rgb_info, depth_info, out, gt_depth, base_depth, row)

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

    def _score(self, pair: Pair, rgb_info: Any, depth_info: Any, gt: Any, out: FrameOutput, row: dict[str, Any],
               gt_problem: FrameError | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Score the frame (and the baseline on it) against ground truth: (ground truth, baseline
        depth), both metres, None when the frame has no usable ground truth."""
        if gt_problem is not None:
            row["gt"] = gt_problem.reason
            self._warn(gt_problem.reason, f"frame at {pair.rgb.stamp_ns} not scored: {gt_problem}")
            return None, None
        if gt is None:
            row["gt"] = "none"
            return None, None
        try:
            gt_depth = depth_from_image(gt[1])
            if gt_depth.shape != out.depth.shape:
                raise FrameError("size_mismatch", f"ground truth {gt_depth.shape[::-1]} differs from the output "
                                 f"{out.depth.shape[::-1]} (width, height)")
        except FrameError as err:
            row["gt"] = err.reason
            self._warn(f"ground_truth_{err.reason}", f"frame at {pair.rgb.stamp_ns} not scored: {err}")
            return None, None
        row["gt"] = "ok"
        depths = {self.backbone: out.depth}
        if self.baseline is not None:
            depths[BASELINE] = self._run(self.baseline, pair, rgb_info, depth_info, want_points=False).depth
        for method, depth in depths.items():
            values = depth_metrics(depth, gt_depth)
            self.frame_metrics[method].append(values)
            self.histogram.add(method, depth, gt_depth)
            row.update({f"{method}_{name}": round(v, 6) for name, v in values.items()})
        return gt_depth, depths.get(BASELINE)

    def _offer_preview(self, index: int, pair: Pair, rgb_info: Any, depth_info: Any, out: FrameOutput,
                       gt_depth: np.ndarray | None, base_depth: np.ndarray | None, row: dict[str, Any]) -> None:
        rmse = {m: row[f"{m}_rmse"] for m in (self.backbone, BASELINE) if f"{m}_rmse" in row}
        name = f"frame_{row['frame']:04d}_{pair.rgb.stamp_ns}.png"
        entry = PreviewEntry(row["frame"], pair.rgb.stamp_ns, rmse, Path("previews") / name)

        def make() -> PreviewFrame:
            methods = {self.backbone: out.depth}
            if self.baseline is not None:
                methods[BASELINE] = base_depth if base_depth is not None else self._run(
                    self.baseline, pair, rgb_info, depth_info, want_points=False).depth
            depth_in = None if self.config.lidar_topic else depth_from_image(pair.depth.payload)
            title = f"frame {row['frame']}   {pair.rgb.stamp_ns / 1e9:.3f} s   {self.backbone} x{self.config.sr.scale}"
            return PreviewFrame(rgb_from_image(pair.rgb.payload), methods, depth_in, gt_depth, rmse, title)

        self.previews.offer(index, entry, rmse.get(self.backbone), make)

    # -- outputs -------------------------------------------------------------------------------
    def _write_frames_csv(self) -> Path:
        """frames.csv, with each pair's stamp gap; counts the pairs whose stamps differ by more than
        half the observed RGB frame period."""
        period = frame_period_ns(self.stamps["rgb"])
        if not period:
            return self.frame_log.finish()

        def stamp_gap(row: dict[str, Any]) -> dict[str, Any]:
            gap = abs(row["rgb_stamp_ns"] - row["depth_stamp_ns"])
            if gap > period / 2:
                self.notices["stamp_gap_over_half_period"] += 1
            return {"stamp_gap_ms": round(gap / 1e6, 3)}

        path = self.frame_log.finish(stamp_gap, ("stamp_gap_ms",))
        late = self.notices["stamp_gap_over_half_period"]
        if late:
            LOG.warning("%d pair(s) have stamps further apart than half the RGB frame period (%.1f ms): with a slop "
                        "of %.1f ms a depth frame can pair with a neighbouring RGB frame, e.g. after a dropped "
                        "frame; frames.csv has stamp_gap_ms per pair. A slop under %.1f ms prevents it",
                        late, period / 1e6, self.slop_ns / 1e6, period / 2e6)
        return path

    def _hints(self) -> list[str]:
        """What to change, for runs that paired or scored nothing."""
        hints = []
        rgb, depth = self.stamps["rgb"], self.stamps["depth"]
        if not self.frame_log.count and rgb and depth:
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
        elif not self.frame_log.count:
            hints.append(f"nothing paired: {len(rgb)} RGB and {len(depth)} depth message(s) had usable stamps; "
                         "see the skip reasons above")
        if self.config.gt_topic and self.pairs_processed and not self.frame_metrics:
            reasons = dict(self.frame_log.gt_outcomes)
            hints.append(f"no frame scored against {self.config.gt_topic} ({_reasons(reasons)}): ground truth "
                         "needs the depth stamp (within --slop) and the RGB resolution")
        return hints

    def _finish(self, out_dir: Path, bag_out: Path, frames_in_bag: int) -> ReplayReport:
        frames_csv = self._write_frames_csv()
        hints = self._hints()
        for hint in hints:
            LOG.warning("%s", hint)
        metrics = {method: mean_metrics(values) for method, values in self.frame_metrics.items()}
        frames_scored = len(self.frame_metrics.get(self.backbone, []))
        outputs = {"bag": bag_out, "frames_csv": frames_csv, "report_html": out_dir / "report.html"}
        if self.config.previews:
            outputs["previews"] = out_dir / "previews"
        worst = self.previews.finish()
        ok_rows = [row for row in self.frame_log.rows() if row.get("status") == "ok"]  # once, for the report
        self.frame_log.discard()
        write_report(outputs["report_html"], ReportInputs(
            bag=str(self.config.bag), backbone=self.backbone, scale=self.config.sr.scale, rows=ok_rows,
            methods=list(metrics), metrics=metrics, histogram=self.histogram, worst=worst,
            sampled=self.previews.sampled, sample_every=self.previews.every, skipped=self.ledger.skip_totals(),
            facts=[(f"{self.pairs_processed} frames processed, {frames_scored} scored, {frames_in_bag} in the "
                    "output bag" + (f" (one in {self.config.every})" if self.config.every > 1 else "")),
                   "pairs skipped: " + _reasons(dict(self.pairs_skipped))]))
        sizes = output_sizes(outputs, self.pairs_processed)
        outputs["metrics_json"] = out_dir / "metrics.json"
        summary = {
            "bag": str(self.config.bag),
            "backbone": self.backbone,
            "baseline": BASELINE,
            "scale": self.config.sr.scale,
            "pairs_processed": self.pairs_processed,
            "pairs_skipped": dict(self.pairs_skipped),
            "frames_scored": frames_scored,
            "frames_in_bag": frames_in_bag,
            "metrics": {m: {k: _json_number(v) for k, v in values.items()} for m, values in metrics.items()},
            "metric_units": "rmse, mae: metres; absrel, delta1 (delta < 1.25), coverage: fractions",
            "mean_timings_ms": self.frame_log.mean_timings_ms(),
            "messages": self.ledger.as_dict(),
            "skipped_messages": self.ledger.skip_totals(),
            "unreadable_messages": sum(self.ledger.unreadable.values()),
            "not_read_messages": sum(self.ledger.not_read.values()),  # after max_frames
            "storage_errors": self.storage_errors,
            "notices": dict(self.notices),
            "hints": hints,
            "sync": {"policy": "exact" if self.config.exact_sync else "approximate",
                     "queue_size": self.config.queue_size, "slop_s": self.config.slop_s},
            "output": {"encoding": self.config.output.output_encoding, "points": self.config.points,
                       "every": self.config.every, "max_frames": self.config.max_frames,
                       "previews": len(list((out_dir / "previews").glob("frame_*.png"))),
                       "worst_frames": [entry.frame for entry in worst]},
            "output_sizes": {**sizes, "note": "bag, previews, frames.csv and report.html; metrics.json not counted"},
        }
        outputs["metrics_json"].write_text(json.dumps(summary, indent=2) + "\n")
        if not (self.ledger.balanced() and self.ledger.complete()):  # a bug, not a bad input
            raise RuntimeError(f"message accounting does not balance: {self.ledger.as_dict()}")
        return ReplayReport(self.backbone, self.config.sr.scale, self.pairs_processed, dict(self.pairs_skipped),
                            self.ledger, metrics, frames_scored, outputs, dict(self.notices), hints,
                            self.storage_errors, frames_in_bag, sizes)



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
        unreadable += f"  (+{counts['not_read']} not read: --max-frames)" if counts["not_read"] else ""
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
    lines.append("outputs: " + format_sizes(report.sizes, report.pairs_processed) if report.sizes else "outputs:")
    lines += [f"  {name:<13}{path}" for name, path in report.outputs.items()]
    return "\n".join(lines)
