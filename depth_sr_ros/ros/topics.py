"""Topic names and launch remaps of the node, without ROS (depth_image_proc style relative names)."""

from __future__ import annotations

import re
from collections.abc import Mapping

NODE_NAME = "depth_sr_node"

RGB_IMAGE = "rgb/image"
RGB_INFO = "rgb/camera_info"
DEPTH_IMAGE = "depth/image"
DEPTH_INFO = "depth/camera_info"
LIDAR_POINTS = "lidar/points"
OUT_IMAGE = "depth_sr/image"
OUT_INFO = "depth_sr/camera_info"
OUT_POINTS = "depth_sr/points"
OUT_CONFIDENCE = "depth_sr/confidence"  # 32FC1 in [0, 1] beside depth_sr/image (docs/confidence.md)

INPUT_MODES = ("depth", "unaligned_depth", "lidar")
TF_INPUT_MODES = ("unaligned_depth", "lidar")  # the depth source's pose comes from TF

# image_transport names: "raw" is sensor_msgs/Image on the base topic, the others
# sensor_msgs/CompressedImage on `<base>/<transport>` (image_transport_plugins' convention)
RGB_TRANSPORTS = ("raw", "compressed")
DEPTH_TRANSPORTS = ("raw", "compressedDepth")

# launch argument -> the relative input topic it remaps
REMAP_ARGUMENTS: dict[str, str] = {
    "rgb_image": RGB_IMAGE,
    "rgb_info": RGB_INFO,
    "depth_image": DEPTH_IMAGE,
    "depth_info": DEPTH_INFO,
    "lidar_points": LIDAR_POINTS,
}


def input_topics(input_mode: str) -> tuple[str, ...]:
    """Every input of `input_mode`: the synchronised pair (RGB image, then depth image or cloud)
    followed by the CameraInfo topics, which are matched to the pair by stamp."""
    if input_mode in ("depth", "unaligned_depth"):
        return (RGB_IMAGE, DEPTH_IMAGE, RGB_INFO, DEPTH_INFO)
    if input_mode == "lidar":
        return (RGB_IMAGE, LIDAR_POINTS, RGB_INFO)
    raise ValueError(f"input_mode must be one of {INPUT_MODES}; got {input_mode!r}")


def synchronised_topics(input_mode: str) -> tuple[str, str]:
    """The two inputs the synchroniser pairs by stamp: the RGB image and the depth source."""
    first, second = input_topics(input_mode)[:2]
    return first, second


def transport_topic(resolved_base: str, transport: str) -> str:
    """The topic an image_transport `transport` uses for the (resolved, remapped) base topic."""
    return resolved_base if transport == "raw" else f"{resolved_base}/{transport}"


def output_topics() -> tuple[str, ...]:
    return (OUT_IMAGE, OUT_INFO, OUT_POINTS, OUT_CONFIDENCE)


_TOPIC_NAME = re.compile(r"^~?/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")


def is_valid_topic_name(name: str) -> bool:
    """ROS 2 topic name rules (tokens start with a letter; `_`, digits; no `//`, no trailing `/`)."""
    return bool(_TOPIC_NAME.match(name)) and "__" not in name


def remappings(targets: Mapping[str, str]) -> list[tuple[str, str]]:
    """Launch remap rules from `{remap argument: target topic}`; empty or identical targets are skipped.

    Raises `ValueError` naming the argument when a target is not a valid topic name.
    """
    rules = []
    for argument, target in targets.items():
        source = REMAP_ARGUMENTS[argument]
        target = target.strip()
        if not target or target == source:
            continue
        if not is_valid_topic_name(target):
            raise ValueError(f"{argument}:={target!r} is not a valid ROS topic name")
        rules.append((source, target))
    return rules
