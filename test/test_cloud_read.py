"""PointCloud2 -> N x 3 points, for any field layout, byte order, padding and message flavour."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.cloud_read import points_from_cloud
from depth_sr_ros.core.errors import FrameError

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
PointField = TYPESTORE.types["sensor_msgs/msg/PointField"]
PointCloud2 = TYPESTORE.types["sensor_msgs/msg/PointCloud2"]
Header = TYPESTORE.types["std_msgs/msg/Header"]
Time = TYPESTORE.types["builtin_interfaces/msg/Time"]

DATATYPES = {"f4": 7, "f8": 8, "u2": 4, "i4": 5, "u1": 2}


def _cloud(records: np.ndarray, height: int = 1, row_padding: int = 0, big_endian: bool = False,
           rosbags: bool = True):
    """A PointCloud2 whose data are the bytes of the structured array `records` (one point each)."""
    dtype = records.dtype
    fields = [PointField(name=name, offset=dtype.fields[name][1], datatype=DATATYPES[dtype.fields[name][0].str[1:]],
                         count=1) for name in dtype.names]
    width = records.size // height
    rows = records.reshape(height, width).view(np.uint8).reshape(height, -1)
    rows = np.concatenate([rows, np.full((height, row_padding), 0xAB, dtype=np.uint8)], axis=1)
    kwargs = {"height": height, "width": width, "fields": fields, "is_bigendian": big_endian,
              "point_step": dtype.itemsize, "row_step": rows.shape[1], "data": rows.reshape(-1), "is_dense": False}
    if rosbags:
        return PointCloud2(header=Header(stamp=Time(sec=1, nanosec=0), frame_id="lidar"), **kwargs)
    kwargs["data"] = bytes(kwargs["data"])
    return SimpleNamespace(**kwargs)


def _expected(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    xyz = rng.uniform(-50, 50, (n, 3)).astype(np.float32)
    xyz[1] = np.nan  # a missing return in an organised cloud
    return xyz


def test_velodyne_like_layout_with_extra_fields() -> None:
    xyz = _expected(12)
    # x y z padding intensity ring, 22 bytes a point, like velodyne_pointcloud's XYZIR
    dtype = np.dtype({"names": ["x", "y", "z", "intensity", "ring"], "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
                      "offsets": [0, 4, 8, 16, 20], "itemsize": 22})
    records = np.zeros(12, dtype=dtype)
    records["x"], records["y"], records["z"] = xyz.T
    records["intensity"], records["ring"] = 7.0, 3
    points = points_from_cloud(_cloud(records))
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points, xyz)


@pytest.mark.parametrize("rosbags", [True, False])
def test_fields_out_of_order_float64_big_endian_organised_with_row_padding(rosbags: bool) -> None:
    xyz = _expected(12).astype(np.float64)
    dtype = np.dtype({"names": ["z", "intensity", "x", "y"], "formats": [">f8", ">f4", ">f8", ">f8"],
                      "offsets": [0, 8, 12, 20], "itemsize": 32})
    records = np.zeros(12, dtype=dtype)
    records["x"], records["y"], records["z"] = xyz.T
    points = points_from_cloud(_cloud(records, height=3, row_padding=5, big_endian=True, rosbags=rosbags))
    np.testing.assert_array_equal(points, xyz.astype(np.float32))


def test_integer_fields_are_read_as_numbers() -> None:
    dtype = np.dtype({"names": ["x", "y", "z"], "formats": ["<i4", "<i4", "<u2"], "offsets": [0, 4, 8],
                      "itemsize": 10})
    records = np.zeros(3, dtype=dtype)
    records["x"], records["y"], records["z"] = [-1, 2, 3], [4, -5, 6], [7, 8, 65535]
    points = points_from_cloud(_cloud(records))
    np.testing.assert_array_equal(points, [[-1, 4, 7], [2, -5, 8], [3, 6, 65535]])


def test_empty_cloud() -> None:
    records = np.zeros(0, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")]))
    points = points_from_cloud(_cloud(records))
    assert points.shape == (0, 3)


def test_truncated_data_is_a_frame_error() -> None:
    records = np.zeros(10, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")]))
    msg = _cloud(records, rosbags=False)
    msg.data = msg.data[:-1]
    with pytest.raises(FrameError) as error:
        points_from_cloud(msg)
    assert error.value.reason == "truncated_data"


def test_missing_z_is_a_frame_error() -> None:
    records = np.zeros(4, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("intensity", "<f4")]))
    with pytest.raises(FrameError) as error:
        points_from_cloud(_cloud(records))
    assert error.value.reason == "bad_point_fields"
    assert "z" in str(error.value)


def test_field_beyond_point_step_is_a_frame_error() -> None:
    records = np.zeros(4, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")]))
    msg = _cloud(records, rosbags=False)
    msg.fields[2].offset = 10  # 4 bytes at 10 > point_step 12
    with pytest.raises(FrameError) as error:
        points_from_cloud(msg)
    assert error.value.reason == "bad_point_fields"
