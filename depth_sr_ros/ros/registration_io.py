"""The node's self-registration over rclpy: the TF residual, the estimate's topic, its diagnostics.

For input_mode `depth` (depth labelled as registered to the colour camera); the other input
modes register their depth with the TF extrinsic of the depth source and get no residual.
- `registration: tf` looks up the depth sensor's pose in the colour optical frame from TF:
  `lookup_transform(colour frame, depth sensor frame, latest)`, the depth sensor frame being the
  depth image's frame_id when it names another frame than the colour image's, else
  `<colour frame>_depth_sensor` (the child of `depth-sr calibrate`'s snippet, as in
  `depth-sr replay --registration tf`). Looked up at most once a second from the frame path
  (never waiting); while there is none the depth is taken as labelled, said once in the log.
- `registration: auto` looks the same transform up as its start, estimates online
  (`online_registration.OnlineRegistration`) and publishes each new estimate on
  `depth_sr/registration` (geometry_msgs/TransformStamped, parent the colour optical frame,
  child `<colour frame>_depth_sensor`; reliable, transient local, depth 1: a late subscriber
  gets the current one).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.registration_estimate import RegistrationEstimate
from depth_sr_ros.core.reprojection import extrinsic_from_params
from depth_sr_ros.replay.residual import DEPTH_SENSOR_SUFFIX
from depth_sr_ros.ros.frame_handler import extrinsic_from_transform
from depth_sr_ros.ros.online_registration import OnlineConfig, OnlineRegistration, RegistrationStatus
from depth_sr_ros.ros.parameters import NodeParams

REGISTRATION_TOPIC = "depth_sr/registration"
LOOKUP_PERIOD_S = 1.0  # seconds between TF lookups of the given residual
STOP_WAIT_S = 1.0  # seconds deactivation waits for the estimator's job in flight
# While the estimator runs, the interpreter hands the GIL over every 0.5 ms instead of 5 ms: the
# frame thread waits less for it at each of its many reacquisitions. In one process on this busy
# 2-core machine (lite x4 frame path, estimator at budget 0.05, the 15 s after it started, which
# hold its first estimate): 0.82 of the frame rate without the estimator at 5 ms, 0.91 at 0.5 ms.
SWITCH_INTERVAL_S = 0.0005


def registration_qos() -> Any:
    """Reliable, transient local, keep the last 1: the current estimate for late subscribers."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def sensor_frame(colour_frame: str, depth_frame: str) -> str:
    """The depth sensor's frame: the depth image's when it names another, else `<colour>_depth_sensor`."""
    return depth_frame if depth_frame and depth_frame != colour_frame else f"{colour_frame}{DEPTH_SENSOR_SUFFIX}"


class RegistrationIO:
    """One activation's registration (module docstring). The frame path calls `residual(rgb_msg,
    depth_msg)` and `observe(rgb, depth, intrinsics)`; the node calls `set_params` on a change,
    `diagnostic_values` for /diagnostics and `destroy` at deactivation, after which
    `online.estimate` is what the next activation may keep."""

    def __init__(self, node: Any, params: NodeParams, kept: RegistrationEstimate | None = None) -> None:
        """`kept`: the estimate of the node's last activation (`auto` starts from it and publishes
        it at the first frame, when the colour frame is known)."""
        self._node = node
        self.online = OnlineRegistration(
            OnlineConfig(mode=params.registration, budget=params.registration_budget), on_change=self._publish)
        self.online.frozen = params.registration_frozen
        self._publish_kept = False
        if kept is not None and params.registration == "auto":
            self.online.resume(kept)
            self._publish_kept = True
        self._colour_frame = ""
        self._next_lookup_s = 0.0
        self._said_missing = False
        self._said_found: tuple[str, str] | None = None
        self._tf_buffer: Any = None
        self._tf_listener: Any = None
        self._publisher: Any = None
        if params.registration in ("tf", "auto"):
            from tf2_ros import Buffer, TransformListener

            self._tf_buffer = Buffer()
            self._tf_listener = TransformListener(self._tf_buffer, node)
        if params.registration == "auto":
            from geometry_msgs.msg import TransformStamped

            self._publisher = node.create_publisher(TransformStamped, REGISTRATION_TOPIC, registration_qos())
        self._switch_interval: float | None = None
        if params.registration == "auto":
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL_S, self._switch_interval))
        self.online.start()

    def residual(self, rgb_msg: Any, depth_msg: Any) -> Extrinsic | None:
        """The residual to apply to this frame's depth (depth sensor -> colour optical frame)."""
        colour = str(rgb_msg.header.frame_id).lstrip("/")
        self._colour_frame = colour
        if self._publish_kept:
            self._publish_kept = False
            self._publish(self.online.status())
        now = time.monotonic()
        if self._tf_buffer is not None and now >= self._next_lookup_s:
            self._next_lookup_s = now + LOOKUP_PERIOD_S
            self._look_up(colour, sensor_frame(colour, str(depth_msg.header.frame_id).lstrip("/")))
        return self.online.residual()

    def observe(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: Any) -> None:
        """The decoded frame, before any residual is applied (kept by reference, never copied)."""
        self.online.offer(rgb, depth, intrinsics)

    def set_params(self, params: NodeParams) -> None:
        """The live parameters: registration_frozen, registration_budget."""
        self.online.frozen = params.registration_frozen
        self.online.config = replace(self.online.config, budget=params.registration_budget)

    def diagnostic_values(self) -> list[tuple[str, str]]:
        return self.online.status().diagnostic_values()

    def destroy(self) -> None:
        """At deactivation: an estimate in flight is not waited for beyond STOP_WAIT_S (it ends on its own)."""
        self.online.stop(STOP_WAIT_S)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        if self._publisher is not None:
            self._node.destroy_publisher(self._publisher)
        if self._tf_listener is not None:
            self._tf_listener.unregister()
        self._publisher = self._tf_listener = self._tf_buffer = None

    def _look_up(self, colour: str, sensor: str) -> None:
        from rclpy.time import Time
        from tf2_ros import TransformException

        try:
            transform = self._tf_buffer.lookup_transform(colour, sensor, Time())
            given = extrinsic_from_transform(transform)
        except (TransformException, FrameError) as error:  # FrameError: a broken transform
            self.online.set_given(None, f"no transform {colour} <- {sensor} in TF")
            if not self._said_missing:
                self._said_missing = True
                self._node.get_logger().warning(
                    f"registration {self.online.config.mode}: no transform {colour} <- {sensor} in TF ({error}); "
                    "the depth is taken as labelled" + (" until the estimate is confident"
                                                        if self.online.config.mode == "auto" else ""))
            return
        self.online.set_given(given)
        if self._said_found != (colour, sensor):
            self._said_found = (colour, sensor)
            t = given.translation * 1e3
            self._node.get_logger().info(
                f"registration {self.online.config.mode}: residual {colour} <- {sensor} from TF: "
                f"t = ({t[0]:.1f}, {t[1]:.1f}, {t[2]:.1f}) mm")

    def _publish(self, status: RegistrationStatus) -> None:
        """The estimate in use as a TransformStamped (the estimator's thread calls this)."""
        if self._publisher is None or not self._colour_frame:
            return
        from geometry_msgs.msg import TransformStamped

        message = TransformStamped()
        message.header.stamp = self._node.get_clock().now().to_msg()
        message.header.frame_id = self._colour_frame
        message.child_frame_id = f"{self._colour_frame}{DEPTH_SENSOR_SUFFIX}"
        tx, ty, tz = (float(v) for v in status.params[:3])
        message.transform.translation.x, message.transform.translation.y, message.transform.translation.z = tx, ty, tz
        r = message.transform.rotation
        r.x, r.y, r.z, r.w = extrinsic_from_params(status.params).as_quaternion()
        self._publisher.publish(message)
