"""The benchmarks' input: the sample frames (samples/tum_fr1, TUM RGB-D fr1) as `rosbags`
sensor_msgs messages, and the node's message builder over the rosbags classes.

`sample_frames` gives rgb8 RGB at the asked size, 16UC1 millimetre depth decimated by the scale
and CameraInfo for both (`depth-sr bench`, the soak's bag); `node_builder` is the node's
`MessageBuilder` with its rclpy adapters (`ros/rclpy_messages.py`), since rclpy is absent offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass
class SampleFrame:
    """One synchronised quadruple of rosbags messages."""

    rgb: Any
    rgb_info: Any
    depth: Any
    depth_info: Any

    @property
    def nbytes(self) -> int:
        return int(self.rgb.data.nbytes + self.depth.data.nbytes)


def sample_frames(height: int, width: int, scale: int, typestore: str = "humble") -> list[SampleFrame]:
    """The sample frames as rosbags messages: `width`x`height` rgb8, depth 16UC1 at 1/`scale`."""
    from depth_sr_ros.core.camera_info import scaled_camera_info_fields
    from depth_sr_ros.core.image_msg import ImageFields
    from depth_sr_ros.core.msg_build import rosbags_builder
    from depth_sr_ros.replay.bag_io import load_typestore
    from depth_sr_ros.replay.sample_bag import (
        FRAMES,
        FRAMES_WITHOUT_DEPTH,
        SAMPLE_DIR,
        decimate_depth,
        read_sample_depth_mm,
        read_sample_rgb,
        rgb_camera_info,
    )

    store = load_typestore(typestore)
    build = rosbags_builder(store)
    header = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="camera_color_optical_frame"
    )
    native_info = build.camera_info(header, rgb_camera_info(SAMPLE_DIR / "intrinsics.json"))
    rgb_info = build.camera_info(header, scaled_camera_info_fields(native_info, width, height))
    rows_lr, cols_lr = math.ceil(height / scale), math.ceil(width / scale)
    depth_info = build.camera_info(header, scaled_camera_info_fields(native_info, cols_lr, rows_lr))

    frames = []
    for name in FRAMES:
        if name in FRAMES_WITHOUT_DEPTH:
            continue
        rgb = read_sample_rgb(SAMPLE_DIR, name)
        depth_mm = read_sample_depth_mm(SAMPLE_DIR, name)
        if rgb.shape[:2] != (height, width):
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            depth_mm = cv2.resize(depth_mm, (width, height), interpolation=cv2.INTER_NEAREST)
        if scale % 2 == 0 and height % scale == 0 and width % scale == 0:
            depth_lr = decimate_depth(depth_mm, scale)
        else:
            depth_lr = cv2.resize(depth_mm, (cols_lr, rows_lr), interpolation=cv2.INTER_NEAREST)
        depth_lr = np.ascontiguousarray(depth_lr.astype("<u2"))
        rgb_fields = ImageFields(height, width, "rgb8", 0, width * 3, np.ascontiguousarray(rgb).reshape(-1))
        depth_fields = ImageFields(rows_lr, cols_lr, "16UC1", 0, cols_lr * 2, depth_lr.view(np.uint8).reshape(-1))
        frames.append(
            SampleFrame(build.image(header, rgb_fields), rgb_info, build.image(header, depth_fields), depth_info)
        )
    return frames


def node_builder(typestore: str = "humble"):
    """The node's MessageBuilder adapters (rclpy) over the rosbags message classes."""
    from depth_sr_ros.core.msg_build import MESSAGE_KEYS, MessageBuilder
    from depth_sr_ros.replay.bag_io import load_typestore
    from depth_sr_ros.ros.rclpy_messages import float_list, uint8_array

    store = load_typestore(typestore)
    types = {key: store.types[f"sensor_msgs/msg/{key}"] for key in MESSAGE_KEYS}
    return MessageBuilder(types, data_adapter=uint8_array, float_array_adapter=float_list)
