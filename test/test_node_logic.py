"""The ROS-free half of the node: parameters, topics, health and the sync callback body.

Messages are `rosbags` (Humble typestore) objects built from the bundled real TUM frames, so the
callback body is exercised exactly as the node drives it, minus rclpy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

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
from depth_sr_ros.ros import node_logic as nl
from depth_sr_ros.ros.rclpy_messages import float_list, uint8_array

REPO = Path(__file__).resolve().parent.parent
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
BUILDER = rosbags_builder(TYPESTORE)


# ----------------------------------------------------------------------------------- messages


def _header(stamp_ns: int):
    time_cls = TYPESTORE.types["builtin_interfaces/msg/Time"]
    header_cls = TYPESTORE.types["std_msgs/msg/Header"]
    return header_cls(stamp=time_cls(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=FRAME_ID)


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


def _handler(period_s: float = 5.0) -> nl.FrameHandler:
    return nl.FrameHandler(BUILDER, nl.HealthMonitor(period_s))


def _processor(**overrides) -> object:
    params = nl.NodeParams.from_values({"backbone": "bicubic", "device": "cpu", **overrides})
    slot = nl.ProcessorSlot()
    slot.build(params)
    return slot.processor


# --------------------------------------------------------------------------------- parameters


def test_table_and_params_dataclass_name_the_same_parameters():
    assert [spec.name for spec in nl.PARAMETERS] == list(nl.NodeParams.defaults().as_dict())
    assert set(nl.LAUNCH_PARAMETERS) <= set(nl.PARAMETER_BY_NAME)


def test_every_default_is_valid_and_constrained_text_is_given():
    params = nl.NodeParams.defaults()
    assert nl.validated(params) == params
    for spec in nl.PARAMETERS:
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
    ],
)
def test_bad_values_are_rejected_with_a_reason(name, value, fragment):
    reason = nl.PARAMETER_BY_NAME[name].check(value)
    assert reason is not None and fragment in reason and name in reason


def test_good_values_pass_and_ints_are_accepted_for_floats():
    assert nl.PARAMETER_BY_NAME["device"].check("cuda:1") is None
    assert nl.PARAMETER_BY_NAME["scale"].check(16) is None
    params = nl.NodeParams.from_values({"slop": 0, "backbone": "gta_dinov2"})
    assert params.slop == 0.0 and isinstance(params.slop, float)


def test_cross_parameter_rule_and_unknown_names():
    with pytest.raises(nl.ParameterRejected, match="min_depth"):
        nl.NodeParams.from_values({"min_depth": 5.0, "max_depth": 2.0})
    with pytest.raises(nl.ParameterRejected, match="unknown parameter"):
        nl.NodeParams.from_values({"scael": 4})


def test_launch_strings_are_converted_never_evaluated():
    assert nl.parse_launch_value("scale", "8") == 8
    assert nl.parse_launch_value("publish_points", "False") is False
    assert nl.parse_launch_value("backbone", " lite ") == "lite"
    for name, text in [
        ("scale", "8.0"),
        ("scale", "3"),
        ("scale", "__import__('os').getpid()"),
        ("publish_points", "yes"),
        ("backbone", "bicubic; rm -rf /"),
    ]:
        with pytest.raises(nl.ParameterRejected):
            nl.parse_launch_value(name, text)
    assert nl.launch_overrides({"scale": "16", "backbone": "", "weights": "  "}) == {"scale": 16}


def test_backbone_choices_are_the_registry_names_plus_auto():
    from depth_sr_ros.core.backbones import load_backbones

    assert set(nl.BACKBONE_CHOICES) == {"auto", *load_backbones().names()}


def test_config_yaml_matches_the_parameter_table():
    text = (REPO / "config" / "sr.yaml").read_text()
    assert text == nl.render_parameters_yaml(), "regenerate config/sr.yaml (render_parameters_yaml)"
    content = yaml.safe_load(text)
    assert content == nl.parameters_yaml()
    values = content["/**"]["ros__parameters"]
    for name, value in values.items():
        assert type(value) is nl.PARAMETER_BY_NAME[name].type, name


# ------------------------------------------------------------------------- runtime change policy


def test_subscription_parameters_are_refused_while_active_and_accepted_while_inactive():
    current = nl.NodeParams.defaults()
    with pytest.raises(nl.ParameterRejected, match="deactivate"):
        nl.plan_change(current, {"queue_size": 20}, configured=True, active=True)
    plan = nl.plan_change(current, {"queue_size": 20}, configured=True, active=False)
    assert plan.params.queue_size == 20 and not plan.rebuild_pipeline and not plan.rebuild_output
    # setting the same value again is not a change
    same = nl.plan_change(current, {"input_mode": "depth"}, configured=True, active=True)
    assert same.params == current


def test_model_parameters_rebuild_only_when_a_pipeline_exists():
    current = nl.NodeParams.defaults()
    plan = nl.plan_change(current, {"scale": 8, "backbone": "guided_filter"}, configured=True, active=True)
    assert plan.rebuild_pipeline and plan.params.scale == 8
    assert not nl.plan_change(current, {"scale": 8}, configured=False, active=False).rebuild_pipeline


def test_output_parameters_apply_live_and_bad_changes_are_rejected():
    current = nl.NodeParams.defaults()
    plan = nl.plan_change(current, {"output_encoding": "16UC1"}, configured=True, active=True)
    assert plan.rebuild_output and not plan.rebuild_pipeline
    with pytest.raises(nl.ParameterRejected, match="one of"):
        nl.plan_change(current, {"scale": 5}, configured=True, active=True)
    with pytest.raises(nl.ParameterRejected, match="max_depth"):
        nl.plan_change(current, {"max_depth": 0.05}, configured=True, active=True)


def test_failed_rebuild_keeps_the_old_pipeline():
    built = []

    def build_pipeline(params):
        if params.backbone == "lite":
            raise FileNotFoundError("no shipped weights for lite x4")
        built.append(params.backbone)
        return f"pipeline:{params.backbone}"

    slot = nl.ProcessorSlot(build_pipeline, lambda pipeline, params: (pipeline, params.output_encoding))
    slot.build(nl.NodeParams.defaults())
    before = slot.processor
    with pytest.raises(FileNotFoundError):
        slot.build(nl.NodeParams.from_values({"backbone": "lite"}))
    assert slot.processor is before
    slot.set_output(nl.NodeParams.from_values({"output_encoding": "16UC1"}))
    assert slot.processor == ("pipeline:auto", "16UC1")
    slot.release()
    assert slot.processor is None and slot.pipeline is None


def test_parameters_map_onto_the_core_configs():
    params = nl.NodeParams.from_values(
        {
            "scale": 8,
            "backbone": "guided_filter",
            "device": "cpu",
            "output_encoding": "16UC1",
            "point_stride": 2,
        }
    )
    sr = nl.sr_config(params)
    assert (sr.scale, sr.backbone, sr.device, sr.weights) == (8, "guided_filter", "cpu", None)
    assert (sr.min_depth, sr.max_depth) == (params.min_depth, params.max_depth)
    out = nl.output_config(params)
    assert (out.output_encoding, out.point_cloud_rgb, out.point_stride) == ("16UC1", True, 2)
    assert nl.sr_config(nl.NodeParams.from_values({"weights": "/w.safetensors"})).weights == "/w.safetensors"


# -------------------------------------------------------------------------------------- topics


def test_topics_are_relative_and_valid():
    for topic in (*nl.input_topics("depth"), *nl.input_topics("lidar"), *nl.output_topics()):
        assert nl.is_valid_topic_name(topic) and not topic.startswith("/"), topic
    assert nl.input_topics("lidar") == ("rgb/image", "rgb/camera_info", "lidar/points")
    with pytest.raises(ValueError):
        nl.input_topics("sonar")
    assert set(nl.REMAP_ARGUMENTS.values()) == set(nl.input_topics("depth")) | set(nl.input_topics("lidar"))


def test_remap_arguments_become_rules():
    rules = nl.remappings(
        {"rgb_image": "/camera/color/image_raw", "depth_image": "depth/image", "rgb_info": ""}
    )
    assert rules == [("rgb/image", "/camera/color/image_raw")]
    for bad in ("/camera//image", "camera/1image", "/camera/image/", "cam era"):
        with pytest.raises(ValueError, match="rgb_image"):
            nl.remappings({"rgb_image": bad})


def test_points_only_when_enabled_and_subscribed():
    params = nl.NodeParams.defaults()
    assert nl.want_points(params, 1) and not nl.want_points(params, 0)
    assert not nl.want_points(nl.NodeParams.from_values({"publish_points": False}), 3)


# -------------------------------------------------------------------------------------- health


def test_health_window_rate_latency_and_skips():
    health = nl.HealthMonitor(period_s=2.0, window_start=100.0)
    for i in range(4):
        health.count_input("rgb/image")
        health.count_input("depth/image")
    health.count_input("rgb/image")  # an RGB frame without depth
    for latency in (0.030, 0.050, 0.040):
        health.count_pair()
        health.count_published(stamp_s=100.5, publish_s=100.5 + latency, processing_ms=20.0)
    health.count_pair()
    health.count_skip("truncated_data")
    assert not health.due(101.9) and health.due(102.0)

    report = health.report(102.0)
    assert report.frames == 3 and report.rate_hz == pytest.approx(1.5)
    assert report.latency_mean_ms == pytest.approx(40.0) and report.latency_max_ms == pytest.approx(50.0)
    assert report.unpaired == {"rgb/image": 1, "depth/image": 0}
    assert report.skips_total == {"truncated_data": 1} and report.level == "warn"
    text = report.summary()
    for fragment in ("1.5 Hz", "mean 40.0 ms", "max 50.0 ms", "rgb/image 1", "truncated_data 1"):
        assert fragment in text

    quiet = health.report(104.0)  # a new window: rates reset, totals kept
    assert quiet.frames == 0 and quiet.level == "stale" and quiet.skips_total == {"truncated_data": 1}
    assert math.isnan(quiet.latency_mean_ms) and "skipped 1" in quiet.summary()


# --------------------------------------------------------------------------- the callback body


def test_a_real_pair_becomes_sr_depth_info_and_cloud(frames):
    handler = _handler()
    stamp = 1_700_000_000_123_456_789
    result = handler.handle_pair(_processor(), *_quadruple(frames, stamp), want_points=True)
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
    assert out.stamp_s == pytest.approx(stamp * 1e-9) and out.processing_ms > 0
    assert handler.health.pairs == 1 and not handler.health.skips


def test_no_cloud_unless_wanted_and_16uc1_output(frames):
    handler = _handler()
    result = handler.handle_pair(
        _processor(output_encoding="16UC1"), *_quadruple(frames, 10**9), want_points=False
    )
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
    return rgb, rgb_info, depth, depth_info


@pytest.mark.parametrize(
    "case",
    ["wrong_encoding", "truncated_data", "size_mismatch", "missing_camera_info", "uncalibrated_camera_info"],
)
def test_a_bad_pair_is_counted_and_the_next_good_pair_still_processed(frames, case):
    handler = _handler()
    processor = _processor()
    bad = handler.handle_pair(processor, *_corrupt(_quadruple(frames, 10**9), case), want_points=True)
    assert bad.messages is None and isinstance(bad.skip, FrameError)
    assert bad.skip.reason != nl.INTERNAL_ERROR, bad.skip
    assert sum(handler.health.skips.values()) == 1
    good = handler.handle_pair(processor, *_quadruple(frames, 2 * 10**9), want_points=True)
    assert good.skip is None and good.messages.image.width == 640
    assert handler.health.pairs == 2


def test_skip_reasons_name_the_problem(frames):
    handler = _handler()
    processor = _processor()
    for case in ("wrong_encoding", "truncated_data"):
        handler.handle_pair(processor, *_corrupt(_quadruple(frames, 10**9), case), want_points=False)
    assert handler.health.skips == {"unsupported_encoding": 1, "truncated_data": 1}


def test_unexpected_errors_are_counted_not_raised(frames):
    class Broken:
        def process(self, *args):
            raise RuntimeError("CUDA error: an illegal memory access")

    handler = _handler()
    result = handler.handle_pair(Broken(), *_quadruple(frames, 10**9), want_points=True)
    assert result.skip.reason == nl.INTERNAL_ERROR and "illegal memory" in str(result.skip)
    assert isinstance(result.exception, RuntimeError)
    unconfigured = handler.handle_pair(None, *_quadruple(frames, 10**9), want_points=True)
    assert unconfigured.skip.reason == "not_configured"
    assert handler.health.skips == {nl.INTERNAL_ERROR: 1, "not_configured": 1}


def test_lidar_transform_failures_are_counted(frames):
    handler = _handler()
    rgb, rgb_info, _, _ = _quadruple(frames, 10**9)

    def no_tf():
        raise FrameError("no_transform", "lidar_link -> camera_color_optical_frame unavailable")

    result = handler.handle_lidar(_processor(), rgb, rgb_info, object(), no_tf, want_points=True)
    assert result.skip.reason == "no_transform" and handler.health.skips == {"no_transform": 1}


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
    handler = _handler()
    stamp = 5 * 10**9
    rgb, rgb_info, _, _ = _quadruple(frames, stamp)
    raw = cv2.imread(str(SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    depth_m = tum_depth_to_millimetres(raw).astype(np.float32) / 1000.0
    depth_m[depth_m == 0] = np.nan
    cloud_fields = point_cloud_fields(depth_m, intrinsics_from_camera_info(rgb_info), stride=4)
    cloud = BUILDER.point_cloud(_header(stamp + 20_000_000), cloud_fields)
    identity = _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))

    result = handler.handle_lidar(
        _processor(), rgb, rgb_info, cloud, lambda: nl.extrinsic_from_transform(identity), want_points=True
    )
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
    handler = _handler()
    rgb, rgb_info, depth, depth_info = _quadruple(frames, 10**9)
    depth.header.frame_id = depth_info.header.frame_id = "tof_optical_frame"
    identity = _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), child="tof_optical_frame")

    result = handler.handle_unaligned(
        _processor(), rgb, rgb_info, depth, depth_info, lambda: nl.extrinsic_from_transform(identity), True
    )
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
    extrinsic = nl.extrinsic_from_transform(transform)
    point = extrinsic.rotation @ np.array([1.0, 0.0, 0.0]) + extrinsic.translation
    assert point == pytest.approx([0.1, 0.8, 0.3])


def test_rclpy_adapters_give_the_containers_rclpy_takes():
    strided = np.arange(24, dtype=np.uint8).reshape(4, 6)[:, ::2]  # not contiguous
    data = uint8_array(strided)
    assert data.typecode == "B" and list(data) == strided.reshape(-1).tolist()
    values = float_list(np.eye(3, dtype=np.float32))
    assert values == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert all(type(v) is float for v in values)


# --------------------------------------------------- the rclpy adapter, against stand-in ROS modules
#
# No ROS here, so `depth_sr_ros.ros.node` runs against small stand-ins that implement the part of
# each API the node uses, with the documented signatures (rclpy.lifecycle.LifecycleNode,
# message_filters.Subscriber/ApproximateTimeSynchronizer/TimeSynchronizer, rcl_interfaces
# descriptors, tf2_ros.Buffer/TransformListener). They check the node's wiring and lifecycle;
# test/test_launch_node.py checks the real thing where ROS 2 is installed.


class _Logger:
    def __init__(self):
        self.records = []

    def _log(self, level, message, **kwargs):
        self.records.append((level, message, kwargs))

    def info(self, message, **kwargs):
        self._log("info", message, **kwargs)

    def warning(self, message, **kwargs):
        self._log("warning", message, **kwargs)

    def error(self, message, **kwargs):
        self._log("error", message, **kwargs)


class _Publisher:
    def __init__(self, msg_type, topic, qos):
        self.msg_type, self.topic, self.qos = msg_type, topic, qos
        self.sent = []
        self.subscribers = 0

    def publish(self, msg):
        self.sent.append(msg)

    def get_subscription_count(self):
        return self.subscribers


class _Clock:
    def __init__(self):
        self.nanoseconds = 1_700_000_000 * 10**9
        self.jump_callbacks = []

    def now(self):
        return type("Time", (), {"nanoseconds": self.nanoseconds})()

    def create_jump_callback(self, threshold, *, pre_callback=None, post_callback=None):
        self.jump_callbacks.append(post_callback)
        return type("JumpHandle", (), {"unregister": lambda self: None})()


class _Result:
    SUCCESS, FAILURE, ERROR = "success", "failure", "error"


class _LifecycleNode:
    """The rclpy.lifecycle.LifecycleNode calls the node makes."""

    overrides: ClassVar[dict] = {}

    def __init__(self, node_name, **kwargs):
        self.fake_name = node_name
        self.fake_params, self.fake_descriptors, self.fake_param_callbacks = {}, {}, []
        self.fake_logger, self.fake_clock = _Logger(), _Clock()
        self.fake_publishers, self.fake_subscriptions, self.fake_timers = {}, [], []

    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        self.fake_params[name] = self.overrides.get(name, value)
        self.fake_descriptors[name] = descriptor

    def get_parameter(self, name):
        return type("Parameter", (), {"name": name, "value": self.fake_params[name]})()

    def add_on_set_parameters_callback(self, callback):
        self.fake_param_callbacks.append(callback)

    def fake_set(self, **values):
        params = [type("Parameter", (), {"name": n, "value": v})() for n, v in values.items()]
        result = self.fake_param_callbacks[0](params)
        if result.successful:
            self.fake_params.update(values)
        return result

    def get_logger(self):
        return self.fake_logger

    def get_clock(self):
        return self.fake_clock

    def get_namespace(self):
        return "/"

    def create_lifecycle_publisher(self, msg_type, topic, qos_profile):
        self.fake_publishers[topic] = _Publisher(msg_type, topic, qos_profile)
        return self.fake_publishers[topic]

    def destroy_lifecycle_publisher(self, publisher):
        del self.fake_publishers[publisher.topic]

    def create_subscription(self, msg_type, topic, callback, qos_profile):
        subscription = type("Subscription", (), {})()
        subscription.msg_type, subscription.topic, subscription.callback = msg_type, topic, callback
        subscription.qos = qos_profile
        self.fake_subscriptions.append(subscription)
        return subscription

    def destroy_subscription(self, subscription):
        self.fake_subscriptions.remove(subscription)

    def create_timer(self, period, callback):
        timer = type("Timer", (), {})()
        timer.period, timer.callback = period, callback
        self.fake_timers.append(timer)
        return timer

    def destroy_timer(self, timer):
        self.fake_timers.remove(timer)

    def on_configure(self, state):
        return _Result.SUCCESS

    on_activate = on_deactivate = on_cleanup = on_shutdown = on_configure


class _SimpleFilter:
    def __init__(self):
        self.callbacks = []

    def registerCallback(self, callback, *args):
        self.callbacks.append((callback, args))

    def signalMessage(self, *msgs):
        for callback, args in self.callbacks:
            callback(*(msgs + args))


class _Subscriber(_SimpleFilter):
    def __init__(self, node, msg_type, topic, qos_profile=10):
        super().__init__()
        self.sub = node.create_subscription(msg_type, topic, self.signalMessage, qos_profile=qos_profile)


class _TimeSynchronizer(_SimpleFilter):
    """Emits one message per input once every input has one (the stand-in's whole policy)."""

    def __init__(self, fs, queue_size):
        super().__init__()
        self.queue_size = queue_size
        self.queues = [[] for _ in fs]
        for index, f in enumerate(fs):
            f.registerCallback(self.add, index)

    def add(self, msg, index):
        self.queues[index].append(msg)
        if all(self.queues):
            self.signalMessage(*(queue.pop(0) for queue in self.queues))


class _ApproximateTimeSynchronizer(_TimeSynchronizer):
    def __init__(self, fs, queue_size, slop, allow_headerless=False):
        super().__init__(fs, queue_size)
        self.slop = slop


class _TransformException(Exception):
    pass


class _Buffer:
    transform = None  # a TransformStamped, or None: no transform known

    def lookup_transform(self, target_frame, source_frame, time, timeout=None):
        if self.transform is None:
            raise _TransformException(f'"{source_frame}" passed to lookupTransform does not exist')
        return self.transform

    def clear(self):
        pass


class _TransformListener:
    def __init__(self, buffer, node, *, spin_thread=False, qos=None, static_qos=None):
        self.registered = True

    def unregister(self):
        self.registered = False


def _message_class(name):
    return type(name, (), {"__init__": lambda self, **kw: self.__dict__.update(kw)})


@pytest.fixture
def ros(monkeypatch):
    """Stand-in ROS modules, and `depth_sr_ros.ros.node` imported against them."""
    import importlib
    import sys
    import types

    sensor_data = object()
    modules = {
        "rcl_interfaces.msg": {
            name: _message_class(name)
            for name in ("ParameterDescriptor", "IntegerRange", "FloatingPointRange", "SetParametersResult")
        },
        "rclpy.lifecycle": {
            "LifecycleNode": _LifecycleNode,
            "LifecycleState": object,
            "TransitionCallbackReturn": _Result,
        },
        "rclpy.qos": {"qos_profile_sensor_data": sensor_data},
        "rclpy.clock": {"JumpThreshold": _message_class("JumpThreshold")},
        "rclpy.duration": {"Duration": _message_class("Duration")},
        "rclpy.time": {"Time": type("Time", (), {"from_msg": staticmethod(lambda stamp: stamp)})},
        "sensor_msgs.msg": {
            key: TYPESTORE.types[f"sensor_msgs/msg/{key}"]
            for key in ("Image", "CompressedImage", "CameraInfo", "PointCloud2", "PointField", "RegionOfInterest")
        },
        "message_filters": {
            "Subscriber": _Subscriber,
            "TimeSynchronizer": _TimeSynchronizer,
            "ApproximateTimeSynchronizer": _ApproximateTimeSynchronizer,
        },
        "tf2_ros": {
            "Buffer": _Buffer,
            "TransformListener": _TransformListener,
            "TransformException": _TransformException,
        },
        "diagnostic_updater": None,  # not installed: the node goes on without /diagnostics
    }
    for name, attributes in modules.items():
        if attributes is None:
            monkeypatch.setitem(sys.modules, name, None)
            continue
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "depth_sr_ros.ros.node", raising=False)
    monkeypatch.setattr(_LifecycleNode, "overrides", {"backbone": "bicubic", "device": "cpu"})
    monkeypatch.setattr(_Buffer, "transform", None)
    node_module = importlib.import_module("depth_sr_ros.ros.node")
    yield types.SimpleNamespace(node=node_module, sensor_data=sensor_data)
    sys.modules.pop("depth_sr_ros.ros.node", None)


def _feed(node, *msgs):
    by_topic = {s.topic: s for s in node.fake_subscriptions}
    for topic, msg in zip(nl.input_topics(node._params.input_mode), msgs):
        by_topic[topic].callback(msg)


def test_node_declares_every_parameter_with_its_descriptor(ros):
    node = ros.node.DepthSRNode()
    assert set(node.fake_params) == set(nl.PARAMETER_BY_NAME)
    scale = node.fake_descriptors["scale"]
    assert scale.additional_constraints == "one of: 2, 4, 8, 16" and "Upsampling" in scale.description
    stride = node.fake_descriptors["point_stride"].integer_range[0]
    assert (stride.from_value, stride.to_value, stride.step) == (1, 16, 1)
    slop = node.fake_descriptors["slop"].floating_point_range[0]
    assert (slop.from_value, slop.to_value, slop.step) == (0.0, 10.0, 0.0)


def test_node_lifecycle_publishes_real_pairs_and_counts_bad_ones(ros, frames):
    node = ros.node.DepthSRNode()
    assert node.on_configure(None) == _Result.SUCCESS
    assert set(node.fake_publishers) == set(nl.output_topics())
    assert all(p.qos is ros.sensor_data for p in node.fake_publishers.values())

    assert node.on_activate(None) == _Result.SUCCESS
    assert [s.topic for s in node.fake_subscriptions] == list(nl.input_topics("depth"))
    assert all(s.qos is ros.sensor_data for s in node.fake_subscriptions)
    assert isinstance(node._synchroniser, _ApproximateTimeSynchronizer) and node._synchroniser.slop == nl.NodeParams.defaults().slop
    assert [t.period for t in node.fake_timers] == [5.0]
    image_pub, points_pub = node.fake_publishers[nl.OUT_IMAGE], node.fake_publishers[nl.OUT_POINTS]

    _feed(node, *_quadruple(frames, 10**9))  # nobody listens to the cloud: none is built
    assert len(image_pub.sent) == 1 and not points_pub.sent
    sent = image_pub.sent[0]
    assert (sent.width, sent.height, sent.encoding) == (640, 480, "32FC1") and sent.header.stamp.sec == 1
    assert sent.data.typecode == "B"  # the rclpy uint8[] container

    points_pub.subscribers = 1
    _feed(node, *_corrupt(_quadruple(frames, 2 * 10**9), "truncated_data"))
    _feed(node, *_quadruple(frames, 3 * 10**9))
    assert len(image_pub.sent) == 2 and len(points_pub.sent) == 1
    assert points_pub.sent[0].header.stamp.sec == 3
    warnings = [r for r in node.fake_logger.records if r[0] == "warning"]
    assert len(warnings) == 1 and "truncated_data" in warnings[0][1]
    assert warnings[0][2] == {"throttle_duration_sec": ros.node.SKIP_LOG_THROTTLE_S}

    node.fake_timers[0].callback()  # the health timer
    health = [r[1] for r in node.fake_logger.records if r[1].startswith("health:")]
    assert health and "pairs 3" in health[0] and "truncated_data 1" in health[0]

    assert node.on_deactivate(None) == _Result.SUCCESS
    assert not node.fake_subscriptions and not node.fake_timers
    assert node.on_cleanup(None) == _Result.SUCCESS
    assert not node.fake_publishers and node._slot.pipeline is None


def test_node_runtime_changes_rebuild_refuse_or_keep_the_old_pipeline(ros, frames):
    node = ros.node.DepthSRNode()
    node.on_configure(None)
    node.on_activate(None)
    before = node._slot.processor

    refused = node.fake_set(queue_size=20)
    assert not refused.successful and "deactivate" in refused.reason
    bad = node.fake_set(scale=5)
    assert not bad.successful and "one of: 2, 4, 8, 16" in bad.reason
    failed = node.fake_set(backbone="lite", weights="/nonexistent/lite_x4.safetensors")
    assert not failed.successful and "previous pipeline keeps running" in failed.reason
    assert node._slot.processor is before and node._params.backbone == "bicubic"

    rebuilt = node.fake_set(scale=8)
    assert rebuilt.successful and node._slot.pipeline.scale == 8 and node._slot.processor is not before
    live = node.fake_set(output_encoding="16UC1")
    assert live.successful
    _feed(node, *_quadruple(frames, 10**9))
    assert node.fake_publishers[nl.OUT_IMAGE].sent[-1].encoding == "16UC1"

    node.on_deactivate(None)
    assert node.fake_set(queue_size=20).successful  # inactive: takes effect on the next activate
    node.fake_set(exact_sync=True)
    node.on_activate(None)
    assert type(node._synchroniser) is _TimeSynchronizer and node._synchroniser.queue_size == 20


def test_node_refuses_to_configure_with_a_bad_params_file_value(ros, monkeypatch):
    monkeypatch.setattr(_LifecycleNode, "overrides", {"scale": 3, "device": "cpu"})
    node = ros.node.DepthSRNode()
    assert node.on_configure(None) == _Result.FAILURE
    errors = [r[1] for r in node.fake_logger.records if r[0] == "error"]
    assert errors and "scale=3" in errors[0] and node._slot.pipeline is None


def test_node_lidar_mode_uses_tf_and_counts_missing_transforms(ros, frames, monkeypatch):
    monkeypatch.setattr(
        _LifecycleNode, "overrides", {"backbone": "bicubic", "device": "cpu", "input_mode": "lidar"}
    )
    node = ros.node.DepthSRNode()
    node.on_configure(None)
    node.on_activate(None)
    assert [s.topic for s in node.fake_subscriptions] == list(nl.input_topics("lidar"))
    assert node.fake_clock.jump_callbacks  # the TF buffer is cleared on a jump back

    rgb, rgb_info, _, _ = _quadruple(frames, 10**9)
    raw = cv2.imread(str(SAMPLE_DIR / "depth" / "00.png"), cv2.IMREAD_UNCHANGED)
    depth_m = tum_depth_to_millimetres(raw).astype(np.float32) / 1000.0
    depth_m[depth_m == 0] = np.nan
    cloud = BUILDER.point_cloud(
        _header(10**9), point_cloud_fields(depth_m, intrinsics_from_camera_info(rgb_info), stride=4)
    )
    _feed(node, rgb, rgb_info, cloud)
    assert node._health.skips == {"no_transform": 1} and not node.fake_publishers[nl.OUT_IMAGE].sent

    monkeypatch.setattr(_Buffer, "transform", _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)))
    _feed(node, rgb, rgb_info, cloud)
    assert node.fake_publishers[nl.OUT_IMAGE].sent[-1].width == 640
    listener = node._tf_listener
    node.on_deactivate(None)
    assert not listener.registered


def test_node_unaligned_depth_mode_registers_through_tf(ros, frames, monkeypatch):
    overrides = {"backbone": "bicubic", "device": "cpu", "input_mode": "unaligned_depth"}
    monkeypatch.setattr(_LifecycleNode, "overrides", overrides)
    monkeypatch.setattr(_Buffer, "transform", _transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)))
    node = ros.node.DepthSRNode()
    node.on_configure(None)
    node.on_activate(None)
    assert [s.topic for s in node.fake_subscriptions] == list(nl.input_topics("depth"))
    assert node._tf_listener is not None
    _feed(node, *_quadruple(frames, 10**9))
    assert not node._health.skips
    assert node.fake_publishers[nl.OUT_IMAGE].sent[-1].width == 640


def test_node_says_why_configure_or_activate_fails(ros, monkeypatch):
    import sys

    monkeypatch.setattr(_LifecycleNode, "overrides", {"backbone": "lite", "weights": "/missing.safetensors"})
    node = ros.node.DepthSRNode()
    assert node.on_configure(None) == _Result.FAILURE
    assert not node.fake_publishers and node._slot.pipeline is None
    assert any(level == "error" and "configure failed" in text for level, text, _ in node.fake_logger.records)

    monkeypatch.setattr(_LifecycleNode, "overrides", {"backbone": "bicubic", "device": "cpu"})
    node = ros.node.DepthSRNode()
    assert node.on_configure(None) == _Result.SUCCESS
    monkeypatch.setitem(sys.modules, "message_filters", None)  # not installed
    assert node.on_activate(None) == _Result.FAILURE
    assert not node.fake_subscriptions and not node.fake_timers and not node._active
    assert any("activate failed" in text for _, text, _ in node.fake_logger.records)


def test_a_degenerate_transform_is_a_counted_frame_error():
    with pytest.raises(FrameError) as error:
        nl.extrinsic_from_transform(_transform_stamped((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)))
    assert error.value.reason == "bad_transform"
