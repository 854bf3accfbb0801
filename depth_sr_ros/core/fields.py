"""Message fields read by either ROS spelling: the one place that knows ROS 1 from ROS 2 names.

ROS 1 and ROS 2 messages carry the same data under a few different names, and `rosbags`
keeps each bag's own names (a ROS 1 `.bag` read with `AnyReader` gives `CameraInfo.K`):

| data | ROS 2 (rclpy, rosbag2) | ROS 1 (.bag) |
|---|---|---|
| CameraInfo matrices | `k`, `d`, `r`, `p` | `K`, `D`, `R`, `P` |
| Time | `sec`, `nanosec` | `secs`, `nsecs` (genpy; `rosbags` maps ROS 1 time to `sec`, `nanosec`) |
| Header | `stamp`, `frame_id` | `seq`, `stamp`, `frame_id` |

Everything else read here (Image, CompressedImage, PointCloud2, TransformStamped, Transform)
has one spelling in both. Every message reader in `core/` goes through these functions, so a
message from rclpy, a rosbag2 record or a ROS 1 record works the same.
"""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000

# Field -> the other spellings it has, tried in order after the ROS 2 name itself.
ALIASES: dict[str, tuple[str, ...]] = {
    "k": ("K",), "d": ("D",), "r": ("R",), "p": ("P",),
    "sec": ("secs",), "nanosec": ("nsecs",),
}


def msg_field(msg: Any, name: str, default: Any = None) -> Any:
    """`msg.<name>` under its ROS 2 name or its ROS 1 spelling (`ALIASES`); `default` if neither."""
    value = getattr(msg, name, None)
    if value is not None:
        return value
    for alias in ALIASES.get(name, ()):
        value = getattr(msg, alias, None)
        if value is not None:
            return value
    return default


def has_field(msg: Any, name: str) -> bool:
    """Whether `msg` has `name` under either spelling (a field set to None counts as absent)."""
    return msg_field(msg, name) is not None


def time_ns(stamp: Any) -> int:
    """A builtin_interfaces/Time (or ROS 1 time) in integer nanoseconds; a missing part counts 0."""
    return int(msg_field(stamp, "sec", 0)) * NS_PER_S + int(msg_field(stamp, "nanosec", 0))


def stamp_ns(msg: Any) -> int:
    """The header stamp of a stamped message (Image, CameraInfo, TransformStamped, ...) in ns."""
    return time_ns(msg.header.stamp)


def frame_id(msg: Any) -> str:
    """The header frame_id without a leading "/" (ROS 1 frames often have one); "" when unset."""
    return str(getattr(getattr(msg, "header", None), "frame_id", "") or "").lstrip("/")
