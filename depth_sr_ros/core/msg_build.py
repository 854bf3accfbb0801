"""Field sets (ImageFields, CompressedImageFields, CameraInfoFields, PointCloudFields) -> messages.

The same builder serves `rosbags` typestore classes (replay) and rclpy message classes (the
node): both accept construction by keyword, and only the array types they want differ, which
the two adapters given to `MessageBuilder` supply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from depth_sr_ros.core.camera_info import CameraInfoFields
from depth_sr_ros.core.compressed import CompressedImageFields
from depth_sr_ros.core.image_msg import ImageFields
from depth_sr_ros.core.pointcloud import PointCloudFields

MESSAGE_KEYS = ("Image", "CompressedImage", "CameraInfo", "PointCloud2", "PointField", "RegionOfInterest")


class MessageBuilder:
    """Builds sensor_msgs Image, CompressedImage, CameraInfo and PointCloud2 from field sets.

    `types` maps each of MESSAGE_KEYS to a message class. `data_adapter` turns a 1-D uint8
    array into what the class wants for `uint8[] data`; `float_array_adapter` does the same
    for the float64 arrays `d` (a sequence), `k`, `r` (9) and `p` (12).

    - rosbags (`rosbags_builder`): numpy arrays, uint8 for data and float64 for d/k/r/p; every
      field must be given, which this builder does.
    - rclpy: `data_adapter=lambda a: array.array("B", a.tobytes())` (rclpy stores uint8[] as
      `array.array('B')` and takes one without a per-element check; any other sequence is
      checked element by element, far too slow for an image) and
      `float_array_adapter=lambda a: a.tolist()` (a list of Python floats suits both the
      fixed `double[9]`/`double[12]` fields, which also take a float64 ndarray, and the
      `double[]` sequence `d`, which does not take an ndarray).
    Integers and booleans are passed as Python `int`/`bool`, which rclpy's setters insist on.
    The header is passed through unchanged; give the class's own Header object.
    """

    def __init__(
        self,
        types: Mapping[str, type],
        data_adapter: Callable[[np.ndarray], Any],
        float_array_adapter: Callable[[np.ndarray], Any],
    ) -> None:
        missing = [key for key in MESSAGE_KEYS if key not in types]
        if missing:
            raise KeyError(f"message types missing for {', '.join(missing)}")
        self.types = dict(types)
        self.data_adapter = data_adapter
        self.float_array_adapter = float_array_adapter

    def _floats(self, values: np.ndarray) -> Any:
        return self.float_array_adapter(np.asarray(values, dtype=np.float64).reshape(-1))

    def image(self, header: Any, fields: ImageFields) -> Any:
        """A sensor_msgs/Image with `header` and `fields`."""
        return self.types["Image"](
            header=header,
            height=int(fields.height),
            width=int(fields.width),
            encoding=str(fields.encoding),
            is_bigendian=int(fields.is_bigendian),
            step=int(fields.step),
            data=self.data_adapter(fields.data),
        )

    def compressed_image(self, header: Any, fields: CompressedImageFields) -> Any:
        """A sensor_msgs/CompressedImage with `header` and `fields`."""
        return self.types["CompressedImage"](header=header, format=str(fields.format),
                                             data=self.data_adapter(fields.data))

    def camera_info(self, header: Any, fields: CameraInfoFields) -> Any:
        """A sensor_msgs/CameraInfo with `header` and `fields`."""
        roi = fields.roi
        return self.types["CameraInfo"](
            header=header,
            height=int(fields.height),
            width=int(fields.width),
            distortion_model=str(fields.distortion_model),
            d=self._floats(fields.d),
            k=self._floats(fields.k),
            r=self._floats(fields.r),
            p=self._floats(fields.p),
            binning_x=int(fields.binning_x),
            binning_y=int(fields.binning_y),
            roi=self.types["RegionOfInterest"](
                x_offset=int(roi.x_offset),
                y_offset=int(roi.y_offset),
                height=int(roi.height),
                width=int(roi.width),
                do_rectify=bool(roi.do_rectify),
            ),
        )

    def point_cloud(self, header: Any, fields: PointCloudFields) -> Any:
        """A sensor_msgs/PointCloud2 with `header` and `fields`."""
        point_field = self.types["PointField"]
        return self.types["PointCloud2"](
            header=header,
            height=int(fields.height),
            width=int(fields.width),
            fields=[
                point_field(name=f.name, offset=int(f.offset), datatype=int(f.datatype), count=int(f.count))
                for f in fields.fields
            ],
            is_bigendian=bool(fields.is_bigendian),
            point_step=int(fields.point_step),
            row_step=int(fields.row_step),
            data=self.data_adapter(fields.data),
            is_dense=bool(fields.is_dense),
        )


def rosbags_builder(typestore: Any) -> MessageBuilder:
    """A MessageBuilder for the sensor_msgs classes of a `rosbags` typestore (numpy arrays)."""
    types = {key: typestore.types[f"sensor_msgs/msg/{key}"] for key in MESSAGE_KEYS}
    return MessageBuilder(
        types,
        data_adapter=lambda data: np.ascontiguousarray(data, dtype=np.uint8).reshape(-1),
        float_array_adapter=lambda values: np.ascontiguousarray(values, dtype=np.float64),
    )
