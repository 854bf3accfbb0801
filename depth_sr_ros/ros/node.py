"""`depth_sr_node`: the ROS 2 lifecycle node, a thin adapter from rclpy to `node_logic` and the core.

Lifecycle (rclpy.lifecycle, the lifecycle_py demo pattern; each successful transition ends in `super()`):
- configure: read and validate the parameters, build the pipeline (model weights, inference
  backend, TensorRT engine), create the lifecycle publishers. A failure leaves the node
  unconfigured and logs why.
- activate: message_filters subscribers (sensor-data QoS), the synchroniser
  (ApproximateTimeSynchronizer(queue_size, slop), or TimeSynchronizer when exact_sync), the TF
  listener in unaligned_depth and lidar modes and the health timer; `super()` enables the
  publishers.
- deactivate: destroy subscribers, synchroniser, TF listener and timer, return cached GPU memory
  (the model stays loaded); `super()` disables the publishers.
- cleanup / shutdown: destroy the publishers, drop the pipeline, release cached GPU memory.

Topics (relative; remap in launch): inputs rgb/image, rgb/camera_info and either depth/image +
depth/camera_info (input_mode "depth", or "unaligned_depth" for a depth camera registered with
TF) or lidar/points (input_mode "lidar"); outputs
depth_sr/image, depth_sr/camera_info and depth_sr/points (built only while subscribed).

Everything that decides something lives in `depth_sr_ros.ros.node_logic` (tested without ROS);
conversion and super-resolution live in `depth_sr_ros.core.frame_processor.FrameProcessor`,
shared with replay. ROS imports are guarded so the module imports (and type-checks) without ROS.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.ros import node_logic as nl
from depth_sr_ros.ros.rclpy_messages import rclpy_builder

try:
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        SetParametersResult,
    )
    from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
    from rclpy.qos import qos_profile_sensor_data
except ImportError as error:  # no ROS 2 here: the module still imports; main() says what is missing
    _ROS_IMPORT_ERROR: ImportError | None = error
    LifecycleNode = object
else:
    _ROS_IMPORT_ERROR = None

SKIP_LOG_THROTTLE_S = 5.0  # at most one log line per this many seconds for skipped frames
DIAGNOSTIC_TASK = "depth super-resolution"


def parameter_descriptor(spec: nl.ParamSpec) -> Any:
    """The rcl_interfaces ParameterDescriptor for one row of the parameter table.

    The type is inferred by rclpy from the default value; ranges are inclusive (step 0 = any
    value in the range); `choices` are listed in `additional_constraints` and enforced by the
    node's set-parameters callback.
    """
    descriptor = ParameterDescriptor(
        name=spec.name,
        description=spec.description,
        additional_constraints=spec.constraints_text(),
        read_only=False,
    )
    if spec.value_range is not None:
        lo, hi = spec.value_range
        if spec.type is int:
            descriptor.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)
            ]
    return descriptor


class DepthSRNode(LifecycleNode):
    """RGB-guided depth super-resolution as a managed (lifecycle) node."""

    def __init__(self, node_name: str = nl.NODE_NAME, **kwargs: Any) -> None:
        self._params = nl.NodeParams.defaults()
        self._slot = nl.ProcessorSlot()
        self._builder = rclpy_builder()
        self._health = nl.HealthMonitor(self._params.health_period)
        self._handler = nl.FrameHandler(self._builder, self._health)
        self._last_report: nl.HealthReport | None = None
        self._active = False
        self._publishers: dict[str, Any] = {}
        self._subscribers: list[Any] = []
        self._synchroniser: Any = None
        self._health_timer: Any = None
        self._tf_buffer: Any = None
        self._tf_listener: Any = None
        self._time_jump_handle: Any = None
        super().__init__(node_name, **kwargs)
        for spec in nl.PARAMETERS:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
        # Registered after declaring, so values from the params file are checked in on_configure.
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._updater = self._make_diagnostic_updater()

    # ------------------------------------------------------------------------------ lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._params = nl.NodeParams.from_values(
                {spec.name: self.get_parameter(spec.name).value for spec in nl.PARAMETERS}
            )
        except nl.ParameterRejected as error:
            self.get_logger().error(f"configure failed, invalid parameter: {error}")
            return TransitionCallbackReturn.FAILURE
        try:
            self._slot.build(self._params)
            self._create_publishers()
        except Exception as error:  # noqa: BLE001 - missing weights, no CUDA, engine build: say why, stay unconfigured
            # (rclpy would turn an escaping exception into an ERROR transition without a word)
            self.get_logger().error(f"configure failed: {type(error).__name__}: {error}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {self._describe_pipeline()}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._health = nl.HealthMonitor(self._params.health_period, window_start=self._now_s())
        self._handler = nl.FrameHandler(self._builder, self._health)
        try:
            self._create_subscriptions()
        except Exception as error:  # noqa: BLE001 - e.g. message_filters or tf2_ros missing: say why
            self.get_logger().error(f"activate failed: {type(error).__name__}: {error}")
            self._destroy_subscriptions()
            return TransitionCallbackReturn.FAILURE
        self._health_timer = self.create_timer(self._params.health_period, self._report_health)
        self._active = True
        topics = ", ".join(nl.input_topics(self._params.input_mode))
        self.get_logger().info(f"active: synchronising {topics} in namespace {self.get_namespace()}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_subscriptions()
        self._active = False
        nl.release_gpu_memory()  # cached activations; the model itself stays loaded until cleanup
        self.get_logger().info(f"deactivated; totals: {self._health.report(self._now_s()).summary()}")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_subscriptions()
        self._active = False
        self._release()
        return super().on_shutdown(state)

    def _release(self) -> None:
        for publisher in self._publishers.values():
            self.destroy_lifecycle_publisher(publisher)
        self._publishers = {}
        self._slot.release()

    # --------------------------------------------------------------------------- parameters

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in nl.PARAMETER_BY_NAME}
        if not changes:  # use_sim_time, diagnostic_updater.period, ...
            return SetParametersResult(successful=True)
        try:
            plan = nl.plan_change(
                self._params, changes, configured=self._slot.pipeline is not None, active=self._active
            )
        except nl.ParameterRejected as error:
            return SetParametersResult(successful=False, reason=str(error))
        if plan.rebuild_pipeline:
            self.get_logger().info(f"rebuilding the pipeline for {changes}")
            try:
                self._slot.build(plan.params)
            except Exception as error:  # noqa: BLE001 - keep the running pipeline and refuse the change
                reason = (
                    "pipeline rebuild failed, the previous pipeline keeps running: "
                    f"{type(error).__name__}: {error}"
                )
                self.get_logger().error(reason)
                return SetParametersResult(successful=False, reason=reason)
            self.get_logger().info(f"pipeline swapped in: {self._describe_pipeline()}")
        elif plan.rebuild_output:
            self._slot.set_output(plan.params)
        self._params = plan.params
        return SetParametersResult(successful=True)

    def _describe_pipeline(self) -> str:
        pipeline, p = self._slot.pipeline, self._params
        return (
            f"backbone {getattr(pipeline, 'backbone_name', p.backbone)} x{p.scale}, "
            f"backend {p.inference_backend}, device {p.device}, {p.precision}, "
            f"output {p.output_encoding}, input_mode {p.input_mode}"
        )

    # ------------------------------------------------------------------------- communication

    def _create_publishers(self) -> None:
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        for topic, msg_type in (
            (nl.OUT_IMAGE, Image),
            (nl.OUT_INFO, CameraInfo),
            (nl.OUT_POINTS, PointCloud2),
        ):
            self._publishers[topic] = self.create_lifecycle_publisher(
                msg_type, topic, qos_profile_sensor_data
            )

    def _create_subscriptions(self) -> None:
        from message_filters import (
            ApproximateTimeSynchronizer,
            Subscriber,
            TimeSynchronizer,
        )
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        types = {
            nl.RGB_IMAGE: Image,
            nl.RGB_INFO: CameraInfo,
            nl.DEPTH_IMAGE: Image,
            nl.DEPTH_INFO: CameraInfo,
            nl.LIDAR_POINTS: PointCloud2,
        }
        p = self._params
        for topic in nl.input_topics(p.input_mode):
            subscriber = Subscriber(self, types[topic], topic, qos_profile=qos_profile_sensor_data)
            # Registered before the synchroniser's own callback: counts every arriving message.
            subscriber.registerCallback(self._count_input, topic)
            self._subscribers.append(subscriber)
        if p.exact_sync:
            self._synchroniser = TimeSynchronizer(self._subscribers, p.queue_size)
        else:
            self._synchroniser = ApproximateTimeSynchronizer(self._subscribers, p.queue_size, p.slop)
        if p.input_mode in nl.TF_INPUT_MODES:
            self._start_tf()
        callbacks = {"depth": self._on_pair, "unaligned_depth": self._on_unaligned, "lidar": self._on_lidar}
        self._synchroniser.registerCallback(callbacks[p.input_mode])

    def _start_tf(self) -> None:
        """A TF buffer and listener; the buffer is cleared when the clock jumps back (a bag loop)."""
        from rclpy.clock import JumpThreshold
        from rclpy.duration import Duration
        from tf2_ros import Buffer, TransformListener

        self._tf_buffer = Buffer()
        self._tf_listener = TransformListener(self._tf_buffer, self)
        threshold = JumpThreshold(min_forward=None, min_backward=Duration(seconds=-1.0), on_clock_change=True)
        self._time_jump_handle = self.get_clock().create_jump_callback(
            threshold, post_callback=self._on_time_jump
        )

    def _on_time_jump(self, jump: Any) -> None:
        if self._tf_buffer is not None:
            self.get_logger().warning("the clock jumped back (bag loop?): clearing the TF buffer")
            self._tf_buffer.clear()

    def _destroy_subscriptions(self) -> None:
        for subscriber in self._subscribers:
            self.destroy_subscription(subscriber.sub)
        self._subscribers = []
        self._synchroniser = None
        if self._tf_listener is not None:
            self._tf_listener.unregister()
        if self._time_jump_handle is not None:
            self._time_jump_handle.unregister()
        self._tf_listener = self._tf_buffer = self._time_jump_handle = None
        if self._health_timer is not None:
            self.destroy_timer(self._health_timer)
        self._health_timer = None

    # ----------------------------------------------------------------------------- callbacks

    def _count_input(self, msg: Any, topic: str) -> None:
        self._health.count_input(topic)

    def _on_pair(self, rgb: Any, rgb_info: Any, depth: Any, depth_info: Any) -> None:
        result = self._handler.handle_pair(
            self._slot.processor, rgb, rgb_info, depth, depth_info, self._want_points()
        )
        self._publish(result)

    def _on_unaligned(self, rgb: Any, rgb_info: Any, depth: Any, depth_info: Any) -> None:
        result = self._handler.handle_unaligned(
            self._slot.processor,
            rgb,
            rgb_info,
            depth,
            depth_info,
            lambda: self._lookup_extrinsic(rgb, depth),
            self._want_points(),
        )
        self._publish(result)

    def _on_lidar(self, rgb: Any, rgb_info: Any, cloud: Any) -> None:
        result = self._handler.handle_lidar(
            self._slot.processor,
            rgb,
            rgb_info,
            cloud,
            lambda: self._lookup_extrinsic(rgb, cloud),
            self._want_points(),
        )
        self._publish(result)

    def _want_points(self) -> bool:
        points = self._publishers.get(nl.OUT_POINTS)
        return points is not None and nl.want_points(self._params, points.get_subscription_count())

    def _lookup_extrinsic(self, rgb: Any, source_msg: Any) -> Any:
        """The depth source's pose in the RGB optical frame at the source's stamp, from TF."""
        from rclpy.duration import Duration
        from rclpy.time import Time
        from tf2_ros import TransformException

        target, source = rgb.header.frame_id, source_msg.header.frame_id
        try:
            transform = self._tf_buffer.lookup_transform(
                target,
                source,
                Time.from_msg(source_msg.header.stamp),
                timeout=Duration(seconds=self._params.tf_timeout),
            )
        except TransformException as error:
            raise FrameError(
                "no_transform", f"no transform {source} -> {target} at the depth source's stamp: {error}"
            ) from error
        return nl.extrinsic_from_transform(transform)

    def _publish(self, result: nl.PairResult) -> None:
        if result.messages is None:
            self._log_skip(result)
            return
        messages = result.messages
        self._publishers[nl.OUT_IMAGE].publish(messages.image)
        self._publishers[nl.OUT_INFO].publish(messages.camera_info)
        if messages.points is not None:
            self._publishers[nl.OUT_POINTS].publish(messages.points)
        self._health.count_published(messages.stamp_s, self._now_s(), messages.processing_ms)

    def _log_skip(self, result: nl.PairResult) -> None:
        skip = result.skip
        if result.exception is not None:
            trace = "".join(traceback.format_exception(result.exception))
            self.get_logger().error(
                f"frame skipped ({nl.INTERNAL_ERROR}): {skip}\n{trace}",
                throttle_duration_sec=SKIP_LOG_THROTTLE_S,
            )
        else:
            self.get_logger().warning(
                f"frame skipped ({skip.reason if skip else 'unknown'}): {skip}",
                throttle_duration_sec=SKIP_LOG_THROTTLE_S,
            )

    # -------------------------------------------------------------------------------- health

    def _now_s(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _report_health(self) -> None:
        self._last_report = self._health.report(self._now_s())
        self.get_logger().info(f"health: {self._last_report.summary()}")

    def _make_diagnostic_updater(self) -> Any:
        try:
            from diagnostic_updater import Updater
        except ImportError:
            self.get_logger().info("diagnostic_updater is not installed: no /diagnostics from this node")
            return None
        updater = Updater(self)
        updater.setHardwareID("none")
        updater.add(DIAGNOSTIC_TASK, self._diagnose)
        return updater

    def _diagnose(self, stat: Any) -> Any:
        from diagnostic_msgs.msg import DiagnosticStatus

        report = self._last_report
        if not self._active:
            configured = self._slot.pipeline is not None
            stat.summary(DiagnosticStatus.OK, "inactive (configured)" if configured else "unconfigured")
            return stat
        if report is None:
            stat.summary(DiagnosticStatus.OK, "active, first health window not closed yet")
            return stat
        level = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "stale": DiagnosticStatus.WARN}
        message = {"ok": "ok", "warn": "frames skipped", "stale": "no output in the last window"}
        stat.summary(level[report.level], message[report.level])
        stat.add("output rate (Hz)", f"{report.rate_hz:.2f}")
        stat.add("latency stamp->publish mean (ms)", f"{report.latency_mean_ms:.1f}")
        stat.add("latency stamp->publish max (ms)", f"{report.latency_max_ms:.1f}")
        stat.add("processing mean (ms)", f"{report.processing_mean_ms:.1f}")
        stat.add("pairs", str(report.pairs))
        for topic, count in report.unpaired.items():
            stat.add(f"unpaired {topic}", str(count))
        for reason, count in sorted(report.skips_total.items()):
            stat.add(f"skipped {reason}", str(count))
        return stat


def main(args: list[str] | None = None) -> int:
    """Console script `depth_sr_node` (`ros2 run depth_sr_ros depth_sr_node`)."""
    if _ROS_IMPORT_ERROR is not None:
        print(
            f"depth_sr_node needs ROS 2 (rclpy, sensor_msgs, message_filters): {_ROS_IMPORT_ERROR}. "
            "Source /opt/ros/<distro>/setup.bash and the workspace's install/setup.bash.",
            file=sys.stderr,
        )
        return 1
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    rclpy.init(args=args)
    node = DepthSRNode()
    # Multi-threaded so that TF messages (tf2_ros listens in a reentrant callback group) keep
    # arriving while a TF-mode callback waits up to tf_timeout for a transform. The node's
    # own callbacks share its default mutually exclusive group, so they never run concurrently:
    # a pipeline swap from a parameter change always happens between two frames.
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
