"""A small tf2-like transform buffer for offline replay, and the `--extrinsic` parameter.

Replay has no tf2: `TransformBuffer` is filled from the `tf2_msgs/TFMessage`s of a bag's
`/tf_static` and `/tf` topics (rosbags or rclpy messages, ROS 2 or ROS 1 `tf/tfMessage`, read
by field name through `core.fields`) and answers
`lookup(target_frame, source_frame, stamp_ns) -> Extrinsic` the way
`tf2_ros.Buffer.lookup_transform(target, source, time)` does: the returned extrinsic maps a
point in `source_frame` into `target_frame` (`p_target = R @ p_source + t`), chained through
the tree via the frames' common ancestor.

Semantics follow tf2: a TransformStamped with `header.frame_id = parent` and
`child_frame_id = child` is the pose of the child in the parent, i.e. it maps child-frame
points into the parent frame. Static transforms hold at every time. Dynamic ones are
interpolated between the two samples that bracket the stamp (linear translation, slerp
rotation); a stamp outside the samples' span (more than `max_extrapolation_ns` away) is an
error, as tf2's ExtrapolationException; stamp 0 means "latest" per edge. Frame ids are
compared without a leading "/". A missing or unconnected frame raises
FrameError("no_transform").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.fields import time_ns
from depth_sr_ros.core.projection import Extrinsic, quaternion_to_matrix

EXTRINSIC_HELP = (
    '"tx ty tz qx qy qz qw": the LiDAR (or depth camera) frame\'s pose in the RGB camera\'s optical '
    "frame, metres and a unit quaternion, i.e. p_cam = R p_lidar + t; the same numbers as "
    "`ros2 run tf2_ros static_transform_publisher --x tx ... --qw qw --frame-id <camera optical frame> "
    "--child-frame-id <lidar frame>`"
)


def parse_extrinsic(text: str) -> Extrinsic:
    """Parse `"tx ty tz qx qy qz qw"` (spaces or commas) into an `Extrinsic` source -> camera."""
    parts = text.replace(",", " ").split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 7 or not np.all(np.isfinite(values)):
        raise ValueError(f"extrinsic must be 7 numbers 'tx ty tz qx qy qz qw'; got {text!r}")
    return Extrinsic.from_translation_quaternion(tuple(values[:3]), tuple(values[3:]))


def _frame(name: str) -> str:
    return str(name).lstrip("/")


def _unit_quaternion(q: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"transform has a zero or non-finite quaternion {q}")
    return q / norm


def slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (x, y, z, w), shortest path."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: normalised lerp is exact to float precision
        return _unit_quaternion(q0 + fraction * (q1 - q0))
    theta = np.arccos(dot)
    return (np.sin((1 - fraction) * theta) * q0 + np.sin(fraction * theta) * q1) / np.sin(theta)


@dataclass
class _Samples:
    """Time-ordered samples of one dynamic parent <- child edge."""

    stamps: list[int] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    quaternions: list[np.ndarray] = field(default_factory=list)

    def insert(self, stamp: int, translation: np.ndarray, quaternion: np.ndarray) -> None:
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:  # same stamp: the later message wins
            self.translations[i], self.quaternions[i] = translation, quaternion
            return
        self.stamps.insert(i, stamp)
        self.translations.insert(i, translation)
        self.quaternions.insert(i, quaternion)

    def at(self, stamp: int, max_extrapolation_ns: int) -> Extrinsic | None:
        """The interpolated transform at `stamp` (0 = latest), or None when out of range."""
        if stamp == 0:
            i = len(self.stamps) - 1
            return Extrinsic(quaternion_to_matrix(self.quaternions[i]), self.translations[i])
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            return Extrinsic(quaternion_to_matrix(self.quaternions[i]), self.translations[i])
        if i == 0 or i == len(self.stamps):
            nearest = 0 if i == 0 else len(self.stamps) - 1
            if abs(self.stamps[nearest] - stamp) > max_extrapolation_ns:
                return None
            return Extrinsic(quaternion_to_matrix(self.quaternions[nearest]), self.translations[nearest])
        fraction = (stamp - self.stamps[i - 1]) / (self.stamps[i] - self.stamps[i - 1])
        translation = (1 - fraction) * self.translations[i - 1] + fraction * self.translations[i]
        rotation = quaternion_to_matrix(slerp(self.quaternions[i - 1], self.quaternions[i], fraction))
        return Extrinsic(rotation, translation)

    def span(self) -> str:
        return f"[{self.stamps[0]}, {self.stamps[-1]}] ns"


class TransformBuffer:
    """Static and time-stamped transforms of one tf tree; see the module docstring.

    max_extrapolation_ns: how far before the first / after the last sample of a dynamic edge a
    lookup may still use that end sample (tf2 allows none; 0 is the default).
    """

    def __init__(self, max_extrapolation_ns: int = 0) -> None:
        self.max_extrapolation_ns = int(max_extrapolation_ns)
        self._parent: dict[str, str] = {}  # child -> parent
        self._static: dict[str, Extrinsic] = {}  # child -> transform child -> parent
        self._dynamic: dict[str, _Samples] = {}

    def add_message(self, msg: Any, static: bool) -> None:
        """Add every TransformStamped of a tf2_msgs/TFMessage (`/tf_static`: static=True)."""
        for transform in msg.transforms:
            self.add(transform, static)

    def add(self, transform: Any, static: bool) -> None:
        """Add one geometry_msgs/TransformStamped. A child gets one parent (tf's tree rule): a
        new parent for a known child replaces the old edge, as tf2 does."""
        parent = _frame(transform.header.frame_id)
        child = _frame(transform.child_frame_id)
        if not parent or not child or parent == child:
            raise ValueError(f"transform needs two different frame ids; got {parent!r} <- {child!r}")
        t = transform.transform.translation
        r = transform.transform.rotation
        translation = np.array([t.x, t.y, t.z], dtype=np.float64)
        quaternion = _unit_quaternion(np.array([r.x, r.y, r.z, r.w], dtype=np.float64))
        if self._parent.get(child) != parent:
            self._static.pop(child, None)
            self._dynamic.pop(child, None)
            self._parent[child] = parent
        if static:
            self._dynamic.pop(child, None)
            self._static[child] = Extrinsic(quaternion_to_matrix(quaternion), translation)
        else:
            self._static.pop(child, None)
            self._dynamic.setdefault(child, _Samples()).insert(time_ns(transform.header.stamp), translation,
                                                                  quaternion)

    @property
    def frames(self) -> list[str]:
        return sorted(set(self._parent) | set(self._parent.values()))

    def _chain_to_root(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._parent:
            chain.append(self._parent[chain[-1]])
            if len(chain) > len(self._parent) + 1:
                raise FrameError("no_transform", f"the tf tree has a loop through {frame!r}")
        return chain

    def _edge(self, child: str, stamp_ns: int) -> Extrinsic:
        if child in self._static:
            return self._static[child]
        samples = self._dynamic[child]
        found = samples.at(stamp_ns, self.max_extrapolation_ns)
        if found is None:
            raise FrameError(
                "no_transform",
                f"transform {self._parent[child]!r} <- {child!r} is not known at {stamp_ns} ns "
                f"(samples span {samples.span()}; extrapolation limit {self.max_extrapolation_ns} ns)",
            )
        return found

    def _to_ancestor(self, chain: Iterable[str], stamp_ns: int) -> Extrinsic:
        total = Extrinsic.identity()
        for child in chain:
            total = self._edge(child, stamp_ns).compose(total)
        return total

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int) -> Extrinsic:
        """The extrinsic mapping points in `source_frame` into `target_frame` at `stamp_ns`."""
        target, source = _frame(target_frame), _frame(source_frame)
        if target == source:
            return Extrinsic.identity()
        known = self.frames
        for name in (target, source):
            if name not in known:
                raise FrameError(
                    "no_transform",
                    f"frame {name!r} is not in the tf tree (known: {', '.join(known) or 'none'}); "
                    "is /tf_static recorded in the bag, or give --extrinsic",
                )
        source_chain, target_chain = self._chain_to_root(source), self._chain_to_root(target)
        common = next((frame for frame in source_chain if frame in set(target_chain)), None)
        if common is None:
            raise FrameError(
                "no_transform",
                f"frames {target!r} and {source!r} are in different tf trees (roots "
                f"{target_chain[-1]!r} and {source_chain[-1]!r})",
            )
        source_up = self._to_ancestor(source_chain[: source_chain.index(common)], stamp_ns)
        target_up = self._to_ancestor(target_chain[: target_chain.index(common)], stamp_ns)
        return target_up.inverse().compose(source_up)
