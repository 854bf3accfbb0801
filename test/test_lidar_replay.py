"""Projected inputs: process_lidar / process_unaligned, and replay of a LiDAR-like bag from real frames."""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from depth_sr_ros.core.camera_info import CameraInfoFields, Intrinsics, intrinsics_from_camera_info
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.frame_processor import FrameProcessor, OutputConfig
from depth_sr_ros.core.image_msg import ImageFields, depth_from_image
from depth_sr_ros.core.metrics import depth_metrics
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pipeline import DepthSR, SRConfig
from depth_sr_ros.core.pointcloud import FLOAT32, PointCloudFields, PointFieldSpec
from depth_sr_ros.core.projection import Extrinsic, back_project, project_points
from depth_sr_ros.core.resample import fill_holes
from depth_sr_ros.replay import sample_bag
from depth_sr_ros.replay.bag_io import BagReader, BagWriter, load_typestore
from depth_sr_ros.replay.config import ReplayConfig
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.writer import OUTPUT_IMAGE_TOPIC
from depth_sr_ros.tools import replay as replay_tool

# REP 103 body (x forward, y left, z up) -> optical (x right, y down, z forward)
BODY_TO_OPTICAL_Q = (0.5, -0.5, 0.5, 0.5)
LIDAR_FIELDS = [PointFieldSpec("x", 0, FLOAT32), PointFieldSpec("y", 4, FLOAT32), PointFieldSpec("z", 8, FLOAT32),
                PointFieldSpec("intensity", 12, FLOAT32)]


def lidar_cloud_fields(points: np.ndarray) -> PointCloudFields:
    """An unorganised x, y, z, intensity float32 cloud (16-byte points, as Velodyne/Ouster drivers)."""
    packed = np.zeros((len(points), 4), dtype="<f4")
    packed[:, :3] = points
    packed[:, 3] = 100.0
    data = packed.reshape(-1).view(np.uint8)
    return PointCloudFields(height=1, width=len(points), fields=LIDAR_FIELDS, is_bigendian=False, point_step=16,
                            row_step=16 * len(points), data=data, is_dense=False)


def _namespace_cloud(points: np.ndarray) -> SimpleNamespace:
    fields = lidar_cloud_fields(points)
    return SimpleNamespace(**{**vars(fields), "data": fields.data.tobytes()})


def _image_msg(rgb: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", is_bigendian=0,
                           step=rgb.shape[1] * 3, data=rgb.tobytes())


def _info_msg(camera: Intrinsics) -> SimpleNamespace:
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    return SimpleNamespace(width=camera.width, height=camera.height, distortion_model=camera.distortion_model,
                           d=list(camera.d), k=[fx, 0, cx, 0, fy, cy, 0, 0, 1], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0])


SMALL = Intrinsics(fx=60.0, fy=60.0, cx=31.5, cy=23.5, width=64, height=48, distortion_model="plumb_bob",
                   d=(0.02, -0.01, 0.0, 0.0, 0.0))
LIDAR_TO_CAMERA = Extrinsic.from_translation_quaternion((0.02, -0.1, -0.05), BODY_TO_OPTICAL_Q)


def _box_scene() -> tuple[np.ndarray, np.ndarray]:
    """RGB and depth (metres) of a bright box at 1.2 m before a dark wall at 2.5 m, 64 x 48."""
    rgb = np.full((48, 64, 3), 40, np.uint8)
    depth = np.full((48, 64), 2.5, np.float32)
    rgb[14:34, 20:44] = 210
    depth[14:34, 20:44] = 1.2
    return rgb, depth


def _every_other_row_cloud(depth: np.ndarray, camera: Intrinsics) -> np.ndarray:
    """The scene's points on every other image row, in the LiDAR frame."""
    sparse = np.full_like(depth, np.nan)
    sparse[::2] = depth[::2]
    return LIDAR_TO_CAMERA.inverse().apply(back_project(sparse, camera))


@pytest.fixture(scope="module")
def processor() -> FrameProcessor:
    return FrameProcessor(DepthSR(SRConfig(scale=2, backbone="normalized_conv", max_hole_radius=2)))


def test_process_lidar_recovers_the_scene_with_counts_and_the_usual_outputs(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    lidar_points = _every_other_row_cloud(depth, SMALL)
    extra = np.array([[np.nan, 0, 0], [-3.0, 0.0, 0.0], [1.0, 5.0, 0.0]])  # NaN, behind, far out to the left
    cloud = _namespace_cloud(np.concatenate([lidar_points, extra]))
    out = processor.process_lidar(_image_msg(rgb), _info_msg(SMALL), cloud, LIDAR_TO_CAMERA, want_points=True)
    assert out.depth.shape == (48, 64)
    assert (out.image.width, out.image.height, out.image.encoding) == (64, 48, "32FC1")
    assert (out.camera_info.width, out.camera_info.height) == (64, 48)
    assert out.points is not None and (out.points.width, out.points.height) == (64, 48)
    counts = out.input_counts
    assert sum(counts.values()) == len(lidar_points) + 3
    assert (counts["nan"], counts["behind"], counts["outside"]) == (1, 1, 1)
    # 24 x 32 grid: each grid row gets one LiDAR row; two points per grid pixel, the nearer kept
    assert counts["kept"] == 24 * 32 and counts["occluded"] == len(lidar_points) - 24 * 32
    assert "project" in out.timings_ms
    finite = np.isfinite(out.depth)
    assert finite.mean() > 0.95
    error = np.abs(out.depth - depth)[finite]
    assert np.median(error) < 0.01 and np.mean(error > 0.3) < 0.03


def test_process_lidar_without_points_in_view_is_a_frame_error(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    behind_the_camera = Extrinsic.from_translation_quaternion((0, 0, 0), (0.0, 1.0, 0.0, 0.0)).compose(
        LIDAR_TO_CAMERA)
    cloud = _namespace_cloud(_every_other_row_cloud(depth, SMALL))
    with pytest.raises(FrameError) as error:
        processor.process_lidar(_image_msg(rgb), _info_msg(SMALL), cloud, behind_the_camera, want_points=False)
    assert error.value.reason == "no_points_in_view"


def test_process_lidar_bad_cloud_and_missing_info_are_frame_errors(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    cloud = _namespace_cloud(_every_other_row_cloud(depth, SMALL))
    with pytest.raises(FrameError) as error:
        processor.process_lidar(_image_msg(rgb), None, cloud, LIDAR_TO_CAMERA, want_points=False)
    assert error.value.reason == "missing_camera_info"
    cloud.data = cloud.data[:-3]
    with pytest.raises(FrameError) as error:
        processor.process_lidar(_image_msg(rgb), _info_msg(SMALL), cloud, LIDAR_TO_CAMERA, want_points=False)
    assert error.value.reason == "truncated_data"


def test_process_unaligned_registers_a_tof_camera_beside_the_rgb_camera(processor: FrameProcessor) -> None:
    rgb, depth = _box_scene()
    # a 32 x 24 ToF camera 6 cm to the right of the RGB camera, with its own intrinsics
    tof = Intrinsics(fx=28.0, fy=28.0, cx=16.2, cy=11.8, width=32, height=24)
    tof_to_rgb = Extrinsic(np.eye(3), np.array([0.06, 0.0, 0.0]))
    tof_depth = project_points(tof_to_rgb.inverse().apply(back_project(depth, SMALL)), tof, (24, 32)).depth
    millimetres = np.nan_to_num(np.rint(tof_depth * 1000), nan=0).astype(np.uint16)
    depth_msg = SimpleNamespace(height=24, width=32, encoding="16UC1", is_bigendian=0, step=64,
                                data=millimetres.tobytes())
    wrong = {}
    for name, extrinsic in (("registered", tof_to_rgb), ("taken as aligned", Extrinsic.identity())):
        out = processor.process_unaligned(_image_msg(rgb), _info_msg(SMALL), depth_msg, _info_msg(tof), extrinsic,
                                          want_points=False)
        assert sum(out.input_counts.values()) == 24 * 32
        finite = np.isfinite(out.depth)
        assert finite.mean() > 0.9
        error = np.abs(out.depth - depth)[finite]
        wrong[name] = np.mean(error > 0.3)  # pixels on the wrong side of the box's edge
        assert np.median(error) < 0.01
    # the 6 cm baseline shifts the box's edges by about 1.5 px; registration puts them back
    # (what stays wrong is the coarse ToF's edge footprint and the wall the ToF cannot see)
    assert wrong["registered"] < 0.07 and wrong["registered"] < 0.75 * wrong["taken as aligned"]
    # the same image taken as registered is refused, not silently misaligned
    with pytest.raises(FrameError) as refused:
        processor.process(_image_msg(rgb), _info_msg(SMALL), depth_msg, _info_msg(tof), want_points=False)
    assert refused.value.reason == "unregistered_depth"
    with pytest.raises(FrameError) as missing:
        processor.process_unaligned(_image_msg(rgb), _info_msg(SMALL), depth_msg, None, tof_to_rgb, False)
    assert missing.value.reason == "missing_camera_info"


# --- replay of a LiDAR-like bag built from the real TUM frames ------------------------------------

SECOND = 1_000_000_000
CAMERA_PERIOD = 33_333_333  # 30 Hz
LIDAR_OFFSET = 7_000_000  # a scan is stamped 7 ms after the camera frame it pairs with (10 Hz)
EPOCH = 1_700_000_000 * SECOND
RGB_TOPIC, INFO_TOPIC, GT_TOPIC, LIDAR_TOPIC = "/camera/color/image_raw", "/camera/color/camera_info", \
    "/camera/depth/ground_truth", "/points"
CAMERA_FRAME, LIDAR_FRAME = "camera_color_optical_frame", "velodyne"
# URDF-style mounting: base_link -> camera_link -> optical frame (rpy -pi/2, 0, -pi/2), base_link -> velodyne
OPTICAL_IN_BODY = (-0.5, 0.5, -0.5, 0.5)
BASE_TO_CAMERA_LINK = ((0.10, 0.0, 0.30), (0.0, 0.0, 0.0, 1.0))
BASE_TO_VELODYNE = ((0.06, 0.01, 0.38), (0.0, 0.0, 0.0174524, 0.9998477))  # 2 degrees of yaw


def true_lidar_to_camera() -> Extrinsic:
    """velodyne -> optical frame, composed by hand from the mounting above."""
    camera_link = Extrinsic.from_translation_quaternion(*BASE_TO_CAMERA_LINK)  # camera_link -> base
    optical = Extrinsic.from_translation_quaternion((0, 0, 0), OPTICAL_IN_BODY)  # optical -> camera_link
    velodyne = Extrinsic.from_translation_quaternion(*BASE_TO_VELODYNE)  # velodyne -> base
    return camera_link.compose(optical).inverse().compose(velodyne)


def ring_scan(points_lidar: np.ndarray, rings: int = 32, fov_deg: tuple[float, float] = (-22.5, 22.5),
              azimuth_step_deg: float = 0.35, beam_tolerance_deg: float = 0.06) -> np.ndarray:
    """A spinning-LiDAR subset of dense points (LiDAR frame, z up): `rings` beams evenly spread over
    `fov_deg` elevation, one return per beam and azimuth step, the nearest (first) return."""
    x, y, z = points_lidar.T
    elevation = np.degrees(np.arctan2(z, np.hypot(x, y)))
    azimuth = np.degrees(np.arctan2(y, x))
    spacing = (fov_deg[1] - fov_deg[0]) / (rings - 1)
    beam = np.rint((elevation - fov_deg[0]) / spacing).astype(np.int64)
    on_beam = (beam >= 0) & (beam < rings) & (np.abs(elevation - (fov_deg[0] + beam * spacing)) < beam_tolerance_deg)
    cell = beam * 10**6 + np.floor(azimuth / azimuth_step_deg).astype(np.int64)
    distance = np.linalg.norm(points_lidar, axis=1)
    order = np.lexsort((distance, cell))
    order = order[on_beam[order]]
    first = np.ones(order.size, dtype=bool)
    first[1:] = cell[order][1:] != cell[order][:-1]
    return points_lidar[order[first]]


def nearest_fill(sparse: np.ndarray) -> np.ndarray:
    """Nearest-neighbour interpolation of the finite pixels of `sparse` (everywhere; nearest by
    the 5x5-mask Euclidean distance transform of OpenCV, as the pipeline's own hole fill)."""
    valid = np.isfinite(sparse)
    return fill_holes(np.where(valid, sparse, 0).astype(np.float32), valid)


def linear_fill(sparse: np.ndarray) -> np.ndarray:
    """Linear interpolation over the Delaunay triangulation of the finite pixels of `sparse`
    (what scipy's griddata(method="linear") computes), NaN outside their convex hull."""
    h, w = sparse.shape
    rows, cols = np.nonzero(np.isfinite(sparse))
    subdiv = cv2.Subdiv2D((-w, -h, 3 * w, 3 * h))  # a margin: OpenCV 4.11 drops hull triangles of a tight rect
    subdiv.insert([(float(c), float(r)) for r, c in zip(rows, cols)])
    triangles = subdiv.getTriangleList().reshape(-1, 3, 2)
    inside = np.all((triangles[..., 0] >= 0) & (triangles[..., 0] < w) & (triangles[..., 1] >= 0)
                    & (triangles[..., 1] < h), axis=1)  # drop triangles on Subdiv2D's outer vertices
    vertices = np.rint(triangles[inside]).astype(np.int32)
    owner = np.full((h, w), -1, np.int32)
    for index, triangle in enumerate(vertices):
        cv2.fillConvexPoly(owner, triangle, int(index))
    py, px = np.nonzero(owner >= 0)
    tri = vertices[owner[py, px]].astype(np.float64)
    (x1, y1), (x2, y2), (x3, y3) = tri[:, 0].T, tri[:, 1].T, tri[:, 2].T
    det = (y2 - y3) * (x1 - x3) + (x3 - x2) * (y1 - y3)
    ok = det != 0
    det = np.where(ok, det, 1.0)
    l1 = ((y2 - y3) * (px - x3) + (x3 - x2) * (py - y3)) / det
    l2 = ((y3 - y1) * (px - x3) + (x1 - x3) * (py - y3)) / det
    depth_at = [sparse[tri[:, k, 1].astype(int), tri[:, k, 0].astype(int)] for k in range(3)]
    out = np.full((h, w), np.nan, np.float32)
    out[py[ok], px[ok]] = (l1 * depth_at[0] + l2 * depth_at[1] + (1 - l1 - l2) * depth_at[2])[ok]
    return out


def test_linear_fill_reproduces_a_plane_and_nearest_fill_copies_samples() -> None:
    rng = np.random.default_rng(3)
    sparse = np.full((40, 50), np.nan, np.float32)
    rows, cols = rng.integers(0, 40, 60), rng.integers(0, 50, 60)
    sparse[rows, cols] = 1.0 + 0.02 * rows + 0.01 * cols
    sparse[0, 0], sparse[0, 49], sparse[39, 0], sparse[39, 49] = 1.0, 1.49, 1.78, 2.27  # hull = image
    plane = 1.0 + 0.02 * np.arange(40)[:, None] + 0.01 * np.arange(50)[None, :]
    linear = linear_fill(sparse)
    assert np.isfinite(linear[1:-1, 1:-1]).all()  # Subdiv2D may leave pixels on the hull's own edges
    assert np.isfinite(linear).mean() > 0.98
    np.testing.assert_allclose(linear[np.isfinite(linear)], plane[np.isfinite(linear)], atol=1e-5)
    nearest = nearest_fill(sparse)
    np.testing.assert_array_equal(nearest[np.isfinite(sparse)], sparse[np.isfinite(sparse)])
    assert set(np.unique(nearest)) <= set(np.unique(sparse[np.isfinite(sparse)]))


def _tum_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB, depth in metres with NaN holes) of the bundled TUM frames that have their own depth."""
    frames = []
    for name in sample_bag.FRAMES:
        if name in sample_bag.FRAMES_WITHOUT_DEPTH:
            continue
        bgr = cv2.imread(str(sample_bag.SAMPLE_DIR / "rgb" / f"{name}.png"), cv2.IMREAD_COLOR)
        raw = cv2.imread(str(sample_bag.SAMPLE_DIR / "depth" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        depth = raw.astype(np.float32) / np.float32(sample_bag.TUM_DEPTH_PER_METRE)
        depth[raw == 0] = np.nan
        frames.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth))
    return frames


def _transform(store, parent: str, child: str, pose, stamp_ns: int = 0):
    (tx, ty, tz), (qx, qy, qz, qw) = pose
    types = store.types
    return types["geometry_msgs/msg/TransformStamped"](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // SECOND, nanosec=stamp_ns % SECOND),
            frame_id=parent),
        child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=tx, y=ty, z=tz),
            rotation=types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw)))


def write_lidar_bag(path, with_tf: bool = True, rings: int = 32) -> dict[str, object]:
    """RGB + CameraInfo + ground truth at 30 Hz and a `rings`-ring LiDAR at 10 Hz, from the TUM frames.

    Camera frame 3i shows TUM frame i; the two camera frames after it show frame i + 1 (they
    pair with no scan). Scan i is TUM frame i's depth back-projected (plumb_bob undistorted),
    moved into the velodyne frame and cut to a ring pattern (`ring_scan`); it is stamped 7 ms after camera
    frame 3i. /tf_static holds the mounting (base_link -> camera_link -> optical, base_link ->
    velodyne). Returns the RGB stamps that should be processed, the sparse clouds (camera frame)
    and the frames.
    """
    store = load_typestore("humble")
    build = rosbags_builder(store)
    info_fields = sample_bag.rgb_camera_info(sample_bag.SAMPLE_DIR / "intrinsics.json")
    frames = _tum_frames()
    lidar_to_camera = true_lidar_to_camera()

    def header(stamp: int, frame_id: str):
        time = store.types["builtin_interfaces/msg/Time"](sec=stamp // SECOND, nanosec=stamp % SECOND)
        return store.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)

    def image(array: np.ndarray, encoding: str) -> ImageFields:
        array = np.ascontiguousarray(array)
        return ImageFields(array.shape[0], array.shape[1], encoding, 0, array.nbytes // array.shape[0],
                           array.reshape(-1).view(np.uint8))

    camera = intrinsics_from_camera_info(build.camera_info(header(0, CAMERA_FRAME), info_fields))
    records, paired_stamps, clouds_in_camera = [], [], []
    for k in range(3 * len(frames)):
        stamp = EPOCH + k * CAMERA_PERIOD
        rgb, depth = frames[(k + 2) // 3 % len(frames)]
        millimetres = np.nan_to_num(np.rint(depth * 1000), nan=0).astype(np.uint16)
        records += [(stamp + 5_000_000, RGB_TOPIC, build.image(header(stamp, CAMERA_FRAME), image(rgb, "rgb8"))),
                    (stamp + 5_000_001, INFO_TOPIC, build.camera_info(header(stamp, CAMERA_FRAME), info_fields)),
                    (stamp + 5_000_002, GT_TOPIC, build.image(header(stamp, CAMERA_FRAME),
                                                              image(millimetres, "16UC1")))]
        if k % 3 == 0:
            scan = ring_scan(lidar_to_camera.inverse().apply(back_project(depth, camera)), rings)
            clouds_in_camera.append(lidar_to_camera.apply(scan))
            paired_stamps.append(stamp)
            cloud = build.point_cloud(header(stamp + LIDAR_OFFSET, LIDAR_FRAME), lidar_cloud_fields(scan))
            records.append((stamp + LIDAR_OFFSET + 20_000_000, LIDAR_TOPIC, cloud))
    if with_tf:
        tf_static = store.types["tf2_msgs/msg/TFMessage"](transforms=[
            _transform(store, "base_link", "camera_link", BASE_TO_CAMERA_LINK),
            _transform(store, "camera_link", CAMERA_FRAME, ((0.0, 0.0, 0.0), OPTICAL_IN_BODY)),
            _transform(store, "base_link", LIDAR_FRAME, BASE_TO_VELODYNE)])
        records.append((EPOCH, "/tf_static", tf_static))
    with BagWriter(path, store) as writer:
        for topic, msgtype in ((RGB_TOPIC, "sensor_msgs/msg/Image"), (INFO_TOPIC, "sensor_msgs/msg/CameraInfo"),
                               (GT_TOPIC, "sensor_msgs/msg/Image"), (LIDAR_TOPIC, "sensor_msgs/msg/PointCloud2")):
            writer.add_topic(topic, msgtype)
        if with_tf:
            writer.add_topic("/tf_static", "tf2_msgs/msg/TFMessage")
        for log_time, topic, message in sorted(records, key=lambda r: r[0]):
            writer.write(topic, log_time, message)
    return {"stamps": paired_stamps, "clouds": clouds_in_camera, "frames": frames, "camera": camera}


def _replay(bag, out, **overrides):
    settings = {"bag": bag, "out_dir": out, "rgb_topic": RGB_TOPIC, "rgb_info_topic": INFO_TOPIC,
                "depth_topic": "", "depth_info_topic": "", "gt_topic": GT_TOPIC, "lidar_topic": LIDAR_TOPIC,
                "sr": SRConfig(scale=4, backbone="normalized_conv"), "slop_s": 0.015, "previews": False,
                "points": "none", "progress": False}
    settings.update(overrides)
    return run_replay(ReplayConfig(**settings))


def _output_depths(bag) -> dict[int, np.ndarray]:
    with BagReader(bag) as reader:
        return {m.header.stamp.sec * SECOND + m.header.stamp.nanosec: depth_from_image(m)
                for m in (r.message for r in reader.records([OUTPUT_IMAGE_TOPIC]))}


@pytest.fixture(scope="module")
def lidar_bags(tmp_path_factory) -> dict[str, object]:
    """The TUM LiDAR bag with /tf_static, and the same without it."""
    root = tmp_path_factory.mktemp("lidar")
    built = write_lidar_bag(root / "with_tf")
    write_lidar_bag(root / "without_tf", with_tf=False)
    return {**built, "with_tf": root / "with_tf", "without_tf": root / "without_tf"}


def test_tum_lidar_bag_replay_beats_nearest_and_linear_interpolation(lidar_bags, tmp_path) -> None:
    built = lidar_bags
    report = _replay(built["with_tf"], tmp_path / "out")

    # 30 Hz camera, 10 Hz LiDAR: each scan pairs with its own camera frame, the rest are counted
    n = len(built["stamps"])
    assert report.pairs_processed == n and report.ledger.balanced()
    assert report.ledger.processed[LIDAR_TOPIC] == n and report.ledger.processed["/tf_static"] == 1
    assert sum(report.ledger.skipped[RGB_TOPIC].values()) == 2 * n
    outputs = _output_depths(tmp_path / "out" / "sr_bag")
    assert sorted(outputs) == built["stamps"]
    with open(tmp_path / "out" / "frames.csv") as handle:
        frames = list(csv.DictReader(handle))
    for row, cloud in zip(frames, built["clouds"]):  # every point of every scan is accounted for
        assert sum(int(row[f"points_{key}"]) for key in ("kept", "nan", "behind", "outside", "occluded")) == len(cloud)
        assert int(row["points_kept"]) > 2000

    rows = compare_with_interpolation(built, outputs, "32-ring LiDAR simulation, x4 grid")
    mean = {name: float(np.mean([r[0][name] for r in rows])) for name in rows[0][0]}
    ours = mean.pop(OURS)
    assert ours < mean["nearest"] and ours < mean["linear"]
    assert all(r[1][OURS] > 0.9 for r in rows)  # the hole policy leaves little open


OURS = "normalized_conv (replay)"


def compare_with_interpolation(built: dict, outputs: dict[int, np.ndarray], title: str) -> list[tuple]:
    """Per frame: RMSE (m) of the replay's output and of nearest and linear interpolation of the
    same points at full resolution, on the pixels where all three and the ground truth are
    valid; also each method's coverage, the number of points and the share of pixels scored.
    Prints the table."""
    rows = []
    for stamp, cloud, (_, gt) in zip(built["stamps"], built["clouds"], built["frames"]):
        sparse = project_points(cloud, built["camera"], gt.shape).depth
        methods = {OURS: outputs[stamp], "nearest": nearest_fill(sparse), "linear": linear_fill(sparse)}
        common = np.isfinite(gt) & np.all([np.isfinite(d) for d in methods.values()], axis=0)
        scores = {name: depth_metrics(np.where(common, d, np.nan), gt)["rmse"] for name, d in methods.items()}
        coverage = {name: depth_metrics(d, gt)["coverage"] for name, d in methods.items()}
        rows.append((scores, coverage, int(np.isfinite(sparse).sum()), common.mean()))
    print(f"\nTUM fr1 frames 00-02, {title}; RMSE (m) on common valid pixels")
    for i, (scores, coverage, n_points, common) in enumerate(rows):
        cells = "  ".join(f"{name} {rmse:.4f} (cover {coverage[name]:.3f})" for name, rmse in scores.items())
        print(f"frame {i}: {n_points} points, scored {common:.1%} of pixels: {cells}")
    mean = {name: float(np.mean([r[0][name] for r in rows])) for name in rows[0][0]}
    print("mean RMSE:", "  ".join(f"{name} {v:.4f}" for name, v in mean.items()))
    return rows


def print_comparison(rings: int = 32, scale: int = 4) -> None:
    """The comparison for other ring counts and scales, from the command line (in a new
    temporary directory): `cd test && python -c "import test_lidar_replay as t; t.print_comparison(64, 2)"`."""
    root = Path(tempfile.mkdtemp(prefix="lidar_comparison_"))
    built = write_lidar_bag(root / "bag", rings=rings)
    _replay(root / "bag", root / "out", sr=SRConfig(scale=scale, backbone="normalized_conv"))
    compare_with_interpolation(built, _output_depths(root / "out" / "sr_bag"),
                               f"{rings}-ring LiDAR simulation, x{scale} grid")
    print(f"bag and replay outputs: {root}")


def test_extrinsic_option_replaces_tf_and_missing_tf_is_a_counted_skip(lidar_bags, tmp_path, capsys) -> None:
    fast = {"sr": SRConfig(scale=4, backbone="bicubic"), "gt_topic": ""}
    with_tf = _replay(lidar_bags["with_tf"], tmp_path / "tf", **fast)
    assert with_tf.pairs_processed == 3

    missing = _replay(lidar_bags["without_tf"], tmp_path / "none", **fast)
    assert missing.pairs_processed == 0 and missing.pairs_skipped == {"no_transform": 3}
    assert dict(missing.ledger.skipped[LIDAR_TOPIC]) == {"no_transform": 3} and missing.ledger.balanced()

    translation = true_lidar_to_camera().translation
    pose = " ".join(f"{v:.9f}" for v in (*translation, *true_lidar_to_camera().as_quaternion()))
    parser = argparse.ArgumentParser()
    replay_tool.add_arguments(parser)
    args = parser.parse_args([str(lidar_bags["without_tf"]), "--out", str(tmp_path / "cli"),
                              "--rgb-topic", RGB_TOPIC, "--rgb-info-topic", INFO_TOPIC, "--depth-info-topic", "",
                              "--lidar-topic", LIDAR_TOPIC, "--extrinsic", pose, "--slop", "0.015",
                              "--backbone", "bicubic", "--scale", "4", "--no-previews", "--no-progress"])
    assert replay_tool.run(args) == 0
    assert "pairs processed: 3" in capsys.readouterr().out
    by_tf, by_option = _output_depths(tmp_path / "tf" / "sr_bag"), _output_depths(tmp_path / "cli" / "sr_bag")
    assert sorted(by_tf) == sorted(by_option) == lidar_bags["stamps"]
    for stamp in by_tf:
        np.testing.assert_allclose(by_option[stamp], by_tf[stamp], rtol=1e-6)
    with pytest.raises(SystemExit):
        parser.parse_args(["bag", "--out", "x", "--extrinsic", "0 0 0 1 2 3"])


def test_replay_registers_an_unaligned_depth_camera_through_tf(tmp_path) -> None:
    store = load_typestore("humble")
    build = rosbags_builder(store)
    rgb, depth = _box_scene()
    tof = Intrinsics(fx=28.0, fy=28.0, cx=16.2, cy=11.8, width=32, height=24)
    tof_pose = ((0.06, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))  # the ToF 6 cm to the right, in the RGB optical frame
    tof_depth = project_points(Extrinsic.from_translation_quaternion(*tof_pose).inverse().apply(
        back_project(depth, SMALL)), tof, (24, 32)).depth

    def fields(array: np.ndarray, encoding: str) -> ImageFields:
        return ImageFields(array.shape[0], array.shape[1], encoding, 0, array.nbytes // array.shape[0],
                           np.ascontiguousarray(array).reshape(-1).view(np.uint8))

    def info(camera: Intrinsics) -> CameraInfoFields:
        k = np.array([camera.fx, 0, camera.cx, 0, camera.fy, camera.cy, 0, 0, 1.0])
        p = np.array([camera.fx, 0, camera.cx, 0, 0, camera.fy, camera.cy, 0, 0, 0, 1, 0.0])
        return CameraInfoFields(camera.height, camera.width, "plumb_bob", np.array(camera.d or (0.0,) * 5), k,
                                np.eye(3).reshape(-1), p)

    def header(stamp: int, frame_id: str):
        time = store.types["builtin_interfaces/msg/Time"](sec=stamp // SECOND, nanosec=stamp % SECOND)
        return store.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)

    topics = {"/rgb": "Image", "/rgb_info": "CameraInfo", "/tof": "Image", "/tof_info": "CameraInfo", "/gt": "Image"}
    with BagWriter(tmp_path / "bag", store) as writer:
        for topic, kind in topics.items():
            writer.add_topic(topic, f"sensor_msgs/msg/{kind}")
        writer.add_topic("/tf_static", "tf2_msgs/msg/TFMessage")
        writer.write("/tf_static", EPOCH, store.types["tf2_msgs/msg/TFMessage"](
            transforms=[_transform(store, "rgb_optical", "tof_optical", tof_pose)]))
        for i in range(2):
            stamp = EPOCH + i * CAMERA_PERIOD
            millimetres = np.nan_to_num(np.rint(tof_depth * 1000), nan=0).astype(np.uint16)
            writer.write("/rgb", stamp + 1, build.image(header(stamp, "rgb_optical"), fields(rgb, "rgb8")))
            writer.write("/rgb_info", stamp + 2, build.camera_info(header(stamp, "rgb_optical"), info(SMALL)))
            writer.write("/gt", stamp + 3, build.image(header(stamp, "rgb_optical"),
                                                       fields(np.rint(depth * 1000).astype(np.uint16), "16UC1")))
            writer.write("/tof", stamp + 4, build.image(header(stamp + 3_000_000, "tof_optical"),
                                                        fields(millimetres, "16UC1")))
            writer.write("/tof_info", stamp + 5, build.camera_info(header(stamp + 3_000_000, "tof_optical"),
                                                                   info(tof)))
    settings = {"rgb_topic": "/rgb", "rgb_info_topic": "/rgb_info", "depth_topic": "/tof",
                "depth_info_topic": "/tof_info", "gt_topic": "/gt", "lidar_topic": "",
                "sr": SRConfig(scale=2, backbone="normalized_conv")}
    registered = _replay(tmp_path / "bag", tmp_path / "registered", unaligned_depth=True, **settings)
    assert registered.pairs_processed == 2 and registered.ledger.balanced()
    assert registered.ledger.processed["/tf_static"] == 1
    assert registered.metrics["normalized_conv"]["mae"] < 0.05
    # Without --unaligned-depth the ToF CameraInfo (another field of view) decides the same by default.
    plain = _replay(tmp_path / "bag", tmp_path / "plain", **settings)
    assert plain.pairs_processed == 2 and plain.metrics == registered.metrics
    refused = _replay(tmp_path / "bag", tmp_path / "refused", **settings,
                      output=OutputConfig(assume_registered=True))  # --assume-registered: the CameraInfo disagrees
    assert refused.pairs_skipped == {"unregistered_depth": 2}
    with pytest.raises(ValueError):
        _replay(tmp_path / "bag", tmp_path / "both", unaligned_depth=True, **{**settings, "lidar_topic": "/tof"})
