"""The node's rclpy plumbing: parameter descriptors, QoS, input subscriptions, output publishers.

QoS (what users run must connect without configuration):
- outputs are published RELIABLE, KEEP_LAST(`OUTPUT_DEPTH`), VOLATILE. A reliable writer serves
  reliable readers (RViz, `ros2 bag record`, rtabmap, nvblox) and best-effort readers alike;
  the small depth keeps only the newest frames for a slow reader instead of queueing.
- inputs are subscribed with the sensor-data profile (BEST_EFFORT, KEEP_LAST 5), which
  matches best-effort and reliable camera drivers alike.
Both can be overridden the ROS 2 way, per topic, with read-only parameters given at start-up
(rclpy `QoSOverridingOptions.with_default_policies()`: history, depth, reliability), e.g.
`qos_overrides./depth_sr/image.publisher.reliability: best_effort` in the params file. The topic
in the name is the resolved one (namespace and remaps applied).

Inputs: message_filters subscribers for the RGB image and the depth source (image_transport
topics `<base>/compressed`, `<base>/compressedDepth` for the compressed transports), each through
an `admission_gate` (`admit_image`: the frame worker refuses messages stamped 0 there), paired by
ApproximateTimeSynchronizer (or TimeSynchronizer with exact_sync); plain subscriptions hand
CameraInfo to `on_info(stream, msg)` (the frame worker checks and keeps it); a TF buffer and
listener in the TF modes. sensor_msgs, message_filters and tf2_ros are imported when a method
needs them, so the module imports without ROS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.ros import topics
from depth_sr_ros.ros.frame_handler import FrameInputs, InfoCache, extrinsic_from_transform
from depth_sr_ros.ros.parameter_table import ParamSpec
from depth_sr_ros.ros.parameters import NodeParams

OUTPUT_DEPTH = 2  # frames a reliable output keeps for a slow reader
DIAGNOSTIC_TASK = "depth super-resolution"


def parameter_descriptor(spec: ParamSpec) -> Any:
    """The rcl_interfaces ParameterDescriptor for one row of the parameter table.

    Ranges are inclusive (step 0 = any value in the range); `choices` and other constraints are
    listed in `additional_constraints` and enforced by the node's set-parameters callback.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(
        name=spec.name, description=spec.description, additional_constraints=spec.constraints_text()
    )
    if spec.value_range is not None:
        lo, hi = spec.value_range
        if spec.type is int:
            descriptor.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi))]
    return descriptor


def output_qos() -> Any:
    """Reliable, keep the last OUTPUT_DEPTH, volatile (a new object: overrides change it in place)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=OUTPUT_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def input_qos() -> Any:
    """The sensor-data profile, a new object each time: QoS overrides are applied to it in place."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=5,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def _overridable() -> Any:
    from rclpy.qos_overriding_options import QoSOverridingOptions

    return QoSOverridingOptions.with_default_policies()


class Outputs:
    """The lifecycle publishers of the outputs; `publish` returns the milliseconds rclpy took."""

    def __init__(self, node: Any) -> None:
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        self._node = node
        self.image = node.create_lifecycle_publisher(
            Image, topics.OUT_IMAGE, output_qos(), qos_overriding_options=_overridable()
        )
        self.info = node.create_lifecycle_publisher(
            CameraInfo, topics.OUT_INFO, output_qos(), qos_overriding_options=_overridable()
        )
        self.points = node.create_lifecycle_publisher(
            PointCloud2, topics.OUT_POINTS, output_qos(), qos_overriding_options=_overridable()
        )
        self.confidence = node.create_lifecycle_publisher(
            Image, topics.OUT_CONFIDENCE, output_qos(), qos_overriding_options=_overridable()
        )

    def points_wanted(self) -> bool:
        return bool(self.points.get_subscription_count() > 0)

    def confidence_wanted(self) -> bool:
        return bool(self.confidence.get_subscription_count() > 0)

    def publish(self, image: Any, info: Any, points: Any | None, confidence: Any | None = None) -> float:
        start = time.perf_counter()
        self.image.publish(image)
        self.info.publish(info)
        if points is not None:
            self.points.publish(points)
        if confidence is not None:
            self.confidence.publish(confidence)
        return (time.perf_counter() - start) * 1000.0

    def destroy(self) -> None:
        for publisher in (self.image, self.info, self.points, self.confidence):
            self._node.destroy_lifecycle_publisher(publisher)


def admission_gate(source: Any, admit: Callable[[Any], bool]) -> Any:
    """A message_filters filter after `source` that passes on the messages `admit` accepts."""
    from message_filters import SimpleFilter

    gate = SimpleFilter()

    def add(msg: Any) -> None:
        if admit(msg):
            gate.signalMessage(msg)

    source.registerCallback(add)
    return gate


class Inputs:
    """The subscriptions of one activation: synchronised pair, CameraInfo caches, TF.

    `on_pair(FrameInputs)` is called from the synchroniser; `count(topic)` for every message;
    `on_info(stream, msg)` for every CameraInfo ("rgb" or "depth"), which decides whether the
    caches `rgb_infos`/`depth_infos` keep it; `admit_image(stream, topic, msg)` for every image
    (or cloud), which decides whether it goes on to the synchroniser.
    """

    def __init__(
        self,
        node: Any,
        params: NodeParams,
        on_pair: Callable[[FrameInputs], None],
        count: Callable[[str], None],
        on_info: Callable[[str, Any], None],
        admit_image: Callable[[str, str, Any], bool],
    ) -> None:
        from message_filters import ApproximateTimeSynchronizer, Subscriber, TimeSynchronizer
        from sensor_msgs.msg import CameraInfo

        self._node = node
        self._params = params
        self.subscriptions: list[Any] = []
        self.filters: list[Any] = []
        self.rgb_infos = InfoCache(node.resolve_topic_name(topics.RGB_INFO), params.queue_size)
        self.depth_infos: InfoCache | None = None  # lidar mode has no depth CameraInfo
        if params.input_mode != "lidar":
            self.depth_infos = InfoCache(node.resolve_topic_name(topics.DEPTH_INFO), params.queue_size)
        self.tf_buffer: Any = None
        self._tf_listener: Any = None
        self._jump_handle: Any = None
        # CameraInfo first: of messages that arrive together, the executor takes these first
        infos = [(topics.RGB_INFO, "rgb")] + ([(topics.DEPTH_INFO, "depth")] if self.depth_infos is not None else [])
        for name, stream in infos:
            self.subscriptions.append(
                node.create_subscription(
                    CameraInfo, name, _info_callback(stream, _counter(count, name), on_info), input_qos(),
                    qos_overriding_options=_overridable(),
                )
            )
        image_topic, source_topic = topics.synchronised_topics(params.input_mode)
        for name in (image_topic, source_topic):
            msg_type, topic = self._input_type_and_topic(name)
            subscriber = Subscriber(node, msg_type, topic, qos_profile=input_qos(), qos_overriding_options=_overridable())
            subscriber.registerCallback(_counter(count, name))
            stream = "rgb" if name == image_topic else "depth"
            self.filters.append(admission_gate(subscriber, _admitter(admit_image, stream, topic)))
            self.subscriptions.append(subscriber.sub)
        if params.exact_sync:
            self._sync = TimeSynchronizer(self.filters, params.queue_size)
        else:
            self._sync = ApproximateTimeSynchronizer(self.filters, params.queue_size, params.slop)
        self._sync.registerCallback(lambda rgb, source: on_pair(FrameInputs(rgb, source)))

        if params.input_mode in topics.TF_INPUT_MODES:
            self._start_tf()

    def _input_type_and_topic(self, name: str) -> tuple[Any, str]:
        from sensor_msgs.msg import CompressedImage, Image, PointCloud2

        if name == topics.LIDAR_POINTS:
            return PointCloud2, name
        transport = self._params.rgb_transport if name == topics.RGB_IMAGE else self._params.depth_transport
        if transport == "raw":
            return Image, name
        # image_transport resolves (and remaps) the base topic first, then appends the transport
        return CompressedImage, topics.transport_topic(self._node.resolve_topic_name(name), transport)

    def _start_tf(self) -> None:
        """A TF buffer and listener; the buffer is cleared when the clock jumps back (a bag loop)."""
        from rclpy.clock import JumpThreshold
        from rclpy.duration import Duration
        from tf2_ros import Buffer, TransformListener

        self.tf_buffer = Buffer()
        self._tf_listener = TransformListener(self.tf_buffer, self._node)
        threshold = JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1.0), on_clock_change=True)
        self._jump_handle = self._node.get_clock().create_jump_callback(threshold, post_callback=self._on_jump)

    def _on_jump(self, jump: Any) -> None:
        if self.tf_buffer is not None:
            self._node.get_logger().warning("the clock jumped back (bag loop?): clearing the TF buffer")
            self.tf_buffer.clear()

    def extrinsic(self, rgb: Any, source: Any) -> Any:
        """The depth source's pose in the RGB optical frame at the source's stamp, from TF."""
        from rclpy.duration import Duration
        from rclpy.time import Time
        from tf2_ros import TransformException

        target, frame = rgb.header.frame_id, source.header.frame_id
        try:
            transform = self.tf_buffer.lookup_transform(
                target, frame, Time.from_msg(source.header.stamp),
                timeout=Duration(seconds=self._params.tf_timeout),
            )
        except TransformException as error:
            raise FrameError(
                "no_transform", f"no transform {frame} -> {target} at the depth source's stamp: {error}"
            ) from error
        return extrinsic_from_transform(transform)

    def destroy(self) -> None:
        for subscription in self.subscriptions:
            self._node.destroy_subscription(subscription)
        self.subscriptions = []
        if self._tf_listener is not None:
            self._tf_listener.unregister()
        if self._jump_handle is not None:
            self._jump_handle.unregister()
        self.tf_buffer = self._tf_listener = self._jump_handle = None


def _counter(count: Callable[[str], None], name: str) -> Callable[[Any], None]:
    def callback(msg: Any) -> None:
        count(name)

    return callback


def _admitter(admit_image: Callable[[str, str, Any], bool], stream: str, topic: str) -> Callable[[Any], bool]:
    def admit(msg: Any) -> bool:
        return admit_image(stream, topic, msg)

    return admit


def _info_callback(
    stream: str, count: Callable[[Any], None], on_info: Callable[[str, Any], None]
) -> Callable[[Any], None]:
    def callback(msg: Any) -> None:
        count(msg)
        on_info(stream, msg)

    return callback


def guard_change_state(node: Any) -> None:
    """rclpy 7.1.6 lets the RCLError of a transition asked by id in the wrong state escape the
    change_state service, and spin() with it (by label it answers failure): answer
    success=false, log why, and keep the node alive."""
    from rclpy.impl.implementation_singleton import rclpy_implementation

    service = node._service_change_state  # rclpy's own service; no public hook for this
    original = service.callback

    def guarded(request: Any, response: Any) -> Any:
        try:
            return original(request, response)
        except rclpy_implementation.RCLError as error:
            label = request.transition.label or request.transition.id
            node.get_logger().warning(f"transition {label} refused in this state: {error}")
            response.success = False
            return response

    service.callback = guarded


class Diagnostics:
    """/diagnostics through diagnostic_updater (when installed): one task, `DIAGNOSTIC_TASK`.

    `state()` gives the lifecycle state in words and, while active, the last HealthReport;
    `extra()` more (key, value) pairs (the registration's, `registration_io.py`).
    """

    def __init__(self, node: Any, state: Callable[[], tuple[str, Any]],
                 extra: Callable[[], list[tuple[str, str]]] = list) -> None:
        self._state = state
        self._extra = extra
        try:
            from diagnostic_updater import Updater
        except ImportError:
            node.get_logger().info("diagnostic_updater is not installed: no /diagnostics from this node")
            self._updater = None
            return
        self._updater = Updater(node)
        self._updater.setHardwareID("none")
        self._updater.add(DIAGNOSTIC_TASK, self._diagnose)

    def update(self) -> None:
        """Publish now (the updater also publishes every `diagnostic_updater.period` on the ROS clock)."""
        if self._updater is not None:
            self._updater.force_update()

    def _diagnose(self, stat: Any) -> Any:
        from diagnostic_msgs.msg import DiagnosticStatus

        state, report = self._state()
        for key, value in self._extra():
            stat.add(key, value)
        if report is None:
            stat.summary(DiagnosticStatus.OK, f"{state}, first health window not closed yet" if state == "active"
                         else state)
            return stat
        levels = {"ok": (DiagnosticStatus.OK, "ok"), "warn": (DiagnosticStatus.WARN, "frames skipped"),
                  "stale": (DiagnosticStatus.WARN, "no output in the last window")}
        stat.summary(*levels[report.level])
        for key, value in report.diagnostic_values():
            stat.add(key, value)
        return stat
