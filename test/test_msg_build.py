"""MessageBuilder: field sets -> rosbags messages -> CDR -> back, on real TUM frames, Humble and Jazzy."""

from __future__ import annotations

import array
import struct
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.camera_info import (
    CameraInfoFields,
    intrinsics_from_camera_info,
    scaled_camera_info_fields,
)
from depth_sr_ros.core.image_msg import ImageFields, depth_from_image, depth_to_image_fields, rgb_from_image
from depth_sr_ros.core.msg_build import MESSAGE_KEYS, MessageBuilder, rosbags_builder
from depth_sr_ros.core.pointcloud import point_cloud_fields

REPO = Path(__file__).resolve().parents[1]
TUM_SAMPLE = REPO / "depth_sr_ros" / "samples" / "tum_fr1"  # shipped in the package
STORES = [Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY]
TUM_INTRINSICS = {"fx": 517.3, "fy": 516.5, "cx": 318.6, "cy": 255.3}  # tum_fr1/intrinsics.json


def tum_frame() -> tuple[np.ndarray, np.ndarray]:
    """Frame 00 of TUM fr1: (raw depth uint16, 1/5000 m per unit; BGR colour uint8)."""
    folder = TUM_SAMPLE
    raw = cv2.imread(str(folder / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    bgr = cv2.imread(str(folder / "rgb" / "00.png"), cv2.IMREAD_COLOR)
    assert raw.dtype == np.uint16 and raw.shape == (480, 640) and bgr.shape == (480, 640, 3)
    return raw, bgr


def header(typestore):
    types = typestore.types
    stamp = types["builtin_interfaces/msg/Time"](sec=1305031102, nanosec=175304000)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id="camera_rgb_optical_frame")


def cdr_round_trip(typestore, msg):
    msgtype = msg.__msgtype__
    return typestore.deserialize_cdr(typestore.serialize_cdr(msg, msgtype), msgtype)


def camera_info_fields() -> CameraInfoFields:
    fx, fy, cx, cy = (TUM_INTRINSICS[key] for key in ("fx", "fy", "cx", "cy"))
    return CameraInfoFields(
        height=480,
        width=640,
        distortion_model="plumb_bob",
        d=np.array([0.2624, -0.9531, -0.0054, 0.0026, 1.1633]),
        k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], np.float64),
        r=np.eye(3).reshape(-1),
        p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], np.float64),
    )


@pytest.mark.parametrize("store", STORES)
def test_real_16uc1_depth_survives_cdr(store):
    typestore = get_typestore(store)
    raw, _ = tum_frame()
    depth_m = (raw / 5000.0).astype(np.float32)
    depth_m[raw == 0] = np.nan
    msg = rosbags_builder(typestore).image(header(typestore), depth_to_image_fields(depth_m, "16UC1"))
    back_msg = cdr_round_trip(typestore, msg)
    assert (back_msg.encoding, back_msg.height, back_msg.width, back_msg.step) == ("16UC1", 480, 640, 1280)
    assert back_msg.header.stamp.sec == 1305031102 and back_msg.header.frame_id == "camera_rgb_optical_frame"
    back = depth_from_image(back_msg)
    # value/5000 m = value/5 mm, rounded to the nearest millimetre (remainders 0..4 never tie)
    millimetres = (raw.astype(np.int64) + 2) // 5
    expected = np.where(raw == 0, np.nan, millimetres / 1000.0).astype(np.float32)
    np.testing.assert_array_equal(back, expected)
    assert 0.05 < np.isnan(back).mean() < 0.6  # the sensor's holes are kept as NaN


@pytest.mark.parametrize("store", STORES)
def test_real_32fc1_depth_survives_cdr_exactly(store):
    typestore = get_typestore(store)
    raw, _ = tum_frame()
    depth_m = np.where(raw == 0, np.nan, raw / 5000.0).astype(np.float32)
    msg = rosbags_builder(typestore).image(header(typestore), depth_to_image_fields(depth_m))
    back = depth_from_image(cdr_round_trip(typestore, msg))
    np.testing.assert_array_equal(back, depth_m)


@pytest.mark.parametrize("store", STORES)
def test_real_bgr8_colour_survives_cdr(store):
    typestore = get_typestore(store)
    _, bgr = tum_frame()
    fields = ImageFields(480, 640, "bgr8", 0, 640 * 3, bgr.reshape(-1))
    back_msg = cdr_round_trip(typestore, rosbags_builder(typestore).image(header(typestore), fields))
    rgb = rgb_from_image(back_msg)
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
    assert np.shares_memory(rgb, back_msg.data)


@pytest.mark.parametrize("store", STORES)
def test_camera_info_survives_cdr_and_scales(store):
    typestore = get_typestore(store)
    msg = rosbags_builder(typestore).camera_info(header(typestore), camera_info_fields())
    back = cdr_round_trip(typestore, msg)
    intrinsics = intrinsics_from_camera_info(back)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (517.3, 516.5, 318.6, 255.3)
    assert intrinsics.d == (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)
    scaled = scaled_camera_info_fields(back, 160, 120)
    np.testing.assert_allclose(scaled.k, [517.3 / 4, 0, 318.6 / 4, 0, 516.5 / 4, 255.3 / 4, 0, 0, 1])
    rebuilt = cdr_round_trip(typestore, rosbags_builder(typestore).camera_info(header(typestore), scaled))
    assert (rebuilt.width, rebuilt.height, rebuilt.binning_x, rebuilt.roi.width) == (160, 120, 0, 0)
    np.testing.assert_array_equal(rebuilt.p, scaled.p)


@pytest.mark.parametrize("store", STORES)
def test_real_xyzrgb_point_cloud_survives_cdr(store):
    typestore = get_typestore(store)
    raw, bgr = tum_frame()
    depth_m = np.where(raw == 0, np.nan, raw / 5000.0).astype(np.float32)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    intrinsics = intrinsics_from_camera_info(camera_info_fields())
    fields = point_cloud_fields(depth_m, intrinsics, rgb=rgb, stride=4)
    back = cdr_round_trip(typestore, rosbags_builder(typestore).point_cloud(header(typestore), fields))
    assert (back.height, back.width, back.point_step, back.row_step) == (120, 160, 16, 160 * 16)
    assert [f.name for f in back.fields] == ["x", "y", "z", "rgb"] and back.is_dense is False
    # a valid pixel, decoded by hand from the deserialised bytes
    rows, cols = np.nonzero(raw[::4, ::4])
    row, col = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
    start = row * back.row_step + col * back.point_step
    x, y, z, packed = struct.unpack("<3fI", back.data[start : start + 16].tobytes())
    v, u = 4 * row, 4 * col
    z_expected = raw[v, u] / 5000.0
    assert z == pytest.approx(z_expected, rel=1e-6)
    assert x == pytest.approx((u - 318.6) * z_expected / 517.3, rel=1e-5, abs=1e-6)
    assert y == pytest.approx((v - 255.3) * z_expected / 516.5, rel=1e-5, abs=1e-6)
    blue, green, red = (int(c) for c in bgr[v, u])
    assert packed == (red << 16) | (green << 8) | blue


def test_rclpy_style_adapters_with_any_keyword_constructible_types():
    builder = MessageBuilder(
        {key: SimpleNamespace for key in MESSAGE_KEYS},
        data_adapter=lambda data: array.array("B", data.tobytes()),
        float_array_adapter=lambda values: values.tolist(),
    )
    depth = np.array([[1.0, np.nan], [2.5, 0.75]], np.float32)
    image = builder.image("hdr", depth_to_image_fields(depth, "16UC1"))
    assert image.header == "hdr" and isinstance(image.data, array.array)
    np.testing.assert_array_equal(depth_from_image(image), depth)
    info = builder.camera_info("hdr", camera_info_fields())
    assert isinstance(info.d, list) and all(type(v) is float for v in info.k)
    assert intrinsics_from_camera_info(info).fx == 517.3
    assert type(info.roi.do_rectify) is bool and type(info.binning_x) is int


def test_builder_needs_every_message_type():
    types = {key: SimpleNamespace for key in MESSAGE_KEYS if key != "PointField"}
    with pytest.raises(KeyError, match="PointField"):
        MessageBuilder(types, data_adapter=bytes, float_array_adapter=list)


def test_rclpy_messages_with_the_documented_adapters():
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    std_msgs = pytest.importorskip("std_msgs.msg")
    builder = MessageBuilder(
        {key: getattr(sensor_msgs, key) for key in MESSAGE_KEYS},
        data_adapter=lambda data: array.array("B", data.tobytes()),
        float_array_adapter=lambda values: values.tolist(),
    )
    header = std_msgs.Header(frame_id="camera_rgb_optical_frame")
    depth = np.array([[1.0, np.nan, 2.5], [0.75, 3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(
        depth_from_image(builder.image(header, depth_to_image_fields(depth, "16UC1"))), depth
    )
    info = builder.camera_info(header, camera_info_fields())
    assert intrinsics_from_camera_info(info).fx == 517.3
    fields = point_cloud_fields(depth, intrinsics_from_camera_info(info).scaled(3, 2))
    cloud = builder.point_cloud(header, fields)
    assert bytes(cloud.data) == fields.data.tobytes() and cloud.is_dense is False
