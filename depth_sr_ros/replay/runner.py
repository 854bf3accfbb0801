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
`replay/previews.py`), `report.html` (`replay/report.py`) and, with ground truth,
`sparsification.png` (the confidence's sparsification curve; `replay/scoring.py`). Metrics always
cover every processed frame; `every` thins the bag only.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.fields import time_ns
from depth_sr_ros.core.frame_processor import FrameOutput, FrameProcessor, OutputConfig
from depth_sr_ros.core.limits import OVERSIZE, InputBounds
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.sparsification import CurveMean
from depth_sr_ros.core.sync import Pair, StampSync, seconds_to_ns
from depth_sr_ros.core.transforms import TransformBuffer
from depth_sr_ros.replay.bag_io import BagReader, load_typestore
from depth_sr_ros.replay.config import (
    BAG_FOLDER,
    BASELINE,
    CLOUD_TYPE,
    FRAMES_CSV,
    IMAGE_TYPES,
    INFO_TYPE,
    METRICS_JSON,
    PREVIEW_FOLDER,
    REPORT_HTML,
    SPARSIFICATION_PNG,
    TF_TOPICS,
    ReplayConfig,
    with_transport_topics,
)
from depth_sr_ros.replay.finish import PAIR_SKIP_FLAGS, ReplayFinish
from depth_sr_ros.replay.frame_log import FrameLog, spool_path
from depth_sr_ros.replay.full_resolution import refine_at_full_resolution
from depth_sr_ros.replay.ledger import AuxStream, MessageLedger
from depth_sr_ros.replay.metadata_counts import held_counts, settle_counts
from depth_sr_ros.replay.out_dir import OutputDir
from depth_sr_ros.replay.previews import PreviewPlan
from depth_sr_ros.replay.registration import prepare
from depth_sr_ros.replay.report import ErrorHistogram
from depth_sr_ros.replay.residual import decide_residual
from depth_sr_ros.replay.scoring import CONFIDENCE_CUT, FrameScoring
from depth_sr_ros.replay.summary import ReplayReport
from depth_sr_ros.replay.writer import OutputBag

LOG = logging.getLogger(__name__)

WARNINGS_PER_REASON = 3  # log the first few skips of each reason; the summary counts them all


def stamp_ns(message: Any) -> int:
    return time_ns(message.header.stamp)  # ROS 1 and ROS 2 stamps alike


class ReplayRunner(FrameScoring, ReplayFinish):
    """Runs one replay; `run()` returns the report. Build once per bag."""

    frame_log: FrameLog  # frames.csv rows, spooled to disk so that memory stays flat; made by run()

    def __init__(self, config: ReplayConfig) -> None:
        self.output = OutputDir(config.out_dir, "replay")
        self.output.check_inputs([config.bag])  # before anything is read or written
        self.config = config = with_transport_topics(config)
        self.typestore = load_typestore(config.typestore)
        self.depth_topic = config.lidar_topic or config.depth_topic
        self.depth_info_topic = "" if config.lidar_topic else config.depth_info_topic
        self.realsense = None  # the RealSense SDK view of the recording, when it is one (realsense_bag.py)
        self.full_resolution = ""  # what was done with depth near the colour resolution (full_resolution.py)
        with BagReader(config.bag, config.typestore) as reader:  # a bad bag fails before the pipeline loads
            reader.require(*self._inputs())
            if not config.lidar_topic:  # depth from another camera is registered by default (registration.py)
                registration, self.realsense = prepare(reader, config)
                LOG.info("%s", registration.describe())
                fixed = None if registration.from_tf else registration.extrinsic  # TF: looked up per pair
                sr, self.full_resolution = refine_at_full_resolution(config.sr, registration.depth_sampling,
                                                                     auto=config.sr.backbone == "auto")
                if self.full_resolution:
                    LOG.info("%s", self.full_resolution)
                self.config = config = replace(config, unaligned_depth=registration.unaligned,
                                               extrinsic=fixed or config.extrinsic, sr=sr)
            self.residual = decide_residual(reader, config, self.realsense)  # --registration (replay/residual.py)
        self.builder = rosbags_builder(self.typestore)
        self.bounds = InputBounds(config.max_image_pixels)  # the pixel limit, the streams' sizes (core/limits.py)
        # scoring against ground truth also scores the confidence (scoring.py): computed only then
        output = replace(config.output, confidence=True) if config.gt_topic else config.output
        self.processor = FrameProcessor(DepthSR(config.sr), output, self.bounds)
        self.backbone = self.processor.pipeline.backbone_name
        self.baseline: FrameProcessor | None = None  # scores every frame with ground truth, drawn in previews
        if (config.gt_topic or config.previews) and self.backbone != BASELINE:
            baseline_sr = SRConfig(**{**vars(config.sr), "backbone": BASELINE, "weights": None})
            self.baseline = FrameProcessor(DepthSR(baseline_sr), OutputConfig(), self.bounds)
        self.ledger = MessageLedger()
        self.sync = StampSync(config.queue_size, config.slop_s, config.exact_sync)
        self.slop_ns = 0 if config.exact_sync else seconds_to_ns(config.slop_s)
        keep = max(4 * config.queue_size, 32)
        self.tf = TransformBuffer()
        self.tf_latest_stamp = -1  # of dynamic transforms; a cloud waits for /tf to pass its stamp
        self.aux = {topic: AuxStream(topic, keep, self.ledger,
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
        self.confidence_curves = CurveMean((CONFIDENCE_CUT,))
        self.previews = PreviewPlan(config.out_dir, config.preview_every if config.previews else 0,
                                    config.worst_previews if config.previews else 0)
        self.stopped = False  # max_frames reached: later pairs are skipped as "max_frames"

    # -- reading -------------------------------------------------------------------------------
    def run(self) -> ReplayReport:
        """Replay the bag into `out_dir`, replacing only an earlier replay's recorded outputs there."""
        out_dir = Path(self.config.out_dir)
        names = [f"{BAG_FOLDER}/", FRAMES_CSV, spool_path(out_dir / FRAMES_CSV).name, REPORT_HTML, METRICS_JSON]
        names += [SPARSIFICATION_PNG] if self.config.gt_topic else []
        self.output.prepare(names + ([f"{PREVIEW_FOLDER}/"] if self.config.previews else []))
        try:
            return self._replay(out_dir)
        finally:  # also after an error: what was written is recorded, so the next run can replace it
            for folder in (BAG_FOLDER, PREVIEW_FOLDER):
                self.output.record_files(folder)

    def _replay(self, out_dir: Path) -> ReplayReport:
        cfg = self.config
        self.frame_log = FrameLog(out_dir / FRAMES_CSV)
        bag_out = out_dir / BAG_FOLDER
        topics, msgtypes = self._inputs()
        output_bag = OutputBag(bag_out, self.typestore, self.builder, cfg.points, cfg.every)
        with BagReader(cfg.bag, cfg.typestore) as reader, output_bag as writer:
            reader.require(topics, msgtypes)
            if (cfg.lidar_topic or cfg.unaligned_depth) and cfg.extrinsic is None:
                topics.update({topic: topic for topic in TF_TOPICS if topic in reader.topics()})
            in_bag = reader.topics()
            self.ledger.held.update(held_counts(reader, set(topics.values()), self.notices))
            with tqdm(total=in_bag[cfg.rgb_topic][1], desc="replay", unit="rgb", disable=not cfg.progress) as bar:
                for record in reader.records(topics.values()):
                    self._on_record(record, writer)
                    bar.update(record.topic == cfg.rgb_topic)
                    if self.stopped:
                        break
            self._flush(writer, everything=True)
            self.storage_errors = list(reader.storage_errors)
        settle_counts(self.ledger, self.stopped, bool(self.storage_errors), self.notices)
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
        if self.realsense is not None:
            record = replace(record, message=self.realsense.adapt(topic, record.message))
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
            if topic != self.config.gt_topic and not self._camera_info_fits(topic, record.message):
                return
            self.aux[topic].add(stamp, record.message)
        else:
            stream = "rgb" if topic == self.config.rgb_topic else "depth"
            self.stamps[stream].append(stamp)
            for pair in self.sync.add(stream, stamp, record.log_time_ns, record.message):
                self.pending.append((pair, record.log_time_ns))
        self._flush(writer)

    def _camera_info_fits(self, topic: str, message: Any) -> bool:
        """False (counted, warned) for a CameraInfo claiming more than the pixel limit: it is never
        kept, so the frame it came with uses the latest earlier one, as in the node."""
        try:
            self.bounds.camera_info_size(message, f"CameraInfo on {topic}")
        except FrameError as err:
            if err.reason != OVERSIZE:  # broken otherwise: kept, the frame it goes with says why
                return True
            self._warn(err.reason, f"skipping a {topic} message: {err}")
            self.ledger.skip(topic, err.reason)
            return False
        return True

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
            fix = f" ({PAIR_SKIP_FLAGS[err.reason]})" if err.reason in PAIR_SKIP_FLAGS else ""
            self._warn(err.reason, f"frame at {pair.rgb.stamp_ns} skipped ({err.reason}): {err}{fix}")
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
                                     want_points=want_points, residual=self.residual.extrinsic)
        extrinsic = self.config.extrinsic
        if extrinsic is None:
            extrinsic = self.tf.lookup(pair.rgb.payload.header.frame_id, pair.depth.payload.header.frame_id,
                                       pair.depth.stamp_ns)
        if self.config.lidar_topic:
            return processor.process_lidar(pair.rgb.payload, rgb_info_msg, pair.depth.payload, extrinsic, want_points)
        return processor.process_unaligned(pair.rgb.payload, rgb_info_msg, pair.depth.payload, depth_info_msg,
                                           extrinsic, want_points)



def run_replay(config: ReplayConfig) -> ReplayReport:
    return ReplayRunner(config).run()
