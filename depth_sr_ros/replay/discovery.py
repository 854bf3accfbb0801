"""Which topics of a recording are the colour image, the depth image and their CameraInfos.

`find_topics(present, given)` fills every role the user left to it (`None`) from the topic
names and types; a role given a topic keeps it, and `""` turns an optional CameraInfo off.

Candidates are the Image and CompressedImage topics, read by the words of their names (each
path segment split at "_"):
- depth: a segment with the word "depth", unless it is a confidence, disparity or colourised
  map, ground truth, or colour re-projected into the depth camera (`rgb_to_depth`);
- colour: "color", "colour" or "rgb" (or "left", a stereo camera's colour eye), unless infrared,
  mono, the right eye or depth;
- RealSense SDK files: `.../Color_0/image/data` and `.../Depth_0/image/data` (`realsense_bag`).
Each candidate is ranked, best first: depth already registered to the colour camera
(`aligned_depth_to_color`, `depth_to_rgb`, `depth_registered`, ...) before raw depth; the colour
word in the namespace (`rgb/image_rect_color`) before only in the image name (`left/...`);
rectified before an unrectified namespace (`rgb_raw/`); with a CameraInfo beside it before
without; the raw topic before its image_transport variants; among one camera's images the
rectified colour one (`image_rect_color` before `image_color` before a Bayer `image_raw`) and raw
16UC1 depth (`image_raw` before `image`). The set is obvious when each role's
best candidate ranks strictly above the next one; otherwise `TopicDiscoveryError` (a UsageError,
exit 2) lists the candidates, one a line, with the flags that choose.

The CameraInfo of an image topic is the `camera_info` topic in the same namespace
(`/camera/color/image_raw` -> `/camera/color/camera_info`; compressed transports share it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.replay import realsense_bag
from depth_sr_ros.replay.bag_io import BagReader

LOG = logging.getLogger(__name__)

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TRANSPORT_ORDER = {"colour": ("compressed",), "depth": ("compressedDepth", "compressed")}
KNOWN_TRANSPORTS = ("compressed", "compressedDepth", "theora", "zstd", "ffmpeg", "h264", "qoi")
ALIGNED_WORDS = {"aligned", "registered"}
ALIGNED_SEGMENTS = {"depth_to_rgb", "depth_to_color", "depth_registered"}
NOT_DEPTH_WORDS = {"confidence", "disparity", "colorized", "colourised", "ground", "truth", "gt", "normal"}
NOT_INPUT_SEGMENTS = {"rgb_to_depth", "color_to_depth", "ground_truth"}
COLOUR_WORDS = {"color", "colour", "rgb"}
NOT_COLOUR_WORDS = {"ir", "infra", "infra1", "infra2", "infrared", "mono", "gray", "grey", "right", "depth"}
FLAGS = {"rgb": "--rgb-topic", "rgb_info": "--rgb-info-topic", "depth": "--depth-topic",
         "depth_info": "--depth-info-topic"}

# What --help names as the defaults: the names discovery looks for, per driver.
KNOWN_LAYOUTS = (
    ("the bundled sample bag", "/camera/color/image_raw", "/camera/depth/image_raw"),
    ("realsense-ros", "/camera/camera/color/image_raw",
     "/camera/camera/aligned_depth_to_color/image_raw (else /camera/camera/depth/image_rect_raw)"),
    ("Azure Kinect", "/rgb/image_raw", "/depth_to_rgb/image_raw (else /depth/image_raw)"),
    ("Orbbec", "/camera/color/image_raw", "/camera/depth/image_raw"),
    ("ZED", "/zed/zed_node/rgb/image_rect_color", "/zed/zed_node/depth/depth_registered"),
    ("RealSense Viewer .bag", "/device_0/sensor_1/Color_0/image/data", "/device_0/sensor_0/Depth_0/image/data"),
)


class TopicDiscoveryError(UsageError):
    """The recording has no obvious topic for a role; the message lists the candidates."""


@dataclass(frozen=True)
class TopicChoice:
    """The topics a replay reads; an empty info topic means none."""

    rgb: str
    rgb_info: str
    depth: str
    depth_info: str

    def describe(self) -> str:
        return (f"colour {self.rgb} (info {self.rgb_info or 'none'}), depth {self.depth} "
                f"(info {self.depth_info or 'none'})")


@dataclass(frozen=True)
class Candidate:
    """One image topic that could fill `role` ("colour" or "depth"); `rank`: lower is better."""

    topic: str
    msgtype: str
    count: int
    role: str
    info: str
    rank: tuple[int, ...]


def split_transport(topic: str) -> tuple[str, str]:
    """(`/camera/color/image_raw`, `compressed`) for `/camera/color/image_raw/compressed`; no suffix: ""."""
    base, _, last = topic.rpartition("/")
    return (base, last) if base and last in KNOWN_TRANSPORTS else (topic, "")


def _segments(topic: str) -> list[str]:
    return [s.lower() for s in split_transport(topic)[0].strip("/").split("/") if s]


def _words(segments: list[str]) -> set[str]:
    return {word for segment in segments for word in segment.split("_")}


def camera_info_for(image_topic: str, present: Mapping[str, tuple[str, int]]) -> str:
    """The CameraInfo topic beside an image topic, or "" when the recording has none."""
    if realsense_bag.stream_prefix(image_topic):
        return next(iter(realsense_bag.info_topics(image_topic, present, INFO_TYPE)), "")
    topic = split_transport(image_topic)[0].rpartition("/")[0] + "/camera_info"
    return topic if present.get(topic, ("", 0))[0] == INFO_TYPE else ""


def classify(topic: str) -> str:
    """"colour", "depth" or "" for an image topic, by its name (module docstring)."""
    kind = realsense_bag.stream_kind(topic)
    if kind:
        return {"Depth": "depth", "Color": "colour"}.get(kind, "") if topic.endswith(realsense_bag.IMAGE_SUFFIX) else ""
    segments = _segments(topic)
    words = _words(segments)
    if NOT_INPUT_SEGMENTS & set(segments):
        return ""
    if "depth" in words:
        return "" if words & NOT_DEPTH_WORDS else "depth"
    if words & NOT_COLOUR_WORDS:
        return ""
    return "colour" if words & (COLOUR_WORDS | {"left"}) else ""


def _rank(topic: str, role: str, info: str) -> tuple[int, ...]:
    segments = _segments(topic)
    namespace = segments[:-1]
    transport = split_transport(topic)[1]
    transports = TRANSPORT_ORDER[role]
    transport_rank = 0 if not transport else 1 + (transports.index(transport) if transport in transports
                                                  else len(transports))
    if role == "depth":
        aligned = bool(ALIGNED_SEGMENTS & set(segments) or ALIGNED_WORDS & _words(segments))
        first = 0 if aligned else 1
    else:
        first = 0 if COLOUR_WORDS & _words(namespace) or realsense_bag.stream_kind(topic) else 1
    unrectified = int("raw" in _words(namespace))
    return (first, unrectified, 0 if info else 1, transport_rank, _name_rank(segments[-1] if segments else "", role))


def _name_rank(name: str, role: str) -> int:
    """Among one camera's images (openni's `image_raw`, `image_color`, `image_rect_color`): colour
    rectified and in colour first, Bayer `image_raw` last; depth in its raw 16UC1 form first."""
    words = set(name.split("_"))
    if role == "colour":
        return 0 if "rect" in words and words & COLOUR_WORDS else 1 if words & COLOUR_WORDS else 2
    return 0 if "raw" in words else 1


def candidates(present: Mapping[str, tuple[str, int]]) -> list[Candidate]:
    """Every image topic that could be the colour or the depth input, best first per role."""
    found = []
    for topic, (msgtype, count) in present.items():
        role = classify(topic) if msgtype in IMAGE_TYPES else ""
        if role:
            info = camera_info_for(topic, present)
            found.append(Candidate(topic, msgtype.rsplit("/", 1)[-1], count, role, info, _rank(topic, role, info)))
    return sorted(found, key=lambda c: (c.role, c.rank, c.topic))


def format_candidates(found: list[Candidate]) -> str:
    """The candidates as a table, one topic a line."""
    if not found:
        return "  (no Image or CompressedImage topic whose name says colour or depth)"
    width = max(len(c.topic) for c in found)
    lines = [f"  {'role':<7}{'topic':<{width + 2}}{'type':<17}{'messages':>9}  camera info"]
    lines += [f"  {c.role:<7}{c.topic:<{width + 2}}{c.msgtype:<17}{c.count:>9}  {c.info or '-'}" for c in found]
    return "\n".join(lines)


def _pick(found: list[Candidate], role: str) -> tuple[Candidate | None, str]:
    """The obvious candidate of `role`, or (None, why not)."""
    mine = [c for c in found if c.role == role]
    if not mine:
        return None, f"no {role} image topic"
    if len(mine) > 1 and mine[0].rank == mine[1].rank:
        tied = [c.topic for c in mine if c.rank == mine[0].rank]
        return None, f"{len(tied)} equally likely {role} topics ({', '.join(tied)})"
    return mine[0], ""


def find_topics(present: Mapping[str, tuple[str, int]], given: Mapping[str, str | None]) -> TopicChoice:
    """The topics to replay: each role in `given` ("rgb", "rgb_info", "depth", "depth_info") set
    to a topic keeps it, `""` turns it off (an info topic, or the depth image a LiDAR replaces),
    `None` is found here.

    Raises TopicDiscoveryError naming the roles that cannot be told, with the candidate table.
    """
    found = candidates(present)
    chosen: dict[str, str] = {}
    problems = []
    for role, image_role in (("rgb", "colour"), ("depth", "depth")):
        topic = given.get(role)
        if topic == "":  # off (a LiDAR replaces the depth image)
            chosen[role] = chosen[f"{role}_info"] = ""
            continue
        if topic is None:
            best, why = _pick(found, image_role)
            if best is None:
                problems.append(f"{why} (give {FLAGS[role]})")
                continue
            topic = best.topic
        chosen[role] = topic
        info = given.get(f"{role}_info")
        if info is None:  # the colour one is required: its expected name, so that a missing one is named
            info = camera_info_for(topic, present) or (_expected_info(topic) if role == "rgb" else "")
        chosen[f"{role}_info"] = info
    if problems:
        raise TopicDiscoveryError(
            "cannot tell which topics to replay: " + "; ".join(problems) + ". Candidates in the recording:\n"
            + format_candidates(found))
    return TopicChoice(chosen["rgb"], chosen["rgb_info"], chosen["depth"], chosen["depth_info"])


def discover_in_bag(bag: Path, typestore: str, given: Mapping[str, str | None]) -> TopicChoice:
    """`find_topics` on the recording at `bag`; logs the choice in one line when it found any role."""
    with BagReader(bag, typestore) as reader:
        choice = find_topics(reader.topics(), given)
    if any(given.get(role) is None for role in FLAGS):
        LOG.info("topics: %s", choice.describe())
    return choice


def _expected_info(image_topic: str) -> str:
    if realsense_bag.stream_prefix(image_topic):
        return realsense_bag.info_topic(image_topic)
    return split_transport(image_topic)[0].rpartition("/")[0] + "/camera_info"


def help_text() -> str:
    """The default topics as --help states them: found in the recording, and the names looked for."""
    known = "; ".join(f"{name}: {rgb} + {depth}" for name, rgb, depth in KNOWN_LAYOUTS)
    return (f"default: found in the recording when it has one obvious colour/depth set, each with the camera_info "
            f"beside it ({known})")
