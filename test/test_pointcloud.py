"""PointCloud2 fields from depth: layout, values against hand computation, NaN, stride, colour."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from depth_sr_ros.core.camera_info import Intrinsics
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.msg_buffer import backing_array
from depth_sr_ros.core.pointcloud import FLOAT32, point_cloud_fields

# 4 columns x 3 rows; fx 2, fy 4, principal point (1.5, 1).
INTRINSICS = Intrinsics(fx=2.0, fy=4.0, cx=1.5, cy=1.0, width=4, height=3)
DEPTH = np.array([[1.0, 2.0, 3.0, 2.0], [4.0, 5.0, 6.0, 7.0], [8.0, 0.5, 1.5, 2.5]], np.float32)


def point(fields, row: int, col: int) -> tuple[float, ...]:
    """x, y, z (and the raw rgb uint32, if present) of one point, decoded from the bytes."""
    start = row * fields.row_step + col * fields.point_step
    raw = fields.data[start : start + fields.point_step].tobytes()
    if fields.point_step == 16:
        return struct.unpack("<3fI", raw)
    return struct.unpack("<3f", raw)


def test_xyz_layout():
    fields = point_cloud_fields(DEPTH, INTRINSICS)
    assert (fields.height, fields.width) == (3, 4)
    assert [(f.name, f.offset, f.datatype, f.count) for f in fields.fields] == [
        ("x", 0, FLOAT32, 1),
        ("y", 4, FLOAT32, 1),
        ("z", 8, FLOAT32, 1),
    ]
    assert (fields.point_step, fields.row_step, fields.is_bigendian, fields.is_dense) == (12, 48, False, True)
    assert fields.data.dtype == np.uint8 and fields.data.shape == (3 * 48,)


@pytest.mark.parametrize(
    ("row", "col", "expected"),
    [
        # x = (u - 1.5) * z / 2, y = (v - 1) * z / 4
        (0, 0, (-0.75, -0.25, 1.0)),
        (0, 3, (1.5, -0.5, 2.0)),
        (1, 1, (-1.25, 0.0, 5.0)),
        (2, 2, (0.375, 0.375, 1.5)),
    ],
)
def test_xyz_values_by_hand(row, col, expected):
    fields = point_cloud_fields(DEPTH, INTRINSICS)
    assert point(fields, row, col) == pytest.approx(expected)


def test_invalid_depth_gives_nan_points_and_not_dense():
    depth = DEPTH.copy()
    depth[0, 1] = np.nan
    depth[1, 2] = 0.0
    depth[2, 0] = np.inf
    fields = point_cloud_fields(depth, INTRINSICS)
    assert fields.is_dense is False
    for row, col in [(0, 1), (1, 2), (2, 0)]:
        assert all(np.isnan(point(fields, row, col)))
    assert point(fields, 2, 2) == pytest.approx((0.375, 0.375, 1.5))


def test_stride_samples_rows_and_columns():
    depth = np.arange(1, 36, dtype=np.float32).reshape(5, 7)  # 5 rows x 7 columns
    intrinsics = Intrinsics(fx=10.0, fy=20.0, cx=3.0, cy=2.0, width=7, height=5)
    fields = point_cloud_fields(depth, intrinsics, stride=3)
    assert (fields.height, fields.width) == (2, 3)  # ceil(5/3), ceil(7/3)
    assert fields.row_step == 3 * 12
    # cloud (1, 2) is pixel row 3, column 6: z = depth[3, 6] = 28
    assert point(fields, 1, 2) == pytest.approx(((6 - 3) * 28 / 10, (3 - 2) * 28 / 20, 28.0))


def test_xyzrgb_packs_colour_as_0x00rrggbb():
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[1, 3] = (200, 100, 7)
    rgb[2, 0] = (1, 2, 3)
    fields = point_cloud_fields(DEPTH, INTRINSICS, rgb=rgb)
    assert [(f.name, f.offset, f.datatype) for f in fields.fields][-1] == ("rgb", 12, FLOAT32)
    assert (fields.point_step, fields.row_step) == (16, 64)
    x, y, z, packed = point(fields, 1, 3)
    assert (x, y, z) == pytest.approx(((3 - 1.5) * 7 / 2, 0.0, 7.0))
    assert packed == 200 * 65536 + 100 * 256 + 7
    assert point(fields, 2, 0)[3] == 0x010203
    # The same bits read as a float32, the way PCL and RViz unpack them.
    as_float = struct.unpack("<f", struct.pack("<I", 0x010203))[0]
    start = 2 * fields.row_step + 12
    assert fields.data[start : start + 4].view("<f4")[0] == as_float


def test_intrinsics_for_another_resolution_are_scaled():
    at_double = Intrinsics(fx=4.0, fy=8.0, cx=3.0, cy=2.0, width=8, height=6)
    fields = point_cloud_fields(DEPTH, at_double)
    # scaled by 1/2 (image_proc convention): fx 2, fy 4, cx 1.5, cy 1
    assert point(fields, 0, 3) == pytest.approx((1.5, -0.5, 2.0))


def test_mismatched_sizes_are_frame_errors():
    with pytest.raises(FrameError) as caught:
        point_cloud_fields(DEPTH, INTRINSICS, rgb=np.zeros((3, 5, 3), np.uint8))
    assert caught.value.reason == "size_mismatch"
    other_aspect = Intrinsics(fx=2.0, fy=4.0, cx=1.5, cy=1.0, width=4, height=4)
    with pytest.raises(FrameError) as caught:
        point_cloud_fields(DEPTH, other_aspect)
    assert caught.value.reason == "size_mismatch"


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("coloured", [False, True])
def test_large_cloud_bits_equal_a_per_point_reference(stride, coloured):
    """Every point of a 61x83 cloud with every kind of invalid depth against the formula applied
    point by point, the packed colour bit for bit, and the bytes live in the message buffer the
    rclpy builder hands over without a copy."""
    rng = np.random.default_rng(stride)
    depth = rng.uniform(0.2, 9.0, (61, 83)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.1] = np.nan
    depth[3, 4], depth[6, 9], depth[9, 12], depth[0, 0] = 0.0, np.inf, -1.0, -np.inf
    rgb = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    camera = Intrinsics(fx=70.0, fy=71.5, cx=40.3, cy=29.8, width=83, height=61)
    fields = point_cloud_fields(depth, camera, rgb if coloured else None, stride)

    assert backing_array(fields.data) is not None
    points = fields.data.view("<f4").reshape(fields.height, fields.width, -1)
    z = depth[::stride, ::stride]
    valid = np.isfinite(z) & (z > 0)
    for row, col in zip(*np.nonzero(valid)):
        u, v, metres = col * stride, row * stride, float(z[row, col])
        expected = ((u - camera.cx) * metres / camera.fx, (v - camera.cy) * metres / camera.fy, metres)
        np.testing.assert_allclose(points[row, col, :3], expected, rtol=1e-6, atol=1e-6)
    assert np.isnan(points[~valid][:, :3]).all()
    assert fields.is_dense is False
    if coloured:
        r, g, b = (rgb[::stride, ::stride, i].astype(np.uint32) for i in range(3))
        np.testing.assert_array_equal(points[..., 3].view("<u4"), (r << 16) | (g << 8) | b)


def test_dense_when_every_depth_is_valid():
    fields = point_cloud_fields(np.full((4, 6), 2.0, np.float32), Intrinsics(3.0, 3.0, 3.0, 2.0, 6, 4))
    assert fields.is_dense is True
    assert np.all(fields.data.view("<f4").reshape(4, 6, 3)[..., 2] == 2.0)


def structured(fields) -> np.ndarray:
    """The cloud as a numpy structured array (height x width) built from its PointField list:
    every field by name at its offset, as a reader that knows nothing of our layout reads it."""
    assert all(f.datatype == FLOAT32 and f.count == 1 for f in fields.fields)
    dtype = np.dtype({"names": [f.name for f in fields.fields], "formats": ["<f4"] * len(fields.fields),
                      "offsets": [f.offset for f in fields.fields], "itemsize": fields.point_step})
    return np.frombuffer(fields.data, dtype).reshape(fields.height, fields.width)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("coloured", [False, True])
def test_confidence_field_after_the_others_read_back_by_name(stride, coloured):
    rng = np.random.default_rng(7 + stride)
    depth = rng.uniform(0.5, 4.0, (9, 12)).astype(np.float32)
    depth[2, 4] = np.nan  # e.g. below min_confidence: a NaN point that still carries its confidence
    confidence = rng.uniform(0.0, 1.0, depth.shape).astype(np.float32)
    rgb = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    camera = Intrinsics(fx=10.0, fy=10.0, cx=6.0, cy=4.5, width=12, height=9)
    fields = point_cloud_fields(depth, camera, rgb if coloured else None, stride, confidence=confidence)

    names = [f.name for f in fields.fields]
    assert names == ["x", "y", "z", *(["rgb"] if coloured else []), "confidence"]
    assert fields.fields[-1].offset == (16 if coloured else 12)
    assert fields.point_step == (20 if coloured else 16) and fields.row_step == fields.point_step * fields.width
    cloud = structured(fields)
    np.testing.assert_array_equal(cloud["confidence"], confidence[::stride, ::stride])
    np.testing.assert_array_equal(cloud["z"], depth[::stride, ::stride])
    # the other fields are those of the cloud without confidence
    plain = structured(point_cloud_fields(depth, camera, rgb if coloured else None, stride))
    for name in plain.dtype.names:
        np.testing.assert_array_equal(cloud[name].view("<u4"), plain[name].view("<u4"), err_msg=name)
    if stride == 1:
        assert np.isnan(cloud["x"][2, 4]) and cloud["confidence"][2, 4] == confidence[2, 4]
        assert fields.is_dense is False


def test_a_confidence_of_another_size_is_a_frame_error():
    with pytest.raises(FrameError) as caught:
        point_cloud_fields(DEPTH, INTRINSICS, confidence=np.ones((3, 5), np.float32))
    assert caught.value.reason == "size_mismatch" and "confidence" in str(caught.value)
