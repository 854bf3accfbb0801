"""`depth-sr replay --registration none|tf|auto` on bags of held-out rgbdd_dev frames.

The depth is rendered as a sensor 5 cm right of and 2 cm above the colour camera sees it
(`train/parallax.py`: z-buffer, disocclusions filled as a phone pipeline does), x4 smaller and
labelled as registered (same frame_id, the colour CameraInfo scaled). `auto` must bring the
replay's RMSE near the correctly registered bag's; on the correctly registered bag it must leave
the input as it is (estimate not applied, same RMSE).
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

pytest.importorskip("torch", reason="the parallax simulation (train/parallax.py) needs the optional torch extra")

from depth_sr_ros.core.camera_info import CameraInfoFields
from depth_sr_ros.core.image_msg import ImageFields
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.reprojection import assumed_intrinsics
from depth_sr_ros.eval.protocol import protocol_bicubic_downsample
from depth_sr_ros.replay.bag_io import BagReader, BagWriter, load_typestore
from depth_sr_ros.replay.config import ReplayConfig
from depth_sr_ros.replay.residual import DEPTH_SENSOR_SUFFIX, decide_residual
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.tools import replay as replay_tool
from depth_sr_ros.train.datasets import FolderDataset, describe_folder
from depth_sr_ros.train.parallax import Parallax

SCALE = 4
FRAMES = 10
BASELINE_M = (0.05, -0.02, 0.0)
RGB, RGB_INFO, DEPTH, DEPTH_INFO, GT = ("/camera/color/image_raw", "/camera/color/camera_info",
                                        "/camera/depth/image_raw", "/camera/depth/camera_info", "/ground_truth/depth")
FRAME_ID = "camera_color_optical_frame"


@functools.cache
def _frames() -> list:
    root = require_shared("data", "rgbdd_dev")
    names = sorted(p.stem for p in (root / "depth").glob("20200605*.png"))  # held out (docs/training.md)
    picks = tuple(names[int(i)] for i in np.linspace(0, len(names) - 1, FRAMES).round())
    return list(FolderDataset(describe_folder(root, picks)))


def _camera_info(width: int, height: int) -> CameraInfoFields:
    """The assumed 60 degree colour camera (the one the parallax renders with) at width x height."""
    c = assumed_intrinsics(width, height)
    return CameraInfoFields(height, width, "plumb_bob", np.zeros(5), np.array([c.fx, 0, c.cx, 0, c.fy, c.cy, 0, 0, 1.0]),
                            np.eye(3).reshape(-1), np.array([c.fx, 0, c.cx, 0, 0, c.fy, c.cy, 0, 0, 0, 1.0, 0]))


def _image(array: np.ndarray, encoding: str) -> ImageFields:
    array = np.ascontiguousarray(array)
    return ImageFields(array.shape[0], array.shape[1], encoding, 0, array.nbytes // array.shape[0],
                       array.reshape(-1).view(np.uint8))


def _write_bag(path: Path, sensor: Parallax | None) -> Path:
    """The frames as a rosbag2: colour, low-resolution depth labelled registered (rendered by
    `sensor`, or the ground truth itself when None), their CameraInfos and the ground truth."""
    store = load_typestore("humble")
    build = rosbags_builder(store)
    time_cls, header_cls = store.types["builtin_interfaces/msg/Time"], store.types["std_msgs/msg/Header"]
    with BagWriter(path, store) as writer:
        for topic, kind in ((RGB, "Image"), (RGB_INFO, "CameraInfo"), (DEPTH, "Image"), (DEPTH_INFO, "CameraInfo"),
                            (GT, "Image")):
            writer.add_topic(topic, f"sensor_msgs/msg/{kind}")
        if sensor is not None:  # its pose on /tf_static, as depth-sr calibrate's launch snippet publishes it
            writer.add_topic("/tf_static", "tf2_msgs/msg/TFMessage")
            writer.write("/tf_static", 1, store.types["tf2_msgs/msg/TFMessage"](transforms=[
                _transform(store, sensor.pose(), FRAME_ID, FRAME_ID + DEPTH_SENSOR_SUFFIX)]))
        for i, frame in enumerate(_frames()):
            h, w = (frame.depth.shape[0] // SCALE) * SCALE, (frame.depth.shape[1] // SCALE) * SCALE
            gt = frame.depth[:h, :w].astype(np.float32)
            seen = gt if sensor is None else sensor.render(gt)
            lr = protocol_bicubic_downsample(np.nan_to_num(seen, nan=float(np.nanmax(seen))), SCALE)
            stamp = 1_700_000_000 * 10**9 + i * 33_333_333
            header = header_cls(stamp=time_cls(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=FRAME_ID)
            messages = ((RGB, build.image(header, _image(frame.rgb[:h, :w], "rgb8"))),
                        (RGB_INFO, build.camera_info(header, _camera_info(w, h))),
                        (DEPTH, build.image(header, _image(lr.astype(np.float32), "32FC1"))),
                        (DEPTH_INFO, build.camera_info(header, _camera_info(w // SCALE, h // SCALE))),
                        (GT, build.image(header, _image(gt, "32FC1"))))
            for k, (topic, message) in enumerate(messages):
                writer.write(topic, stamp + k, message)
    return path


def _transform(store, pose: Extrinsic, parent: str, child: str):
    types = store.types
    t, q = pose.translation, pose.as_quaternion()
    return types["geometry_msgs/msg/TransformStamped"](
        header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0),
                                            frame_id=parent),
        child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=float(t[0]), y=float(t[1]), z=float(t[2])),
            rotation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("registration_bags")
    return {"registered": _write_bag(root / "registered", None),
            "parallax": _write_bag(root / "parallax", Parallax(BASELINE_M))}


def _config(bag: Path, out: Path, mode: str | None = None, extrinsic: Extrinsic | None = None) -> ReplayConfig:
    """The replay of `bag` with `--registration mode` (None: the default)."""
    chosen = {"registration": mode} if mode is not None else {}
    return ReplayConfig(bag=bag, out_dir=out, rgb_topic=RGB, rgb_info_topic=RGB_INFO, depth_topic=DEPTH,
                        depth_info_topic=DEPTH_INFO, gt_topic=GT, sr=SRConfig(scale=SCALE, backbone="bicubic"),
                        previews=False, progress=False, extrinsic=extrinsic, **chosen)


def _cli_config(bag: Path, out: Path, mode: str | None = None) -> ReplayConfig:
    """The same replay as `depth-sr replay` builds it from its flags (mode None: no --registration)."""
    parser = argparse.ArgumentParser()
    replay_tool.add_arguments(parser)
    return replay_tool.config_from_args(parser.parse_args([
        str(bag), "--out", str(out), "--rgb-topic", RGB, "--rgb-info-topic", RGB_INFO, "--depth-topic", DEPTH,
        "--depth-info-topic", DEPTH_INFO, "--gt-topic", GT, "--backbone", "bicubic", "--scale", str(SCALE),
        "--no-previews", "--no-progress"] + (["--registration", mode] if mode is not None else [])))


def _replay(config: ReplayConfig) -> tuple[float, dict]:
    """(bicubic RMSE in metres, metrics.json's "registration") of one replay."""
    out = config.out_dir
    report = run_replay(config)
    assert report.pairs_processed == FRAMES
    metrics = json.loads((out / "metrics.json").read_text())
    return report.metrics["bicubic"]["rmse"], metrics["registration"]


def test_auto_registers_a_sensor_beside_the_camera_and_leaves_registered_depth(bags, tmp_path: Path) -> None:
    reference, none_info = _replay(_config(bags["registered"], tmp_path / "reg_none", "none"))
    assert none_info == {"mode": "none", "applied": False}
    unregistered, _ = _replay(_config(bags["parallax"], tmp_path / "par_none", "none"))
    assert unregistered > 3 * reference  # the simulation bites: edges displaced by f * B / Z

    registered_auto, kept = _replay(_config(bags["registered"], tmp_path / "reg_auto"))  # auto by default
    assert kept["mode"] == "auto" and kept["applied"] is False and kept["pairs_used"] == FRAMES, kept
    assert registered_auto == pytest.approx(reference, rel=1e-6)  # correctly registered input unchanged

    fixed, estimate = _replay(_cli_config(bags["parallax"], tmp_path / "par_auto"))  # the CLI's default: auto
    assert estimate["mode"] == "auto"
    assert estimate["applied"] is True and estimate["status"] == "ok", estimate
    assert np.abs(np.array(estimate["params"][:2]) - BASELINE_M[:2]).max() < 0.004, estimate
    assert all(s > 0 for s in estimate["std"][:2])
    assert fixed < 0.4 * unregistered and fixed < 2.5 * reference, (fixed, unregistered, reference)

    given, tf_info = _replay(_config(bags["parallax"], tmp_path / "par_tf", "tf"))  # the pose from /tf_static
    assert tf_info["applied"] is True and tf_info["source"].startswith("/tf_static"), tf_info
    assert tf_info["params"][:3] == pytest.approx(list(BASELINE_M), abs=1e-6)
    assert fixed < 1.15 * given, (fixed, given)  # the estimate does about as well as the true pose


def test_tf_prefers_the_extrinsic_flag_and_without_either_applies_nothing(bags, tmp_path: Path) -> None:
    flag = Extrinsic(np.eye(3), np.array([0.01, 0.0, 0.0]))
    with BagReader(bags["parallax"]) as reader:
        residual = decide_residual(reader, _config(bags["parallax"], tmp_path, "tf", flag), None)
    assert residual.extrinsic is flag and residual.report["source"] == "--extrinsic"
    with BagReader(bags["registered"]) as reader:  # no /tf_static
        residual = decide_residual(reader, _config(bags["registered"], tmp_path, "tf"), None)
    assert residual.extrinsic is None and residual.report["applied"] is False


def test_auto_spreads_its_window_over_the_bag_and_needs_enough_views(bags, tmp_path: Path) -> None:
    """A window of 3 over the 10 pairs takes every 3rd pair; 3 views are too few to apply anything."""
    with BagReader(bags["parallax"]) as reader:
        residual = decide_residual(reader, _config(bags["parallax"], tmp_path), None, window=3)
    report = residual.report
    assert report["every_nth_pair"] == FRAMES // 3 and report["pairs_used"] == 3, report
    assert residual.extrinsic is None and report["applied"] is False and report["status"] == "unconstrained"
    assert any("distinct views" in note for note in report["notes"]), report


def test_a_bad_registration_mode_is_a_usage_error(bags, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--registration must be one of none, tf, auto"):
        ReplayConfig(bag=bags["registered"], out_dir=tmp_path, rgb_topic=RGB, rgb_info_topic=RGB_INFO,
                     depth_topic=DEPTH, registration="always")
