"""RealSense SDK (and RealSense Viewer) recordings: the `.bag` layout librealsense writes.

librealsense records a ROS 1 bag (its own rosbag writer, `src/media/ros/ros_writer.cpp`) with one
topic family per stream, `/device_<d>/sensor_<s>/<Stream>_<i>/`:

| topic | type | content |
|---|---|---|
| `.../<Stream>_<i>/image/data` | sensor_msgs/Image | Depth: `mono16` in depth units; Color: `rgb8` (or bgr8, ...) |
| `.../<Stream>_<i>/info/camera_info` | sensor_msgs/CameraInfo | written once: K, D and the rs2 distortion name only (R, P zero, header unset) |
| `.../<Stream>_<i>/tf/<g>` | geometry_msgs/Transform | the stream's extrinsic in extrinsic group `g` (below) |
| `/device_<d>/sensor_<s>/option/Depth Units/value` | std_msgs/Float32 | metres per depth unit of that sensor's Depth stream |

Image headers carry the frame timestamp and no frame id worth comparing (every stream has the
same one, or none), so TF and frame ids cannot tell the streams apart: the stream extrinsics can.
Recent SDKs also record rosbag2 files in the same topic layout, with the stream extrinsics as
std_msgs/String text (`rotation=r0,...,r8;translation=t0,t1,t2`, the rs2_extrinsics rotation
column-major) beside a /tf_static, and full CameraInfos; both forms are read
(`transform_to_extrinsic`, `info_topics`).

Extrinsic direction (checked against librealsense's `device::get_extrinsics` and `convert(const
rs2_extrinsics&, geometry_msgs::Transform&)`): `tf/<g>` of stream S holds
`rs2_extrinsics` *from the group's pin (reference) stream to S*, i.e. with `R` the rotation matrix
of the quaternion (librealsense's `quat2rot`, the usual Hamilton convention) and `t` the
translation in metres, `p_S = R @ p_pin + t`, both in the streams' optical frames (x right, y
down, z forward; RealSense's own camera coordinates are the ROS optical frame). So each stream
gives `E_S: pin -> S`, and depth -> colour is `E_colour @ E_depth^-1` (when the pin is the depth
stream, as on D4xx cameras, `E_depth` is the identity and `E_colour` is the answer directly). In
tf2 terms that is `lookup_transform(colour_optical, depth_optical)`: what
`FrameProcessor.process_unaligned` takes.

The SDK names its distortion models after rs2_distortion: "Brown Conrady" is OpenCV's / ROS's
plumb_bob (k1, k2, p1, p2, k3); "None" has no distortion. "Inverse Brown Conrady" (D4xx colour)
holds the *undistorting* polynomial; its coefficients are small on those cameras, and it is read
as plumb_bob with the coefficients negated (the first-order inverse; a warning says so when any
is non-zero). Other models are kept by name, so the projection refuses them ("unsupported_distortion").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from depth_sr_ros.core.fields import msg_field
from depth_sr_ros.core.projection import Extrinsic

LOG = logging.getLogger(__name__)

STREAM = re.compile(r"^(?P<prefix>/device_(?P<device>\d+)/sensor_(?P<sensor>\d+)/(?P<stream>[A-Za-z]+)_(?P<index>\d+))/")
IMAGE_SUFFIX = "/image/data"
INFO_SUFFIX = "/info/camera_info"
DEPTH_UNITS_OPTION = "option/Depth Units/value"
DEFAULT_DEPTH_UNITS = 0.001  # metres per unit; what mono16 means everywhere else (REP 118 millimetres)
DISTORTION_MODELS = {"Brown Conrady": "plumb_bob", "Modified Brown Conrady": "plumb_bob", "None": ""}
INVERSE_BROWN_CONRADY = "Inverse Brown Conrady"


def is_realsense_layout(topics: Iterable[str]) -> bool:
    """Whether the topic names are a RealSense SDK recording's (`/device_N/sensor_N/<Stream>_N/image/data`)."""
    return any(STREAM.match(topic) and topic.endswith(IMAGE_SUFFIX) for topic in topics)


def stream_prefix(topic: str) -> str:
    """`/device_0/sensor_1/Color_0` of any topic under that stream; "" when not a stream topic."""
    match = STREAM.match(topic)
    return match.group("prefix") if match else ""


def stream_kind(topic: str) -> str:
    """The stream name of a stream topic ("Depth", "Color", "Infrared", ...); "" when not one."""
    match = STREAM.match(topic)
    return match.group("stream") if match else ""


def info_topic(image_topic: str) -> str:
    """The CameraInfo topic of a stream's image topic (the SDK's ROS 1 files)."""
    return stream_prefix(image_topic) + INFO_SUFFIX


def info_topics(image_topic: str, present: Mapping[str, tuple[str, int]], info_type: str) -> list[str]:
    """The CameraInfo topics under the stream of `image_topic`, `info/camera_info` first (the SDK's
    rosbag2 files keep theirs elsewhere in the stream's namespace)."""
    prefix = stream_prefix(image_topic) + "/"
    found = sorted(t for t, (msgtype, _) in present.items() if t.startswith(prefix) and msgtype == info_type)
    return sorted(found, key=lambda t: t != info_topic(image_topic))


def depth_units_topic(depth_image_topic: str) -> str:
    """`/device_0/sensor_0/option/Depth Units/value` for a depth stream under sensor_0."""
    match = STREAM.match(depth_image_topic)
    if not match:
        return ""
    return f"/device_{match.group('device')}/sensor_{match.group('sensor')}/{DEPTH_UNITS_OPTION}"


def extrinsic_topics(image_topic: str, present: Iterable[str]) -> list[str]:
    """The stream's `tf/<group>` topics in the recording, sorted by group."""
    prefix = stream_prefix(image_topic) + "/tf/"
    return sorted((t for t in present if t.startswith(prefix) and t[len(prefix):].isdigit()),
                  key=lambda t: int(t[len(prefix):]))


def transform_to_extrinsic(msg: Any) -> Extrinsic:
    """A stream extrinsic record as an Extrinsic (`p_stream = R p_pin + t`, module docstring): a
    geometry_msgs/Transform (the SDK's ROS 1 files), or the std_msgs/String
    `rotation=r0,...,r8;translation=t0,t1,t2` of its rosbag2 files (rs2_extrinsics as they are:
    the rotation column-major). ValueError for anything else."""
    if hasattr(msg, "translation") and hasattr(msg, "rotation"):
        t, q = msg.translation, msg.rotation
        return Extrinsic.from_translation_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
    parts = dict(part.split("=", 1) for part in str(getattr(msg, "data", "")).split(";") if "=" in part)
    try:
        rotation = np.array([float(v) for v in parts["rotation"].split(",")]).reshape(3, 3, order="F")
        translation = [float(v) for v in parts["translation"].split(",")]
    except (KeyError, ValueError) as err:
        raise ValueError(f"not a stream extrinsic: {str(getattr(msg, 'data', msg))[:80]!r}") from err
    return Extrinsic(rotation, np.asarray(translation))


@dataclass
class RealSenseStreams:
    """What a RealSense recording says about its depth and colour streams, read before replay.

    depth_units: metres per unit of the depth image (`None` = not recorded; 0.001 assumed).
    extrinsics: stream topic prefix -> {group: pin -> stream extrinsic}.
    """

    depth_topic: str
    rgb_topic: str
    depth_units: float | None = None
    extrinsics: dict[str, dict[int, Extrinsic]] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    def metadata_topics(self, present: Iterable[str]) -> list[str]:
        """The recording's topics to read first: the depth units and both streams' extrinsics."""
        present = list(present)
        topics = [t for t in (depth_units_topic(self.depth_topic),) if t in present]
        return topics + extrinsic_topics(self.depth_topic, present) + extrinsic_topics(self.rgb_topic, present)

    def add(self, topic: str, message: Any) -> None:
        """Take one message of a `metadata_topics` topic."""
        if topic.endswith(DEPTH_UNITS_OPTION):
            try:
                units = float(message.data)  # std_msgs/Float32 (ROS 1 files) or a String holding the number
            except (TypeError, ValueError):
                units = float("nan")
            if not (np.isfinite(units) and units > 0):
                LOG.warning("%s holds %r: not a depth unit; %.4g m assumed", topic, units, DEFAULT_DEPTH_UNITS)
                return
            if self.depth_units is not None and units != self.depth_units:
                LOG.warning("%s changes from %.6g to %.6g m during the recording; the first is used",
                            topic, self.depth_units, units)
                return
            self.depth_units = units
            return
        group = int(topic.rsplit("/", 1)[1])
        try:
            self.extrinsics.setdefault(stream_prefix(topic), {})[group] = transform_to_extrinsic(message)
        except ValueError as err:  # also a rotation that is not orthonormal
            LOG.warning("%s: %s; the stream extrinsic is not used", topic, err)

    def depth_to_colour(self) -> Extrinsic | None:
        """depth optical -> colour optical (`E_colour @ E_depth^-1`, module docstring), from the
        first extrinsic group both streams share; None when the recording holds none."""
        depth = self.extrinsics.get(stream_prefix(self.depth_topic), {})
        colour = self.extrinsics.get(stream_prefix(self.rgb_topic), {})
        shared = sorted(set(depth) & set(colour))
        if not shared:
            return None
        return colour[shared[0]].compose(depth[shared[0]].inverse())

    def adapt(self, topic: str, message: Any) -> Any:
        """The message as the pipeline reads it: CameraInfo completed (R = I and P = [K | 0] where
        the SDK left them zero, the distortion named as ROS does), depth in other units than
        millimetres re-expressed as 32FC1 metres. Anything else is returned as it is."""
        if topic.startswith((stream_prefix(self.depth_topic) + "/", stream_prefix(self.rgb_topic) + "/")) and \
                hasattr(message, "distortion_model"):  # a CameraInfo of either stream
            return self._camera_info(topic, message)
        if topic == self.depth_topic and self.depth_units not in (None, DEFAULT_DEPTH_UNITS):
            return self._depth_in_metres(message)
        return message

    def _camera_info(self, topic: str, msg: Any) -> Any:
        k = np.asarray(msg_field(msg, "k", ()), dtype=np.float64).reshape(-1)
        r = np.asarray(msg_field(msg, "r", ()), dtype=np.float64).reshape(-1)
        p = np.asarray(msg_field(msg, "p", ()), dtype=np.float64).reshape(-1)
        d = np.asarray(msg_field(msg, "d", ()), dtype=np.float64).reshape(-1)
        model = str(getattr(msg, "distortion_model", "") or "")
        if model == INVERSE_BROWN_CONRADY:
            if np.any(d) and topic not in self._warned:
                self._warned.add(topic)
                LOG.warning("%s: 'Inverse Brown Conrady' distortion %s read as plumb_bob with the coefficients "
                            "negated (first-order inverse)", topic, np.round(d, 5).tolist())
            model, d = "plumb_bob", -d
        else:
            model = DISTORTION_MODELS.get(model, model)
        if k.size == 9 and not np.any(r):
            r = np.eye(3).reshape(-1)
        if k.size == 9 and not np.any(p):
            p = np.hstack([k.reshape(3, 3), np.zeros((3, 1))]).reshape(-1)
        return SimpleNamespace(header=msg.header, height=msg.height, width=msg.width, distortion_model=model,
                               d=d, k=k, r=r, p=p, binning_x=getattr(msg, "binning_x", 0),
                               binning_y=getattr(msg, "binning_y", 0), roi=getattr(msg, "roi", None))

    def _depth_in_metres(self, msg: Any) -> Any:
        if str(msg.encoding) not in ("mono16", "16UC1") or int(msg.step) != 2 * int(msg.width):
            return msg  # the decoder refuses it with its own reason
        raw = np.frombuffer(memoryview(msg.data), dtype="<u2" if not msg.is_bigendian else ">u2")
        if raw.size != int(msg.width) * int(msg.height):
            return msg
        metres = np.where(raw > 0, raw * np.float32(self.depth_units), np.float32(np.nan)).astype("<f4")
        return SimpleNamespace(header=msg.header, height=msg.height, width=msg.width, encoding="32FC1",
                               is_bigendian=0, step=4 * int(msg.width), data=metres.view(np.uint8))


def describe_extrinsic(extrinsic: Extrinsic) -> str:
    """`t = (x, y, z) m, q = (x, y, z, w)`: an extrinsic as the log prints it (and --extrinsic takes it)."""
    t = ", ".join(f"{v:.4f}" for v in extrinsic.translation)
    q = ", ".join(f"{v:.5f}" for v in extrinsic.as_quaternion())
    return f"t = ({t}) m, q = ({q}) (xyzw)"


def streams_for(rgb_topic: str, depth_topic: str) -> RealSenseStreams | None:
    """The RealSense view of the chosen topics, or None when they are not RealSense stream topics."""
    if not (stream_prefix(rgb_topic) and stream_prefix(depth_topic)):
        return None
    return RealSenseStreams(depth_topic=depth_topic, rgb_topic=rgb_topic)
