"""The rclpy `MessageBuilder`: core field sets -> sensor_msgs messages the node can publish.

rclpy stores `uint8[]` fields as `array.array('B')` and takes one without checking every element
(any other sequence is checked element by element, far too slow for an image), and it wants
Python lists of floats for the CameraInfo `d`/`k`/`r`/`p` arrays (`d` is a sequence, which does
not take an ndarray). sensor_msgs is imported when the builder is made, so this module imports
without ROS.

The generated constructors copy `data` again (`array.array('B', data)`), and so does the setter
unless the message checks its fields; Image, CompressedImage and PointCloud2 are therefore built
with `check_fields=True` and get their `data` array assigned afterwards, kept as it is. The output
field sets are written into `array.array('B')` storage (`core/msg_buffer.py`), which is handed
over as it is: no copy from the field set into the message (4.9 MB for a 640x480 XYZRGB cloud).
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np

from depth_sr_ros.core.msg_buffer import backing_array
from depth_sr_ros.core.msg_build import MessageBuilder


def uint8_array(data: np.ndarray) -> array.array[int]:
    """A 1-D uint8 ndarray as the `array.array('B')` rclpy keeps for `uint8[]`: the array itself
    when `data` views one whole (`core/msg_buffer.message_bytes`, as the output field sets are
    written), else one copy."""
    owner = backing_array(data)
    if owner is not None:
        return owner
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).data)
    return out


def _keeping_data(message_class: Any) -> Any:
    """`message_class(**fields)`, with `data` (an `array.array('B')`) kept, not copied."""

    def build(**fields: Any) -> Any:
        data = fields.pop("data")
        message = message_class(check_fields=True, **fields)
        message.data = data  # with check_fields the setter keeps an array.array('B') as it is
        return message

    return build


def float_list(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def rclpy_builder() -> MessageBuilder:
    """A MessageBuilder for rclpy's sensor_msgs classes (needs a sourced ROS 2 environment)."""
    from sensor_msgs.msg import (
        CameraInfo,
        CompressedImage,
        Image,
        PointCloud2,
        PointField,
        RegionOfInterest,
    )

    types: dict[str, Any] = {
        "Image": _keeping_data(Image),
        "CompressedImage": _keeping_data(CompressedImage),
        "CameraInfo": CameraInfo,
        "PointCloud2": _keeping_data(PointCloud2),
        "PointField": PointField,
        "RegionOfInterest": RegionOfInterest,
    }
    return MessageBuilder(types, data_adapter=uint8_array, float_array_adapter=float_list)
