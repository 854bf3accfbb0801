"""`depth_sr_node`: the ROS 2 lifecycle node. It adapts rclpy to the ROS-free modules and nothing else.

configure: validate the parameters, build and warm up the pipeline (`pipeline_slot`), create the
publishers; a failure logs why and leaves the node unconfigured. activate: subscribe
(`rclpy_io.Inputs`), start the health timer. deactivate, cleanup, shutdown: undo them.
Threads: frames are processed on the `frame_worker.FrameWorker`'s own thread, and everything
else on a SingleThreadedExecutor: inputs (which only offer the newest pair), /clock, TF, the
health timer (steady clock), the services. None of them waits behind a frame. (rclpy 7.1.6's
MultiThreadedExecutor busy-loops in Python when callbacks queue up: with /clock at 100 Hz it took
a 15 ms frame to 0.5-3 s.)
"""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from depth_sr_ros.core.registration_estimate import RegistrationEstimate
from depth_sr_ros.ros import parameters as params_table
from depth_sr_ros.ros import topics
from depth_sr_ros.ros.frame_handler import FrameHandler, FrameInputs
from depth_sr_ros.ros.frame_worker import FrameWorker
from depth_sr_ros.ros.health import HealthMonitor
from depth_sr_ros.ros.pipeline_slot import PipelineSlot, release_gpu_memory
from depth_sr_ros.ros.rclpy_io import Diagnostics, Inputs, Outputs, guard_change_state, parameter_descriptor
from depth_sr_ros.ros.rclpy_messages import rclpy_builder
from depth_sr_ros.ros.registration_io import RegistrationIO

if TYPE_CHECKING:  # the type checker sees rclpy's class (Any where ROS is not installed)
    from rclpy.lifecycle import LifecycleNode as _LifecycleNode
else:
    try:
        from rclpy.lifecycle import LifecycleNode as _LifecycleNode
    except ImportError:  # no ROS 2 here: the module still imports; main() says what is missing
        _LifecycleNode = object

class DepthSRNode(_LifecycleNode):
    """RGB-guided depth super-resolution as a managed (lifecycle) node."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(topics.NODE_NAME, **kwargs)
        self._params = params_table.NodeParams.defaults()
        self._slot = PipelineSlot()
        self._builder = rclpy_builder()
        self._outputs: Outputs | None = None
        self._inputs: Inputs | None = None
        self._worker: FrameWorker | None = None
        self._health = HealthMonitor(self._params.health_period)
        self._health_timer: Any = None
        self._last_report: Any = None
        self._registration: RegistrationIO | None = None  # input_mode depth, while active
        self._kept_registration: RegistrationEstimate | None = None  # the last activation's, until cleanup
        for spec in params_table.PARAMETERS:
            self.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
        # Registered after declaring, so values from the params file are checked in on_configure.
        self.add_on_set_parameters_callback(self._on_set_parameters)
        guard_change_state(self)
        self._diagnostics = Diagnostics(self, self._diagnostic_state, self._registration_values)

    # ------------------------------------------------------------------------------ lifecycle

    def on_configure(self, state: Any) -> Any:
        from rclpy.lifecycle import TransitionCallbackReturn

        try:
            params = params_table.NodeParams.from_values(
                {spec.name: self.get_parameter(spec.name).value for spec in params_table.PARAMETERS}
            )
            start = time.perf_counter()
            warm_s = self._slot.build(params)
            built_s = time.perf_counter() - start
            self._outputs = Outputs(self)
        except Exception as error:  # noqa: BLE001 - bad parameter, missing weights, no CUDA: say why
            # (rclpy would turn an escaping exception into an ERROR transition without a word)
            self.get_logger().error(f"configure failed: {type(error).__name__}: {error}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._params = params
        warm = "warm-up at the first RGB frame" if warm_s is None else (
            f"warmed up for {params.input_width}x{params.input_height} in {warm_s:.2f} s")
        self.get_logger().info(f"configured in {built_s:.2f} s ({warm}): {self._slot.describe()}; "
                               f"output {params.output_encoding}, input_mode {params.input_mode}")
        return super().on_configure(state)

    def on_activate(self, state: Any) -> Any:
        from rclpy.clock import Clock, ClockType
        from rclpy.lifecycle import TransitionCallbackReturn

        p = self._params
        self._health = HealthMonitor(
            p.health_period, window_start=time.monotonic(), paired_topics=topics.synchronised_topics(p.input_mode)
        )
        self._slot.bounds.reset()  # a new activation: the streams' sizes are fixed anew by their first good frames
        try:
            self._inputs = Inputs(self, p, self._on_pair, self._health.count_input, self._on_info, self._admit_image)
            self._registration = (RegistrationIO(self, p, self._kept_registration)
                                  if p.input_mode == "depth" else None)
        except Exception as error:  # noqa: BLE001 - e.g. message_filters or tf2_ros missing: say why
            self.get_logger().error(f"activate failed: {type(error).__name__}: {error}")
            return TransitionCallbackReturn.FAILURE
        handler = FrameHandler(self._builder, self._health, p.input_mode, self._inputs.rgb_infos, self._inputs.depth_infos,
                               registration=self._registration)
        outputs = self._outputs
        assert outputs is not None
        self._worker = FrameWorker(
            self._slot, handler, outputs.publish, lambda: self.get_clock().now().nanoseconds * 1e-9,
            self.get_logger(), lambda: params_table.want_points(self._params, int(outputs.points_wanted())),
            self._inputs.extrinsic,
            want_confidence=lambda: params_table.want_confidence(self._params, int(outputs.confidence_wanted())),
        )
        self._worker.start()
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # health lines also without /clock under sim time
        self._health_timer = self.create_timer(p.health_period, self._report_health, clock=steady)
        result = super().on_activate(state)
        names = ", ".join(s.topic_name for s in self._inputs.subscriptions)
        self.get_logger().info(f"active: {p.input_mode} input from {names}")
        return result

    def on_deactivate(self, state: Any) -> Any:
        self._stop_inputs()
        release_gpu_memory()  # cached activations; the model itself stays loaded until cleanup
        self.get_logger().info(f"deactivated; totals: {self._health.report(time.monotonic()).summary()}")
        return super().on_deactivate(state)

    def on_cleanup(self, state: Any) -> Any:
        self._release()
        self._kept_registration = None  # a new configuration may be another rig
        return super().on_cleanup(state)

    def on_shutdown(self, state: Any) -> Any:
        self._stop_inputs()
        self._release()
        return super().on_shutdown(state)

    def destroy_node(self) -> None:
        self._stop_inputs()
        self._release()
        super().destroy_node()

    def _stop_inputs(self) -> None:
        if self._worker is not None:
            self._worker.stop()  # the frame in flight finishes first
        self._worker = None
        if self._registration is not None:
            self._registration.destroy()  # after the worker: no frame offers it more
            self._kept_registration = self._registration.online.estimate or self._kept_registration
        self._registration = None
        if self._inputs is not None:
            self._inputs.destroy()
        self._inputs = None
        if self._health_timer is not None:
            self.destroy_timer(self._health_timer)
        self._health_timer = None

    def _release(self) -> None:
        if self._outputs is not None:
            self._outputs.destroy()
        self._outputs = None
        self._slot.release()

    # --------------------------------------------------------------------------- parameters

    def _on_set_parameters(self, parameters: list[Any]) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        changes = {p.name: p.value for p in parameters if p.name in params_table.PARAMETER_BY_NAME}
        if not changes:  # use_sim_time, qos_overrides.*, diagnostic_updater.*, ...
            return SetParametersResult(successful=True)
        configured, active = self._slot.pipeline is not None, self._worker is not None
        try:
            plan = params_table.plan_change(self._params, changes, configured=configured, active=active)
            if plan.rebuild_pipeline:
                warm_s = self._slot.build(plan.params)
                warm = "" if warm_s is None else f" (warmed up in {warm_s:.2f} s)"
                self.get_logger().info(f"pipeline swapped in{warm}: {self._slot.describe()}")
            elif plan.rebuild_output:
                self._slot.set_output(plan.params)
        except params_table.ParameterRejected as error:
            return SetParametersResult(successful=False, reason=str(error))
        except Exception as error:  # noqa: BLE001 - keep the running pipeline and refuse the change
            reason = f"pipeline rebuild failed, the previous pipeline keeps running: {type(error).__name__}: {error}"
            self.get_logger().error(reason)
            return SetParametersResult(successful=False, reason=reason)
        self._params = plan.params
        if self._registration is not None:
            self._registration.set_params(plan.params)
        return SetParametersResult(successful=True)

    # ----------------------------------------------------------------------------- frames

    def _on_pair(self, pair: FrameInputs) -> None:
        if (worker := self._worker) is not None:
            worker.offer(pair)

    def _on_info(self, stream: str, info: Any) -> None:
        if (worker := self._worker) is not None:
            worker.camera_info(stream, info)

    def _admit_image(self, stream: str, topic: str, msg: Any) -> bool:
        worker = self._worker
        return worker is not None and worker.admit_image(stream, topic, msg)

    # -------------------------------------------------------------------------------- health

    def _report_health(self) -> None:
        self._last_report = self._health.report(time.monotonic())
        self.get_logger().info(f"health: {self._last_report.summary()}")
        self._diagnostics.update()

    def _registration_values(self) -> list[tuple[str, str]]:
        registration = self._registration
        return [] if registration is None else registration.diagnostic_values()

    def _diagnostic_state(self) -> tuple[str, Any]:  # the state in words; the last health report while active
        if self._worker is not None:
            return "active", self._last_report
        return ("inactive (configured)" if self._slot.pipeline is not None else "unconfigured"), None


def _interrupt_once(signum: int, frame: Any) -> None:
    """The first SIGINT stops spinning; later ones (launch forwards Ctrl-C to the whole process
    group, so two arrive) are ignored so that they cannot interrupt the cleanup."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Console script `depth_sr_node` (`ros2 run depth_sr_ros depth_sr_node`)."""
    if _LifecycleNode is object:
        print("depth_sr_node needs ROS 2: source /opt/ros/<distro>/setup.bash and install/setup.bash", file=sys.stderr)
        return 1
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    signal.signal(signal.SIGINT, _interrupt_once)  # before rclpy.init: rclpy's handler chains to it
    rclpy.init(args=args)
    node = DepthSRNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        executor.shutdown(timeout_sec=0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
