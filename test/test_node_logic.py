"""The ROS-free parts of the node: parameter table, topics, health, the frame handler, the pipeline slot.

Messages are `rosbags` (Humble typestore) objects built from the bundled real TUM frames, so the
frame path is exercised exactly as the node drives it, minus rclpy (read by field name). The node
itself, on a real ROS 2, is tested by the live suite in test/live_ros/.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rosbags.typesys import Stores, get_typestore

from depth_sr_ros.core.camera_info import (
    intrinsics_from_camera_info,
    scaled_camera_info_fields,
)
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import ImageFields, depth_from_image
from depth_sr_ros.core.msg_build import rosbags_builder
from depth_sr_ros.core.pointcloud import point_cloud_fields
from depth_sr_ros.replay.sample_bag import (
    FRAME_ID,
    SAMPLE_DIR,
    decimate_depth,
    rgb_camera_info,
    tum_depth_to_millimetres,
)
from depth_sr_ros.ros import parameter_table, topics
from depth_sr_ros.ros import parameters as table
from depth_sr_ros.ros.frame_handler import (
    INTERNAL_ERROR,
    FrameHandler,
    FrameInputs,
    InfoCache,
    extrinsic_from_transform,
)
from depth_sr_ros.ros.frame_worker import FrameWorker
from depth_sr_ros.ros.health import STALE_PAIR, HealthMonitor, SkipLog
from depth_sr_ros.ros.pipeline_slot import PipelineSlot, describe_pipeline
from depth_sr_ros.ros.rclpy_messages import float_list, uint8_array

REPO = Path(__file__).resolve().parent.parent
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
BUILDER = rosbags_builder(TYPESTORE)


# ----------------------------------------------------------------------------------- messages


def _header(stamp_ns: int, frame_id: str = FRAME_ID):
    time_cls = TYPESTORE.types["builtin_interfaces/msg/Time"]
    header_cls = TYPESTORE.types["std_msgs/msg/Header"]
    return header_cls(stamp=time_cls(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id)


def _image(array: np.ndarray, encoding: str, stamp_ns: int):
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return BUILDER.image(
        _header(stamp_ns), ImageFields(height, width, encoding, 0, data.size // height, data)
    )


@pytest.fixture(scope="module")
def frames():
    """Real RGB 640x480 rgb8 and x4-decimated 160x120 16UC1 depth (TUM fr1 frame 00)."""
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLE_DIR / "rgb" / "00.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raw = cv2.imread(str(SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    depth_mm = decimate_depth(tum_depth_to_millimetres(raw))
    return rgb, depth_mm


def _quadruple(frames, stamp_ns: int, depth_offset_ns: int = 4_000_000):
    rgb, depth_mm = frames
    rgb_msg = _image(rgb, "rgb8", stamp_ns)
    rgb_info = BUILDER.camera_info(_header(stamp_ns), rgb_camera_info(SAMPLE_DIR / "intrinsics.json"))
    depth_msg = _image(depth_mm, "16UC1", stamp_ns + depth_offset_ns)
    depth_fields = scaled_camera_info_fields(rgb_info, depth_mm.shape[1], depth_mm.shape[0])
    depth_info = BUILDER.camera_info(_header(stamp_ns + depth_offset_ns), depth_fields)
    return rgb_msg, rgb_info, depth_msg, depth_info


def _handler(input_mode: str = "depth") -> FrameHandler:
    return FrameHandler(
        BUILDER, HealthMonitor(5.0), input_mode, InfoCache("rgb/camera_info", 10), InfoCache("depth/camera_info", 10)
    )


def _handle(handler: FrameHandler, processor, quadruple, want_points=True, extrinsic=None):
    """What the node does per pair: CameraInfos into their caches as they arrive, then the pair."""
    rgb, rgb_info, depth, depth_info = quadruple
    if rgb_info is not None:
        handler.rgb_infos.put(rgb_info)
    if depth_info is not None:
        handler.depth_infos.put(depth_info)
    return handler.handle(processor, FrameInputs(rgb, depth), want_points, extrinsic or _no_tf)


def _no_tf(rgb, source):
    raise FrameError("no_transform", f"{source.header.frame_id} -> {rgb.header.frame_id} unavailable")


def _processor(**overrides) -> object:
    params = table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu", **overrides})
    slot = PipelineSlot()
    slot.build(params)
    return slot.processor


# --------------------------------------------------------------------------------- parameters


def test_table_and_params_dataclass_name_the_same_parameters():
    assert [spec.name for spec in table.PARAMETERS] == list(table.NodeParams.defaults().as_dict())
    assert set(table.LAUNCH_PARAMETERS) <= set(table.PARAMETER_BY_NAME)


def test_every_default_is_valid_and_constrained_text_is_given():
    params = table.NodeParams.defaults()
    assert table.validated(params) == params
    for spec in table.PARAMETERS:
        assert spec.check(spec.default) is None, spec.name
        assert spec.description.strip(), spec.name
        if spec.choices is not None or spec.value_range is not None:
            assert spec.constraints_text(), spec.name


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("scale", 3, "one of: 2, 4, 8, 16"),
        ("scale", "4", "must be int"),
        ("scale", 4.0, "must be int"),
        ("backbone", "resnet", "one of"),
        ("inference_backend", "openvino", "one of"),
        ("precision", "int8", "one of"),
        ("device", "gpu", "cuda:N"),
        ("output_encoding", "16UC3", "one of"),
        ("publish_points", 1, "must be bool"),
        ("point_stride", 0, "out of range"),
        ("point_stride", True, "must be int"),
        ("slop", math.nan, "finite"),
        ("slop", -0.1, "out of range"),
        ("queue_size", 0, "out of range"),
        ("input_mode", "radar", "one of"),
        ("rgb_transport", "theora", "one of: raw, compressed"),
        ("depth_transport", "compressed", "one of: raw, compressedDepth"),
        ("input_width", -1, "out of range"),
        ("weights", "/tmp/model.pt", ".safetensors"),
        ("weights", "/nonexistent/lite_x4.safetensors", "no such file"),
        ("registration_second_pass_weights", "", "auto or same"),
        ("registration_second_pass_weights", "first", "auto or same"),
        ("registration_second_pass_weights", "/nonexistent/x.safetensors", "no such file"),
    ],
)
def test_bad_values_are_rejected_with_a_reason(name, value, fragment):
    reason = table.PARAMETER_BY_NAME[name].check(value)
    assert reason is not None and fragment in reason and name in reason


def test_good_values_pass_and_ints_are_accepted_for_floats(monkeypatch):
    monkeypatch.setattr(parameter_table, "cuda_device_count", lambda: 2)
    assert table.PARAMETER_BY_NAME["device"].check("cuda:1") is None
    assert table.PARAMETER_BY_NAME["scale"].check(16) is None
    params = table.NodeParams.from_values({"slop": 0, "backbone": "gta_dinov2"})
    assert params.slop == 0.0 and isinstance(params.slop, float)


def test_an_existing_weights_file_is_accepted(tmp_path):
    weights = tmp_path / "mine.safetensors"
    weights.write_bytes(b"")
    assert table.PARAMETER_BY_NAME["weights"].check(str(weights)) is None
    assert table.PARAMETER_BY_NAME["weights"].check("") is None  # the shipped weights


def test_cross_parameter_rule_and_unknown_names():
    with pytest.raises(table.ParameterRejected, match="min_depth"):
        table.NodeParams.from_values({"min_depth": 5.0, "max_depth": 2.0})
    with pytest.raises(table.ParameterRejected, match="input_height"):
        table.NodeParams.from_values({"input_width": 640})
    assert table.NodeParams.from_values({"input_width": 640, "input_height": 480}).input_height == 480
    with pytest.raises(table.ParameterRejected, match="unknown parameter"):
        table.NodeParams.from_values({"scael": 4})


def test_launch_strings_are_converted_never_evaluated():
    assert table.parse_launch_value("scale", "8") == 8
    assert table.parse_launch_value("publish_points", "False") is False
    assert table.parse_launch_value("backbone", " lite ") == "lite"
    for name, text in [
        ("scale", "8.0"),
        ("scale", "3"),
        ("scale", "__import__('os').getpid()"),
        ("publish_points", "yes"),
        ("backbone", "bicubic; rm -rf /"),
    ]:
        with pytest.raises(table.ParameterRejected):
            table.parse_launch_value(name, text)
    assert table.launch_overrides({"scale": "16", "backbone": "", "weights": "  "}) == {"scale": 16}


def test_backbone_choices_are_the_registry_names_plus_auto():
    from depth_sr_ros.core.backbones import load_backbones

    assert set(table.BACKBONE_CHOICES) == {"auto", *load_backbones().names()}


def test_config_yaml_matches_the_parameter_table():
    text = (REPO / "config" / "sr.yaml").read_text()
    assert text == table.render_parameters_yaml(), "regenerate config/sr.yaml (render_parameters_yaml)"
    content = yaml.safe_load(text)
    assert content == table.parameters_yaml()
    values = content["/**"]["ros__parameters"]
    for name, value in values.items():
        assert type(value) is table.PARAMETER_BY_NAME[name].type, name


# ------------------------------------------------------------------------- runtime change policy


def test_subscription_parameters_are_refused_while_active_and_accepted_while_inactive():
    current = table.NodeParams.defaults()
    with pytest.raises(table.ParameterRejected, match="deactivate"):
        table.plan_change(current, {"queue_size": 20}, configured=True, active=True)
    plan = table.plan_change(current, {"queue_size": 20}, configured=True, active=False)
    assert plan.params.queue_size == 20 and not plan.rebuild_pipeline and not plan.rebuild_output
    # setting the same value again is not a change
    same = table.plan_change(current, {"input_mode": "depth"}, configured=True, active=True)
    assert same.params == current


def test_model_parameters_rebuild_only_when_a_pipeline_exists():
    current = table.NodeParams.defaults()
    plan = table.plan_change(current, {"scale": 8, "backbone": "guided_filter"}, configured=True, active=True)
    assert plan.rebuild_pipeline and plan.params.scale == 8
    assert not table.plan_change(current, {"scale": 8}, configured=False, active=False).rebuild_pipeline


def test_output_parameters_apply_live_and_bad_changes_are_rejected():
    current = table.NodeParams.defaults()
    plan = table.plan_change(current, {"output_encoding": "16UC1"}, configured=True, active=True)
    assert plan.rebuild_output and not plan.rebuild_pipeline
    with pytest.raises(table.ParameterRejected, match="one of"):
        table.plan_change(current, {"scale": 5}, configured=True, active=True)
    with pytest.raises(table.ParameterRejected, match="max_depth"):
        table.plan_change(current, {"max_depth": 0.05}, configured=True, active=True)


def test_failed_rebuild_keeps_the_old_pipeline():
    built = []

    def build_pipeline(params):
        if params.backbone == "lite":
            raise FileNotFoundError("no shipped weights for lite x4")
        built.append(params.backbone)
        return f"pipeline:{params.backbone}"

    slot = PipelineSlot(build_pipeline, lambda pipeline, params, bounds: (pipeline, params.output_encoding))
    assert slot.build(table.NodeParams.defaults()) is None  # no RGB size known: no warm-up
    before = slot.processor
    with pytest.raises(FileNotFoundError):
        slot.build(table.NodeParams.from_values({"backbone": "lite"}))
    assert slot.processor is before
    slot.set_output(table.NodeParams.from_values({"output_encoding": "16UC1"}))
    assert slot.processor == ("pipeline:auto", "16UC1")
    slot.release()
    assert slot.processor is None and slot.pipeline is None


def test_parameters_map_onto_the_core_configs(tmp_path):
    params = table.NodeParams.from_values(
        {
            "scale": 8,
            "backbone": "guided_filter",
            "device": "cpu",
            "output_encoding": "16UC1",
            "point_stride": 2,
        }
    )
    sr = table.sr_config(params)
    assert (sr.scale, sr.backbone, sr.device, sr.weights) == (8, "guided_filter", "cpu", None)
    assert (sr.min_depth, sr.max_depth) == (params.min_depth, params.max_depth)
    out = table.output_config(params)
    assert (out.output_encoding, out.point_cloud_rgb, out.point_stride) == ("16UC1", True, 2)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")
    assert table.sr_config(table.NodeParams.from_values({"weights": str(weights)})).weights == str(weights)
    assert sr.second_pass_weights == "auto"
    for choice in ("same", str(weights)):
        params = table.NodeParams.from_values({"registration_second_pass_weights": choice})
        assert table.sr_config(params).second_pass_weights == choice


# -------------------------------------------------------------------------------------- topics


def test_topics_are_relative_and_valid():
    for topic in (*topics.input_topics("depth"), *topics.input_topics("lidar"), *topics.output_topics()):
        assert topics.is_valid_topic_name(topic) and not topic.startswith("/"), topic
    assert topics.input_topics("lidar") == ("rgb/image", "lidar/points", "rgb/camera_info")
    assert topics.synchronised_topics("depth") == ("rgb/image", "depth/image")
    assert topics.synchronised_topics("lidar") == ("rgb/image", "lidar/points")
    with pytest.raises(ValueError):
        topics.input_topics("sonar")
    assert set(topics.REMAP_ARGUMENTS.values()) == set(topics.input_topics("depth")) | set(
        topics.input_topics("lidar")
    )


def test_image_transport_topics_follow_the_resolved_base():
    assert topics.transport_topic("/camera/color/image_raw", "raw") == "/camera/color/image_raw"
    assert topics.transport_topic("/camera/color/image_raw", "compressed") == "/camera/color/image_raw/compressed"
    assert topics.transport_topic("/tof/depth", "compressedDepth") == "/tof/depth/compressedDepth"


def test_remap_arguments_become_rules():
    rules = topics.remappings(
        {"rgb_image": "/camera/color/image_raw", "depth_image": "depth/image", "rgb_info": ""}
    )
    assert rules == [("rgb/image", "/camera/color/image_raw")]
    for bad in ("/camera//image", "camera/1image", "/camera/image/", "cam era"):
        with pytest.raises(ValueError, match="rgb_image"):
            topics.remappings({"rgb_image": bad})


def test_points_only_when_enabled_and_subscribed():
    params = table.NodeParams.defaults()
    assert table.want_points(params, 1) and not table.want_points(params, 0)
    assert not table.want_points(table.NodeParams.from_values({"publish_points": False}), 3)


# -------------------------------------------------------------------------------------- health


def test_health_window_rate_latency_stages_and_skips():
    health = HealthMonitor(period_s=2.0, window_start=100.0, paired_topics=("rgb/image", "depth/image"))
    for _ in range(4):
        health.count_input("rgb/image")
        health.count_input("depth/image")
    health.count_input("rgb/image")  # an RGB frame without depth
    for latency in (0.030, 0.050, 0.040):
        health.count_pair()
        health.count_published(stamp_s=100.5, publish_s=100.5 + latency, processing_ms=20.0, build_ms=1.0,
                               publish_ms=2.0)
    health.count_pair()
    health.count_skip("truncated_data")

    report = health.report(102.0)
    assert report.frames == 3 and report.rate_hz == pytest.approx(1.5)
    assert report.latency_mean_ms == pytest.approx(40.0) and report.latency_max_ms == pytest.approx(50.0)
    assert (report.processing_mean_ms, report.build_mean_ms, report.publish_mean_ms) == pytest.approx((20, 1, 2))
    assert report.unpaired == {"rgb/image": 1, "depth/image": 0}
    assert report.skips_total == {"truncated_data": 1} and report.level == "warn"
    text = report.summary()
    for fragment in ("1.5 Hz", "mean 40.0 ms", "max 50.0 ms", "rgb/image 1", "truncated_data 1", "publish 2.0 ms"):
        assert fragment in text
    values = dict(report.diagnostic_values())
    assert values["skipped truncated_data"] == "1" and values["output rate (Hz)"] == "1.50"

    quiet = health.report(104.0)  # a new window: rates reset, totals kept
    assert quiet.frames == 0 and quiet.level == "stale" and quiet.skips_total == {"truncated_data": 1}
    assert math.isnan(quiet.latency_mean_ms) and "skipped 1" in quiet.summary()


def test_stale_pairs_are_counted_but_are_no_fault():
    health = HealthMonitor(period_s=1.0)
    health.count_skip(STALE_PAIR)
    health.count_published(stamp_s=1.0, publish_s=1.1, processing_ms=90.0, build_ms=1.0, publish_ms=1.0)
    report = health.report(1.0)
    assert report.level == "ok" and report.skips_total == {STALE_PAIR: 1}


def test_no_latency_while_the_ros_clock_reads_zero():
    """use_sim_time before the first /clock: the node's clock reads 0; frames still count."""
    health = HealthMonitor(period_s=1.0)
    health.count_published(stamp_s=1_700_000_000.0, publish_s=0.0, processing_ms=10.0, build_ms=1.0,
                           publish_ms=1.0)
    report = health.report(1.0)
    assert report.frames == 1 and math.isnan(report.latency_mean_ms)
    assert "latency unknown" in report.summary() and "no /clock" in report.summary()


def test_health_counts_from_several_threads():
    health = HealthMonitor(period_s=1.0)

    def count():
        for _ in range(2000):
            health.count_input("rgb/image")
            health.count_skip(STALE_PAIR)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert health.received["rgb/image"] == 8000 and health.skips[STALE_PAIR] == 8000


def test_skip_log_throttles_each_reason_on_its_own():
    log = SkipLog(period_s=5.0)
    assert log.admit("truncated_data", 0.0) == 0
    assert log.admit("truncated_data", 1.0) is None  # held back
    assert log.admit("size_mismatch", 1.5) == 0  # another reason is not held back by the first
    assert log.admit("truncated_data", 4.9) is None
    assert log.admit("truncated_data", 5.0) == 2  # says how many it held back


# ------------------------------------------------------------------------------ the frame path


def test_a_real_pair_becomes_sr_depth_info_and_cloud(frames):
    handler = _handler()
    stamp = 1_700_000_000_123_456_789
    result = _handle(handler, _processor(), _quadruple(frames, stamp))
    assert result.skip is None, result.skip
    out = result.messages
    assert (out.image.height, out.image.width, out.image.encoding) == (480, 640, "32FC1")
    assert out.image.header.stamp.sec == stamp // 10**9 and out.image.header.stamp.nanosec == stamp % 10**9
    assert out.image.header.frame_id == FRAME_ID
    depth = depth_from_image(out.image)
    assert np.isfinite(depth).mean() > 0.5
    assert 0.3 < np.nanmedian(depth) < 6.0  # an office scene, metres
    assert (out.camera_info.width, out.camera_info.height) == (640, 480)
    assert out.camera_info.k[0] == pytest.approx(517.3)
    assert out.points.width * out.points.height == 640 * 480
    assert {f.name for f in out.points.fields} >= {"x", "y", "z", "rgb"}
    assert out.points.header.stamp == out.image.header.stamp
    assert out.stamp_s == pytest.approx(stamp * 1e-9) and out.processing_ms > 0 and out.build_ms > 0
    assert not handler.health.skips


def test_no_cloud_unless_wanted_and_16uc1_output(frames):
    result = _handle(_handler(), _processor(output_encoding="16UC1"), _quadruple(frames, 10**9), want_points=False)
    assert result.messages.points is None
    assert result.messages.image.encoding == "16UC1"
    assert result.messages.image.step == 640 * 2


def _corrupt(quadruple, case):
    rgb, rgb_info, depth, depth_info = quadruple
    if case == "wrong_encoding":
        depth.encoding = "bgr8"
    elif case == "truncated_data":
        depth.data = depth.data[: depth.data.size // 2]
    elif case == "size_mismatch":
        depth_info.width, depth_info.height = 320, 240
    elif case == "missing_camera_info":
        rgb_info = None
    elif case == "uncalibrated_camera_info":
        rgb_info.k = np.zeros(9)
    elif case == "all_invalid_depth":
        depth.data = np.zeros_like(depth.data)
    return rgb, rgb_info, depth, depth_info


BAD_CASES = {
    "wrong_encoding": "unsupported_encoding",
    "truncated_data": "truncated_data",
    "size_mismatch": "size_mismatch",
    "missing_camera_info": "missing_camera_info",
    "uncalibrated_camera_info": "bad_camera_info",
    "all_invalid_depth": "all_invalid_depth",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_a_bad_pair_is_counted_and_the_next_good_pair_still_processed(frames, case):
    handler = _handler()
    processor = _processor()
    bad = _handle(handler, processor, _corrupt(_quadruple(frames, 10**9), case))
    assert bad.messages is None and isinstance(bad.skip, FrameError)
    assert bad.skip.reason == BAD_CASES[case], bad.skip
    assert dict(handler.health.skips) == {BAD_CASES[case]: 1}
    good = _handle(handler, processor, _quadruple(frames, 2 * 10**9))
    assert good.skip is None and good.messages.image.width == 640


def test_a_missing_rgb_camera_info_names_its_topic(frames):
    rgb, _, depth, depth_info = _quadruple(frames, 10**9)
    handler = _handler()
    result = _handle(handler, _processor(), (rgb, None, depth, depth_info))
    assert result.skip.reason == "missing_camera_info" and "rgb/camera_info" in str(result.skip)


def test_camera_info_by_stamp_else_the_latest_earlier_one(frames):
    cache = InfoCache("rgb/camera_info", keep=3)
    infos = [_quadruple(frames, stamp)[1] for stamp in (10, 20, 30, 40)]
    for info in infos:
        cache.put(info)
    assert cache.find(_header(30)) is infos[2]  # equal stamp
    assert cache.find(_header(35)) is infos[2]  # latest earlier
    assert cache.find(_header(99)) is infos[3]
    assert cache.find(_header(15)) is None  # only the last 3 are kept: 10 is gone, nothing earlier
    with pytest.raises(FrameError, match="rgb/camera_info"):
        cache.require(_header(15))


def test_a_camera_info_published_just_after_its_image_is_waited_for(frames):
    """Once CameraInfos have carried their images' stamps, a lookup waits briefly for the one
    with the pair's stamp instead of taking the previous frame's."""
    cache = InfoCache("rgb/camera_info", keep=5, wait_s=2.0)
    first, second = (_quadruple(frames, stamp)[1] for stamp in (10, 20))
    cache.put(first)
    assert cache.find(_header(10)) is first  # an exact match: this camera stamps its CameraInfo
    threading.Timer(0.2, cache.put, [second]).start()
    assert cache.find(_header(20)) is second  # arrived 0.2 s after the lookup began
    late = InfoCache("rgb/camera_info", keep=5, wait_s=2.0)
    late.put(first)
    assert late.find(_header(20)) is first  # no exact match seen yet: no waiting, the latest earlier


def test_the_depth_camera_info_is_optional_for_registered_depth(frames):
    rgb, rgb_info, depth, _ = _quadruple(frames, 10**9)
    result = _handle(_handler(), _processor(), (rgb, rgb_info, depth, None))
    assert result.skip is None and result.messages.image.width == 640


def test_unexpected_errors_are_counted_not_raised(frames):
    class Broken:
        def process(self, *args, **kwargs):
            raise RuntimeError("CUDA error: an illegal memory access")

    handler = _handler()
    result = _handle(handler, Broken(), _quadruple(frames, 10**9))
    assert result.skip.reason == INTERNAL_ERROR and "illegal memory" in str(result.skip)
    assert isinstance(result.exception, RuntimeError)
    unconfigured = _handle(handler, None, _quadruple(frames, 10**9))
    assert unconfigured.skip.reason == "not_configured"
    assert handler.health.skips == {INTERNAL_ERROR: 1, "not_configured": 1}


def test_lidar_transform_failures_are_counted(frames):
    handler = _handler("lidar")
    rgb, rgb_info, _, _ = _quadruple(frames, 10**9)
    cloud = BUILDER.point_cloud(_header(10**9, "lidar_link"), point_cloud_fields(
        np.ones((4, 4), np.float32), intrinsics_from_camera_info(rgb_info).scaled(4, 4)))
    result = _handle(handler, _processor(), (rgb, rgb_info, cloud, None))
    assert result.skip.reason == "no_transform" and "lidar_link" in str(result.skip)
    assert handler.health.skips == {"no_transform": 1}


def _transform_stamped(translation, quaternion, child="lidar_link"):
    types = TYPESTORE.types
    return types["geometry_msgs/msg/TransformStamped"](
        header=_header(0),
        child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](
                x=translation[0], y=translation[1], z=translation[2]
            ),
            rotation=types["geometry_msgs/msg/Quaternion"](
                x=quaternion[0], y=quaternion[1], z=quaternion[2], w=quaternion[3]
            ),
        ),
    )


def test_a_real_lidar_like_cloud_becomes_dense_depth(frames):
    """Every 4th pixel of the full TUM depth as a cloud (a sparse scan), through the lidar path."""
    handler = _handler("lidar")
    stamp = 5 * 10**9
    rgb, rgb_info, _, _ = _quadruple(frames, stamp)
    raw = cv2.imread(str(SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    depth_m = tum_depth_to_millimetres(raw).astype(np.float32) / 1000.0
    depth_m[depth_m == 0] = np.nan
    cloud_fields = point_cloud_fields(depth_m, intrinsics_from_camera_info(rgb_info), stride=4)
    cloud = BUILDER.point_cloud(_header(stamp + 20_000_000), cloud_fields)
    identity = _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))

    result = _handle(handler, _processor(), (rgb, rgb_info, cloud, None),
                     extrinsic=lambda rgb, source: extrinsic_from_transform(identity))
    assert result.skip is None, result.skip
    out = depth_from_image(result.messages.image)
    assert (
        out.shape == (480, 640) and result.messages.points.width * result.messages.points.height == 640 * 480
    )
    both = np.isfinite(out) & np.isfinite(depth_m)
    assert both.mean() > 0.5
    assert np.median(np.abs(out[both] - depth_m[both])) < 0.05  # metres, against the full sensor depth


def test_an_unaligned_depth_camera_is_registered_through_its_transform(frames):
    """The ToF depth with its own CameraInfo and frame, registered with the TF-given extrinsic."""
    handler = _handler("unaligned_depth")
    rgb, rgb_info, depth, depth_info = _quadruple(frames, 10**9)
    depth.header.frame_id = depth_info.header.frame_id = "tof_optical_frame"
    identity = _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), child="tof_optical_frame")

    result = _handle(handler, _processor(), (rgb, rgb_info, depth, depth_info),
                     extrinsic=lambda rgb, source: extrinsic_from_transform(identity))
    assert result.skip is None, result.skip
    out = depth_from_image(result.messages.image)
    raw = cv2.imread(str(SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    truth = tum_depth_to_millimetres(raw).astype(np.float32) / 1000.0
    truth[truth == 0] = np.nan
    both = np.isfinite(out) & np.isfinite(truth)
    assert out.shape == (480, 640) and both.mean() > 0.5
    assert np.median(np.abs(out[both] - truth[both])) < 0.05  # metres
    assert result.messages.image.header.frame_id == FRAME_ID  # outputs live in the RGB frame


def test_extrinsic_from_a_transform_stamped():
    half = math.sqrt(0.5)
    transform = _transform_stamped((0.1, -0.2, 0.3), (0.0, 0.0, half, half))  # +90 deg about z
    extrinsic = extrinsic_from_transform(transform)
    point = extrinsic.rotation @ np.array([1.0, 0.0, 0.0]) + extrinsic.translation
    assert point == pytest.approx([0.1, 0.8, 0.3])


def test_rclpy_adapters_give_the_containers_rclpy_takes():
    strided = np.arange(24, dtype=np.uint8).reshape(4, 6)[:, ::2]  # not contiguous
    data = uint8_array(strided)
    assert data.typecode == "B" and list(data) == strided.reshape(-1).tolist()
    values = float_list(np.eye(3, dtype=np.float32))
    assert values == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert all(type(v) is float for v in values)


def test_a_degenerate_transform_is_a_counted_frame_error():
    with pytest.raises(FrameError) as error:
        extrinsic_from_transform(_transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)))
    assert error.value.reason == "bad_transform"


def test_unaligned_depth_needs_its_camera_info(frames):
    rgb, rgb_info, depth, _ = _quadruple(frames, 10**9)
    identity = _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), child="tof_optical_frame")
    result = _handle(_handler("unaligned_depth"), _processor(), (rgb, rgb_info, depth, None),
                     extrinsic=lambda rgb, source: extrinsic_from_transform(identity))
    assert result.skip.reason == "missing_camera_info" and "depth/camera_info" in str(result.skip)


# -------------------------------------------------------------------------------- pipeline slot


def test_a_known_size_is_warmed_up_at_build_and_a_new_size_on_request():
    slot = PipelineSlot()
    params = table.NodeParams.from_values(
        {"backbone": "guided_filter", "device": "cpu", "input_width": 320, "input_height": 240}
    )
    warm_s = slot.build(params)
    assert warm_s is not None and warm_s >= 0 and slot.warm_size == (320, 240)
    assert slot.warm_up((320, 240)) is None  # already warm for it
    assert slot.warm_up((640, 480)) is not None and slot.warm_size == (640, 480)
    rebuilt = slot.build(table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu"}))
    assert rebuilt is not None and slot.warm_size == (640, 480)  # the replacement is warmed where the old ran
    assert slot.describe() == "backbone bicubic x4 on numpy/OpenCV, cpu"


def test_describe_says_which_backend_runs_after_the_warm_up():
    from depth_sr_ros.backends import cpu_threads

    params = table.NodeParams.from_values({"backbone": "lite", "device": "cpu", "inference_backend": "onnxruntime",
                                           "input_width": 64, "input_height": 48})
    slot = PipelineSlot()
    slot.build(params)
    text = describe_pipeline(slot.pipeline)
    threads = cpu_threads(slot.pipeline.upsampler.backend.active.config)
    assert text.startswith("backbone lite x4 (lite_x4.safetensors; second pass lite_x4_second_pass.safetensors) on "
                           "onnxruntime[CPUExecutionProvider], ")
    assert f", {threads} thread" in text and text.endswith(", cpu, fp32")
    assert slot.pipeline.second_pass_upsampler.backend.active.shapes is not None  # warmed up with the first
    same = PipelineSlot()
    same.build(table.NodeParams.from_values({**params.as_dict(), "registration_second_pass_weights": "same"}))
    assert describe_pipeline(same.pipeline).startswith("backbone lite x4 (lite_x4.safetensors) on ")


# --------------------------------------------------------------------------------- frame worker


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(("info", message))

    def warning(self, message):
        self.lines.append(("warning", message))

    def error(self, message):
        self.lines.append(("error", message))


def _worker(published, **overrides):
    slot = PipelineSlot()
    slot.build(table.NodeParams.from_values({"backbone": "bicubic", "device": "cpu", **overrides}))
    handler = _handler()

    def publish(image, info, points, confidence):
        published.append((image, info, points))
        return 1.5

    return FrameWorker(slot, handler, publish, lambda: 1e9, _Log(), want_points=lambda: False)


def test_the_worker_processes_only_the_newest_pair_and_counts_the_stale_ones(frames):
    published = []
    worker = _worker(published)
    quadruples = [_quadruple(frames, stamp * 10**9) for stamp in (1, 2, 3)]
    for rgb, rgb_info, depth, depth_info in quadruples:
        worker.handler.rgb_infos.put(rgb_info)
        worker.handler.depth_infos.put(depth_info)
        worker.offer(FrameInputs(rgb, depth))  # three pairs arrive while the worker is busy elsewhere
    worker.run()
    assert [image.header.stamp.sec for image, _, _ in published] == [3]
    health = worker.handler.health
    assert health.pairs == 3 and health.skips == {STALE_PAIR: 2}
    report = health.report(10.0)
    assert report.frames == 1 and report.publish_mean_ms == 1.5 and report.level == "ok"


def test_a_stopped_worker_processes_nothing_more(frames):
    published = []
    worker = _worker(published)
    rgb, rgb_info, depth, _ = _quadruple(frames, 10**9)
    worker.handler.rgb_infos.put(rgb_info)
    worker.offer(FrameInputs(rgb, depth))
    worker.stop()
    worker.run()
    assert not published


def test_the_worker_logs_each_skip_reason_once_per_period_and_warms_up_on_request(frames):
    published = []
    worker = _worker(published)
    for stamp in (1, 2):  # the same fault twice: one log line
        rgb, rgb_info, depth, _ = _corrupt(_quadruple(frames, stamp * 10**9), "truncated_data")
        worker.handler.rgb_infos.put(rgb_info)
        worker.offer(FrameInputs(rgb, depth))
        worker.run()
    rgb, _, depth, _ = _quadruple(frames, 3 * 10**9)
    depth.encoding = "bgr8"
    worker.offer(FrameInputs(rgb, depth))
    worker.run()
    warnings = [text for level, text in worker.logger.lines if level == "warning"]
    assert len(warnings) == 2 and "truncated_data" in warnings[0] and "unsupported_encoding" in warnings[1]
    assert not published and worker.handler.health.skips == {"truncated_data": 2, "unsupported_encoding": 1}

    worker.request_warm_up((320, 240))
    worker.run()
    assert worker.slot.warm_size == (320, 240)
    assert [text for level, text in worker.logger.lines if "warmed up for 320x240" in text]
    worker.request_warm_up((320, 240))  # warm for it already: nothing to do
    worker.run()
    assert len([text for level, text in worker.logger.lines if "warmed up" in text]) == 1


def test_the_worker_thread_processes_what_is_offered_until_stopped(frames):
    published = []
    worker = _worker(published)
    worker.start()
    rgb, rgb_info, depth, _ = _quadruple(frames, 7 * 10**9)
    worker.handler.rgb_infos.put(rgb_info)
    worker.offer(FrameInputs(rgb, depth))
    deadline = time.monotonic() + 30.0
    while not published and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()  # joins the thread
    assert [image.header.stamp.sec for image, _, _ in published] == [7]
    worker.offer(FrameInputs(rgb, depth))
    time.sleep(0.2)
    assert len(published) == 1  # nothing after stop
