"""Recordings as users bring them, built with `rosbags` from the real TUM frames of samples/tum_fr1.

- `ros1_bag`: a ROS 1 `.bag` (rosbags' ROS 1 writer) with the sample bag's topics, ROS 1 field
  names (`CameraInfo.K`, Header with seq) and frame ids with a leading "/";
- `realsense_bag`: the layout the RealSense SDK / Viewer records (`realsense_bag.py`): Color_0 and
  Depth_0 streams, CameraInfo with K and D only, the rs2 distortion name, `tf/0` stream
  extrinsics, the Depth Units option, every frame id empty;
- `driver_bag`: a realsense-ros rosbag2 with a JPEG colour topic, raw depth in its own optical
  frame, /tf_static from camera_link, and (optionally) aligned depth.

The depth camera of the unregistered recordings is another camera: a wider field of view
(`DEPTH_FX_RATIO`) `BASELINE_M` beside the colour camera and turned by `ROLL_DEG`; its depth is
the TUM depth (registered to the colour camera) re-projected into it (z-buffer), so replay must
move it back. `gt_depth(name)` is the TUM depth in the colour camera, to score against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.camera_info import Intrinsics, intrinsics_from_camera_info
from depth_sr_ros.core.compressed import compressed_rgb_fields
from depth_sr_ros.core.image_msg import ImageFields
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.projection import Extrinsic, back_project, project_points
from depth_sr_ros.replay import sample_bag as sb
from depth_sr_ros.replay.bag_io import BagWriter, load_typestore

ROS1 = get_typestore(Stores.ROS1_NOETIC)
ROS2 = load_typestore("humble")
FRAMES = ("00", "01", "02")  # the sample frames with depth
EPOCH_NS = 1_700_000_000 * 10**9
PERIOD_NS = 33_333_333
DEPTH_DELAY_NS = 2_000_000
DEPTH_FX_RATIO = 0.65  # the depth camera's focal length over the colour camera's, at the same size
BASELINE_M = 0.05
ROLL_DEG = 2.0
# depth optical -> colour optical: p_colour = R p_depth + t (tf2 lookup_transform(colour, depth))
DEPTH_TO_COLOUR = Extrinsic.from_translation_quaternion(
    (BASELINE_M, 0.004, -0.002), (0.0, 0.0, math.sin(math.radians(ROLL_DEG) / 2), math.cos(math.radians(ROLL_DEG) / 2)))
OPTICAL_IN_LINK = (-0.5, 0.5, -0.5, 0.5)  # URDF optical joint rpy (-pi/2, 0, -pi/2)


def colour_info() -> Intrinsics:
    msg = rosbags_builder(ROS2).camera_info(_header2(0, ""), sb.rgb_camera_info(sb.SAMPLE_DIR / "intrinsics.json"))
    return intrinsics_from_camera_info(msg)


def depth_camera(width: int, height: int) -> Intrinsics:
    """The other camera: a wider field of view, centred, no distortion, `width x height`."""
    colour = colour_info()
    s = width / colour.width
    return Intrinsics(colour.fx * DEPTH_FX_RATIO * s, colour.fy * DEPTH_FX_RATIO * s, (width - 1) / 2,
                      (height - 1) / 2, width, height)


def gt_depth(name: str) -> np.ndarray:
    """The TUM depth of frame `name` in the colour camera, metres (NaN = none)."""
    mm = sb.read_sample_depth_mm(sb.SAMPLE_DIR, name)
    return np.where(mm > 0, mm / np.float32(1000.0), np.float32(np.nan)).astype(np.float32)


def other_camera_depth_mm(name: str, camera: Intrinsics, colour: Intrinsics) -> np.ndarray:
    """The depth the other camera sees (uint16 mm, 0 = none): the colour camera's depth (seen
    through `colour`) moved by the inverse of DEPTH_TO_COLOUR and projected, nearest surface per pixel."""
    points = back_project(gt_depth(name), colour)
    depth = project_points(DEPTH_TO_COLOUR.inverse().apply(points), camera, (camera.height, camera.width)).depth
    return np.where(np.isfinite(depth), np.rint(depth * 1000), 0).astype(np.uint16)


def _header2(stamp_ns: int, frame: str) -> Any:
    time = ROS2.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return ROS2.types["std_msgs/msg/Header"](stamp=time, frame_id=frame)


def _fields(array: np.ndarray, encoding: str) -> ImageFields:
    array = np.ascontiguousarray(array)
    return ImageFields(array.shape[0], array.shape[1], encoding, 0, array.nbytes // array.shape[0],
                       array.reshape(-1).view(np.uint8))


class Ros1Messages:
    """ROS 1 sensor_msgs built with their ROS 1 field names."""

    def __init__(self) -> None:
        self.types = ROS1.types
        self.seq = 0

    def header(self, stamp_ns: int, frame: str) -> Any:
        self.seq += 1
        time = self.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        return self.types["std_msgs/msg/Header"](seq=self.seq, stamp=time, frame_id=frame)

    def image(self, header: Any, array: np.ndarray, encoding: str) -> Any:
        f = _fields(array, encoding)
        return self.types["sensor_msgs/msg/Image"](header=header, height=f.height, width=f.width, encoding=encoding,
                                                   is_bigendian=0, step=f.step, data=f.data)

    def camera_info(self, header: Any, camera: Intrinsics, model: str = "plumb_bob", d: Any = None,
                    full: bool = True) -> Any:
        """`full`: R and P as ROS drivers fill them; False: zero, as the RealSense SDK leaves them."""
        k = np.array([camera.fx, 0, camera.cx, 0, camera.fy, camera.cy, 0, 0, 1.0])
        p = np.array([camera.fx, 0, camera.cx, 0, 0, camera.fy, camera.cy, 0, 0, 0, 1, 0]) if full else np.zeros(12)
        roi = self.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                             do_rectify=False)
        return self.types["sensor_msgs/msg/CameraInfo"](
            header=header, height=camera.height, width=camera.width, distortion_model=model,
            D=np.asarray(d if d is not None else camera.d or (0.0,) * 5, dtype=np.float64), K=k,
            R=np.eye(3).reshape(-1) if full else np.zeros(9), P=p, binning_x=0, binning_y=0, roi=roi)

    def transform(self, extrinsic: Extrinsic) -> Any:
        t, q = extrinsic.translation, extrinsic.as_quaternion()
        return self.types["geometry_msgs/msg/Transform"](
            translation=self.types["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
            rotation=self.types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))


@dataclass(frozen=True)
class Recording:
    path: Path
    rgb_stamps: tuple[int, ...]  # one per frame, in FRAMES order
    frames: tuple[str, ...] = FRAMES


def _write_ros1(path: Path, messages: list[tuple[int, str, str, Any]]) -> None:
    """(log ns, topic, msgtype, message) records into a ROS 1 bag."""
    with Ros1Writer(path) as writer:
        connections: dict[str, Any] = {}
        for log_ns, topic, msgtype, message in sorted(messages, key=lambda m: m[0]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=ROS1)
            writer.write(connections[topic], log_ns, ROS1.serialize_ros1(message, msgtype))


def ros1_bag(path: Path, decimation: int = 4) -> Recording:
    """The sample bag's topics in a ROS 1 bag: registered depth at 1/`decimation` of the colour
    size (1: the colour size)."""
    build = Ros1Messages()
    colour = colour_info()
    low = colour.scaled(colour.width // decimation, colour.height // decimation)
    records, stamps = [], []
    for i, name in enumerate(FRAMES):
        stamp = EPOCH_NS + i * PERIOD_NS
        stamps.append(stamp)
        rgb = sb.read_sample_rgb(sb.SAMPLE_DIR, name)
        depth = sb.read_sample_depth_mm(sb.SAMPLE_DIR, name)
        depth = depth if decimation == 1 else sb.decimate_depth(depth, decimation)
        frame = "/camera_rgb_optical_frame"
        records += [
            (stamp + 1, sb.RGB_TOPIC, "sensor_msgs/msg/Image", build.image(build.header(stamp, frame), rgb, "rgb8")),
            (stamp + 2, sb.RGB_INFO_TOPIC, "sensor_msgs/msg/CameraInfo",
             build.camera_info(build.header(stamp, frame), colour)),
            (stamp + DEPTH_DELAY_NS, sb.DEPTH_TOPIC, "sensor_msgs/msg/Image",
             build.image(build.header(stamp + DEPTH_DELAY_NS, frame), depth, "16UC1")),
            (stamp + DEPTH_DELAY_NS + 1, sb.DEPTH_INFO_TOPIC, "sensor_msgs/msg/CameraInfo",
             build.camera_info(build.header(stamp + DEPTH_DELAY_NS, frame), low)),
        ]
    _write_ros1(path, records)
    return Recording(path, tuple(stamps))


RS_COLOUR = "/device_0/sensor_1/Color_0"
RS_DEPTH = "/device_0/sensor_0/Depth_0"


def realsense_bag(path: Path, depth_size: tuple[int, int] = (640, 480), depth_units: float = 0.001,
                  with_extrinsics: bool = True) -> Recording:
    """A RealSense Viewer recording: the depth camera is the other camera, at `depth_size`, in
    `depth_units` metres per unit; the stream extrinsics (depth is the pin stream) say where it is
    (left out with `with_extrinsics=False`)."""
    build = Ros1Messages()
    colour = replace(colour_info(), distortion_model="", d=())  # the SDK's colour stream: no distortion
    camera = depth_camera(*depth_size)
    records: list[tuple[int, str, str, Any]] = [
        (1, "/file_version", "std_msgs/msg/UInt32", ROS1.types["std_msgs/msg/UInt32"](data=3)),
        (1, f"{RS_COLOUR}/info/camera_info", "sensor_msgs/msg/CameraInfo",
         build.camera_info(build.header(0, ""), colour, model="Inverse Brown Conrady", d=np.zeros(5), full=False)),
        (1, f"{RS_DEPTH}/info/camera_info", "sensor_msgs/msg/CameraInfo",
         build.camera_info(build.header(0, ""), camera, model="Brown Conrady", d=np.zeros(5), full=False)),
        (1, "/device_0/sensor_0/option/Depth Units/value", "std_msgs/msg/Float32",
         ROS1.types["std_msgs/msg/Float32"](data=depth_units)),
    ]
    if with_extrinsics:
        records += [(2, f"{RS_DEPTH}/tf/0", "geometry_msgs/msg/Transform", build.transform(Extrinsic.identity())),
                    (2, f"{RS_COLOUR}/tf/0", "geometry_msgs/msg/Transform", build.transform(DEPTH_TO_COLOUR))]
    stamps = []
    for i, name in enumerate(FRAMES):
        stamp = EPOCH_NS + i * PERIOD_NS
        stamps.append(stamp)
        units = np.rint(other_camera_depth_mm(name, camera, colour) * (0.001 / depth_units)).astype(np.uint16)
        log = 10**9 + i * PERIOD_NS  # the SDK logs relative to the start of the recording
        records += [
            (log, f"{RS_COLOUR}/image/data", "sensor_msgs/msg/Image",
             build.image(build.header(stamp, ""), sb.read_sample_rgb(sb.SAMPLE_DIR, name), "rgb8")),
            (log + 1, f"{RS_DEPTH}/image/data", "sensor_msgs/msg/Image",
             build.image(build.header(stamp + DEPTH_DELAY_NS, ""), units, "mono16")),
        ]
    _write_ros1(path, records)
    return Recording(path, tuple(stamps))


DRIVER = "/camera/camera"


def driver_bag(path: Path, aligned: bool, depth_size: tuple[int, int] = (640, 480),
               second_camera: str = "") -> Recording:
    """A realsense-ros rosbag2: JPEG colour, raw depth from the other camera at `depth_size` in
    camera_depth_optical_frame, /tf_static from camera_link to both optical frames, and with
    `aligned` the driver's aligned depth (the TUM depth, a quarter of the colour size) as well.
    `second_camera`: the same camera once more under that namespace (frames `rear_...`)."""
    build = rosbags_builder(ROS2)
    colour_fields = sb.rgb_camera_info(sb.SAMPLE_DIR / "intrinsics.json")
    camera = depth_camera(*depth_size)
    colour_pose = Extrinsic.from_translation_quaternion((0.0, 0.015, 0.0), OPTICAL_IN_LINK)  # colour -> link
    depth_pose = colour_pose.compose(DEPTH_TO_COLOUR)  # depth -> colour -> link

    def tf(child: str, pose: Extrinsic) -> Any:
        t, q = pose.translation, pose.as_quaternion()
        types = ROS2.types
        return types["geometry_msgs/msg/TransformStamped"](
            header=_header2(EPOCH_NS, "camera_link"), child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](x=t[0], y=t[1], z=t[2]),
                rotation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))

    depth_fields = sb.CameraInfoFields(
        camera.height, camera.width, "plumb_bob", np.zeros(5),
        np.array([camera.fx, 0, camera.cx, 0, camera.fy, camera.cy, 0, 0, 1.0]), np.eye(3).reshape(-1),
        np.array([camera.fx, 0, camera.cx, 0, 0, camera.fy, camera.cy, 0, 0, 0, 1, 0.0]))
    colour_msg = build.camera_info(_header2(0, ""), colour_fields)
    aligned_fields = sb.scaled_camera_info_fields(colour_msg, colour_fields.width // 4, colour_fields.height // 4)
    cameras = {DRIVER: "camera"} | ({second_camera: "rear"} if second_camera else {})
    topics = {}
    for ns in cameras:
        topics.update({f"{ns}/color/image_raw/compressed": "CompressedImage", f"{ns}/color/camera_info": "CameraInfo",
                       f"{ns}/depth/image_rect_raw": "Image", f"{ns}/depth/camera_info": "CameraInfo"})
        if aligned:
            topics.update({f"{ns}/aligned_depth_to_color/image_raw": "Image",
                           f"{ns}/aligned_depth_to_color/camera_info": "CameraInfo"})
    stamps = []
    with BagWriter(path, ROS2) as writer:
        for topic, kind in topics.items():
            writer.add_topic(topic, f"sensor_msgs/msg/{kind}")
        writer.add_topic("/tf_static", "tf2_msgs/msg/TFMessage")
        writer.write("/tf_static", EPOCH_NS - 1, ROS2.types["tf2_msgs/msg/TFMessage"](transforms=[
            tf(f"{frame}_{kind}_optical_frame", pose) for frame in cameras.values()
            for kind, pose in (("color", colour_pose), ("depth", depth_pose))]))
        for i, name in enumerate(FRAMES):
            stamp = EPOCH_NS + i * PERIOD_NS
            stamps.append(stamp)
            rgb = compressed_rgb_fields(sb.read_sample_rgb(sb.SAMPLE_DIR, name), "jpeg")
            depth = _fields(other_camera_depth_mm(name, camera, colour_info()), "16UC1")
            low = _fields(sb.decimate_depth(sb.read_sample_depth_mm(sb.SAMPLE_DIR, name)), "16UC1")
            for ns, frame in cameras.items():
                colour_header = _header2(stamp, f"{frame}_color_optical_frame")
                depth_header = _header2(stamp + DEPTH_DELAY_NS, f"{frame}_depth_optical_frame")
                writer.write(f"{ns}/color/image_raw/compressed", stamp + 1, build.compressed_image(colour_header, rgb))
                writer.write(f"{ns}/color/camera_info", stamp + 2, build.camera_info(colour_header, colour_fields))
                writer.write(f"{ns}/depth/image_rect_raw", stamp + DEPTH_DELAY_NS, build.image(depth_header, depth))
                writer.write(f"{ns}/depth/camera_info", stamp + DEPTH_DELAY_NS + 1,
                             build.camera_info(depth_header, depth_fields))
                if aligned:
                    aligned_header = _header2(stamp + DEPTH_DELAY_NS, f"{frame}_color_optical_frame")
                    writer.write(f"{ns}/aligned_depth_to_color/image_raw", stamp + DEPTH_DELAY_NS + 2,
                                 build.image(aligned_header, low))
                    writer.write(f"{ns}/aligned_depth_to_color/camera_info", stamp + DEPTH_DELAY_NS + 3,
                                 build.camera_info(aligned_header, aligned_fields))
    return Recording(path, tuple(stamps))
