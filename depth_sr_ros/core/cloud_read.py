"""sensor_msgs/PointCloud2 -> `N x 3` float32 points (x, y, z in metres, the cloud's frame).

Written against message *fields* (`height`, `width`, `fields`, `is_bigendian`, `point_step`,
`row_step`, `data`), so rclpy messages, `rosbags` messages and plain namespaces all work. The
x, y and z fields are found by name; their offset and datatype come from the message (any of
the eight PointField datatypes), so clouds from any driver (Velodyne, Ouster, Livox, depth
cameras; organised or not; with extra fields such as intensity or ring; padded rows) are read
the same way. NaN points are kept (organised clouds use them for missing returns);
`project_points` counts and drops them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import as_byte_array

# sensor_msgs/PointField datatype constants -> numpy type (byte order added per message)
POINT_FIELD_TYPES: dict[int, str] = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
XYZ = ("x", "y", "z")


def _xyz_dtype(msg: Any) -> np.dtype:
    """A structured dtype that picks x, y, z out of one `point_step`-byte point."""
    byte_order = ">" if msg.is_bigendian else "<"
    point_step = int(msg.point_step)
    by_name = {str(f.name): f for f in msg.fields}
    missing = [name for name in XYZ if name not in by_name]
    if missing:
        present = ", ".join(by_name) or "none"
        raise FrameError(
            "bad_point_fields", f"PointCloud2 lacks field(s) {', '.join(missing)}; it has: {present}"
        )
    formats, offsets = [], []
    for name in XYZ:
        point_field = by_name[name]
        datatype = int(point_field.datatype)
        if datatype not in POINT_FIELD_TYPES:
            raise FrameError("bad_point_fields", f"PointCloud2 field {name!r} has unknown datatype {datatype}")
        fmt = np.dtype(byte_order + POINT_FIELD_TYPES[datatype])
        offset = int(point_field.offset)
        if offset < 0 or offset + fmt.itemsize > point_step:
            raise FrameError(
                "bad_point_fields",
                f"PointCloud2 field {name!r} ({fmt.itemsize} bytes at offset {offset}) does not fit "
                f"in point_step {point_step}",
            )
        formats.append(fmt)
        offsets.append(offset)
    return np.dtype({"names": list(XYZ), "formats": formats, "offsets": offsets, "itemsize": point_step})


def points_from_cloud(msg: Any) -> np.ndarray:
    """`N x 3` float32 x, y, z (metres, in `msg.header.frame_id`) of every point of a PointCloud2.

    N = height * width; organised clouds come out in row-major order; NaN points are kept.
    Raises FrameError("bad_point_fields") when x, y or z is missing or does not fit in a
    point, and FrameError("truncated_data") when `data` is shorter than the layout needs.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    dtype = _xyz_dtype(msg)
    if height * width == 0:
        return np.empty((0, 3), dtype=np.float32)
    row_bytes = width * point_step
    if row_step < row_bytes:
        raise FrameError(
            "truncated_data", f"PointCloud2 row_step {row_step} is less than width*point_step = {row_bytes}"
        )
    data = as_byte_array(msg.data)
    needed = (height - 1) * row_step + row_bytes
    if data.size < needed:
        raise FrameError(
            "truncated_data",
            f"PointCloud2 {width}x{height} (point_step {point_step}, row_step {row_step}) needs "
            f"{needed} bytes; got {data.size}",
        )
    if height == 1 or row_step == row_bytes:
        rows = data[: height * row_bytes]
    else:  # drop row padding; `data` is contiguous (as_byte_array), so one byte is one stride unit
        byte = data.strides[0]
        rows = np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes), strides=(row_step * byte, byte))
    points = np.ascontiguousarray(rows).reshape(-1).view(dtype)
    return np.stack([points[name].astype(np.float32) for name in XYZ], axis=1)
