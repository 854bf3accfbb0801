"""What one replay reads and writes (`ReplayConfig`), the replay's fixed choices, and the topic
resolution that falls back to a compressed image_transport topic when the bag lacks the raw one.

Flag names in the errors are `depth-sr replay`'s; sync and output defaults are the node's
(`NodeParams.defaults()`), so a replay behaves like the node with its default parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.core.frame_processor import OutputConfig
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.replay.bag_io import BagReader, transport_topic
from depth_sr_ros.replay.residual import REGISTRATION_MODES
from depth_sr_ros.replay.writer import POINTS_MODES
from depth_sr_ros.ros.parameters import NodeParams, output_config

_NODE_DEFAULTS = NodeParams.defaults()  # replay syncs like the node with its default parameters

LOG = logging.getLogger(__name__)

BASELINE = "bicubic"
# Replay's outputs are kept, so depth goes out as 16UC1 millimetres (REP 118; 0.2 MB per 640x480
# frame in a zstd chunk, against 0.85 MB for the node's 32FC1); metrics use the float depth.
REPLAY_OUTPUT = replace(output_config(_NODE_DEFAULTS), output_encoding="16UC1", point_cloud_rgb=False)
PREVIEW_EVERY = 100  # a preview per 100 processed frames (every 3.3 s at 30 Hz) ...
WORST_PREVIEWS = 6  # ... and of the 6 frames with the highest RMSE (1 s apart or more, previews.py)
IMAGE_TYPE = "sensor_msgs/msg/Image"
IMAGE_TYPES: tuple[str, ...] = (IMAGE_TYPE, "sensor_msgs/msg/CompressedImage")  # raw, or any image_transport compression
RGB_TRANSPORTS = ("compressed",)  # topic suffixes tried when the bag lacks the raw topic
DEPTH_TRANSPORTS = ("compressedDepth", "compressed")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TOPICS = {"/tf_static": True, "/tf": False}  # topic -> static
BAG_FOLDER = "sr_bag"  # the outputs in `out_dir`
PREVIEW_FOLDER = "previews"
FRAMES_CSV = "frames.csv"
REPORT_HTML = "report.html"
METRICS_JSON = "metrics.json"
SPARSIFICATION_PNG = "sparsification.png"  # the confidence's sparsification curve, when frames are scored


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
    max_image_pixels: int = _NODE_DEFAULTS.max_image_pixels  # the pixel limit of every input (core/limits.py)
    progress: bool = True
    lidar_topic: str = ""  # PointCloud2 in place of depth_topic (depth_info_topic unused)
    unaligned_depth: bool = False  # depth in its own frame: registered with `extrinsic` or TF
    extrinsic: Extrinsic | None = None  # LiDAR/depth frame -> RGB optical frame; None: the bag's /tf_static, /tf
    registration: str = "auto"  # residual of depth labelled registered: none, tf (--extrinsic), auto (replay/residual.py)

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
        if self.registration not in REGISTRATION_MODES:
            raise ReplayConfigError(f"--registration must be one of {', '.join(REGISTRATION_MODES)}, "
                                    f"got {self.registration!r}")
        if self.points not in POINTS_MODES:
            raise ReplayConfigError(f"--points must be one of {', '.join(POINTS_MODES)}, got {self.points!r}")
        for flag, value, least in (("--every", self.every, 1), ("--max-frames", self.max_frames, 0),
                                   ("--preview-every", self.preview_every, 0),
                                   ("--worst-previews", self.worst_previews, 0)):
            if value < least:
                raise ReplayConfigError(f"{flag} must be >= {least}, got {value}")
        self.output = replace(self.output, point_cloud_rgb=self.points == "xyzrgb")


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
