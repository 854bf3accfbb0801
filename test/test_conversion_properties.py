"""Property tests (hypothesis) for the message conversions: round trips are exact, and arbitrary
field values and bytes only ever raise the package's `FrameError` (never another exception,
never a silently wrong array)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from depth_sr_ros.core.camera_info import intrinsics_from_camera_info, scaled_camera_info_fields
from depth_sr_ros.core.cloud_read import POINT_FIELD_TYPES, points_from_cloud
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import depth_from_image, depth_to_image_fields, rgb_from_image

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sizes = st.integers(1, 12)


def image(array: np.ndarray, encoding: str, padding: int = 0, big_endian: bool = False) -> SimpleNamespace:
    array = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
    rows = np.ascontiguousarray(array).reshape(array.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((rows.shape[0], padding), 0x5A, np.uint8)], axis=1)
    return SimpleNamespace(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=int(big_endian),
                           step=rows.shape[1], data=rows.reshape(-1))


@SETTINGS
@given(st.data(), sizes, sizes, st.integers(0, 5), st.booleans())
def test_millimetre_depth_round_trips_exactly(data, rows: int, cols: int, padding: int, big_endian: bool) -> None:
    millimetres = data.draw(hnp.arrays(np.uint16, (rows, cols)))
    metres = depth_from_image(image(millimetres, "16UC1", 2 * padding, big_endian))
    assert np.array_equal(np.isnan(metres), millimetres == 0)
    back = depth_to_image_fields(metres, "16UC1")
    np.testing.assert_array_equal(back.data.view("<u2").reshape(rows, cols), millimetres)


@SETTINGS
@given(st.data(), sizes, sizes, st.integers(0, 3), st.booleans())
def test_metre_depth_round_trips_exactly(data, rows: int, cols: int, padding: int, big_endian: bool) -> None:
    metres = data.draw(hnp.arrays(np.float32, (rows, cols), elements=st.floats(width=32, allow_nan=True,
                                                                                    allow_infinity=True)))
    decoded = depth_from_image(image(metres, "32FC1", 4 * padding, big_endian))
    valid = np.isfinite(metres) & (metres > 0)
    assert np.array_equal(np.isnan(decoded), ~valid)
    np.testing.assert_array_equal(decoded[valid], metres[valid])
    again = depth_from_image(SimpleNamespace(**{**vars(depth_to_image_fields(decoded)), "encoding": "32FC1"}))
    np.testing.assert_array_equal(again, decoded)


@SETTINGS
@given(st.data(), sizes, sizes, st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8"]), st.integers(0, 4))
def test_colour_round_trips_exactly(data, rows: int, cols: int, encoding: str, padding: int) -> None:
    rgb = data.draw(hnp.arrays(np.uint8, (rows, cols, 3)))
    pixels = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
    if encoding.endswith("a8"):
        pixels = np.dstack([pixels, np.full((rows, cols), 7, np.uint8)])
    np.testing.assert_array_equal(rgb_from_image(image(pixels, encoding, padding)), rgb)


@SETTINGS
@given(st.data(), st.integers(1, 4), st.integers(1, 6), st.booleans(), st.integers(0, 5))
def test_any_cloud_layout_reads_the_points_exactly(data, height: int, width: int, big_endian: bool,
                                                   row_padding: int) -> None:
    kinds = data.draw(st.lists(st.sampled_from(sorted(POINT_FIELD_TYPES)), min_size=3, max_size=3))
    order = ">" if big_endian else "<"
    formats = [np.dtype(order + POINT_FIELD_TYPES[k]) for k in kinds]
    gaps = data.draw(st.lists(st.integers(0, 3), min_size=4, max_size=4))
    offsets, position = [], gaps[0]
    for fmt, gap in zip(formats, gaps[1:]):
        offsets.append(position)
        position += fmt.itemsize + gap
    dtype = np.dtype({"names": ["x", "y", "z"], "formats": formats, "offsets": offsets, "itemsize": position})
    points = np.zeros(height * width, dtype)
    for name, fmt in zip("xyz", formats):
        info = np.iinfo(fmt) if fmt.kind in "iu" else None
        values = data.draw(hnp.arrays(fmt, height * width, elements=(
            st.integers(info.min, info.max) if info else st.floats(-1e6, 1e6, width=32))))
        points[name] = values
    rows = points.reshape(height, width).view(np.uint8).reshape(height, -1)
    rows = np.concatenate([rows, np.zeros((height, row_padding), np.uint8)], axis=1)
    fields = [SimpleNamespace(name=n, offset=o, datatype=k, count=1) for n, o, k in zip("xyz", offsets, kinds)]
    cloud = SimpleNamespace(height=height, width=width, fields=fields, is_bigendian=big_endian, point_step=position,
                            row_step=rows.shape[1], data=rows.reshape(-1))
    expected = np.stack([points[n].astype(np.float32) for n in "xyz"], axis=1)
    np.testing.assert_array_equal(points_from_cloud(cloud), expected)


@SETTINGS
@given(st.floats(1, 2000), st.floats(1, 2000), st.floats(-500, 1500), st.floats(-500, 1500), st.integers(1, 4000),
       st.integers(1, 4000))
def test_camera_info_at_its_own_size_round_trips(fx, fy, cx, cy, width, height) -> None:
    k = np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1.0])
    p = np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0.0])
    msg = SimpleNamespace(width=width, height=height, k=k, p=p, r=np.eye(3).reshape(-1), d=np.zeros(5),
                          distortion_model="plumb_bob")
    out = scaled_camera_info_fields(msg, width, height)
    np.testing.assert_array_equal(out.k, k)
    np.testing.assert_array_equal(out.p, p)
    intrinsics = intrinsics_from_camera_info(msg)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (fx, fy, cx, cy)


ENCODINGS = st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "16UC1", "mono16", "32FC1", "8UC1", "",
                             "yuv422", "64FC1"])
ints = st.integers(-5, 70)


@SETTINGS
@given(ints, ints, st.integers(-10, 300), ENCODINGS, st.integers(0, 3), st.binary(max_size=400))
def test_arbitrary_image_fields_raise_only_frame_error(height, width, step, encoding, big_endian, data) -> None:
    msg = SimpleNamespace(height=height, width=width, step=step, encoding=encoding, is_bigendian=big_endian,
                          data=data)
    for convert in (rgb_from_image, depth_from_image):
        try:
            out = convert(msg)
        except FrameError:
            continue
        assert out.shape[:2] == (height, width)


FORMATS = st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "16UC1; compressedDepth png",
                           "32FC1; compressedDepth png", "16UC1; compressedDepth", "tiff", "", "rvl"])


@SETTINGS
@given(FORMATS, st.binary(max_size=300))
def test_arbitrary_compressed_bytes_raise_only_frame_error(fmt, data) -> None:
    msg = SimpleNamespace(format=fmt, data=data)
    for convert in (rgb_from_image, depth_from_image):
        try:
            convert(msg)
        except FrameError:
            pass


field_st = st.builds(SimpleNamespace, name=st.sampled_from(["x", "y", "z", "i"]), offset=st.integers(-4, 40),
                     datatype=st.integers(0, 10), count=st.integers(0, 2))


@SETTINGS
@given(st.integers(-2, 6), st.integers(-2, 9), st.lists(field_st, max_size=5), st.integers(-4, 40),
       st.integers(-10, 200), st.booleans(), st.binary(max_size=600))
def test_arbitrary_cloud_fields_raise_only_frame_error(height, width, fields, point_step, row_step, big_endian,
                                                       data) -> None:
    cloud = SimpleNamespace(height=height, width=width, fields=fields, is_bigendian=big_endian, point_step=point_step,
                            row_step=row_step, data=data)
    try:
        points = points_from_cloud(cloud)
    except FrameError:
        return
    assert points.shape == (max(height * width, 0), 3) and points.dtype == np.float32


floats = st.floats(allow_nan=True, allow_infinity=True)


@SETTINGS
@given(st.lists(floats, max_size=12), st.lists(floats, max_size=13), st.lists(floats, max_size=10),
       st.lists(floats, max_size=6), st.integers(-3, 5000), st.integers(-3, 5000), st.integers(-1, 4),
       st.integers(-1, 4), st.integers(1, 3000), st.integers(1, 3000))
@example(k=[1e308, 0, 0, 0, 1e308, 0, 0, 0, 1], p=[1e308, 0, 0, 0, 0, 1e308, 0, 0, 0, 0, 1, 0], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
         d=[], width=1, height=1, bx=0, by=0, out_w=3000, out_h=3000)  # finite, but not once scaled
def test_arbitrary_camera_info_raises_only_frame_error(k, p, r, d, width, height, bx, by, out_w, out_h) -> None:
    msg = SimpleNamespace(k=k, p=p, r=r, d=d, width=width, height=height, binning_x=bx, binning_y=by,
                          distortion_model="plumb_bob")
    try:
        intrinsics = intrinsics_from_camera_info(msg)
        out = scaled_camera_info_fields(msg, out_w, out_h)
    except FrameError:
        return
    assert intrinsics.fx > 0 and np.isfinite(out.p).all() and np.isfinite(out.k).all()
