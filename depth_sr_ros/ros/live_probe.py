"""Drive a launched depth_sr_node from outside over real DDS: launch it, feed it frames, read its outputs.

The live integration tests (test/live_ros/) and the live benchmark (`ros/live_bench.py`) use it:

    with Launch(["backbone:=guided_filter"], env) as node, Probe() as probe:
        node.wait_for("active:")
        frames = sample_frames()
        images = probe.collect(Image, "/depth_sr/image")
        probe.feed(frames[0], stamp_ns=time.time_ns())
        images.wait_for(lambda got: len(got) >= 1, timeout=30.0)
        node.interrupt()             # SIGINT, as Ctrl-C; returns the exit code

`Launch` runs `ros2 launch depth_sr_ros sr.launch.py ARGS` in its own process group and collects
its output; `Probe` is an rclpy node in this process spun by a background executor, with
publishers, collecting subscribers and service calls (lifecycle, parameters). Needs a sourced
ROS 2 environment; the package must be built and sourced (`. install/setup.bash`) for `Launch`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing.Self is Python 3.11+; Humble runs 3.10
    from typing_extensions import Self

LAUNCH_FILE = ("depth_sr_ros", "sr.launch.py")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
QUERY_RESEND_S = 5.0  # a query or parameter set with no response after this long is sent again (Probe.call)


def _new_session() -> None:  # in the child, before exec
    os.setsid()  # its own process group: SIGINT to the group is Ctrl-C in a terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # not ignored, even when this process was started in the background


class Launch:
    """`ros2 launch depth_sr_ros sr.launch.py *arguments` in its own process group; output kept."""

    def __init__(self, arguments: Iterable[str], env: Mapping[str, str] | None = None) -> None:
        command = ["ros2", "launch", *LAUNCH_FILE, *arguments]
        self.process = subprocess.Popen(
            command, env=dict(env if env is not None else os.environ), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=_new_session,  # noqa: PLW1509 - only setsid() and a signal disposition, no locks
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(ANSI.sub("", line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def count(self, pattern: str) -> int:
        """How many output lines match the regular expression `pattern`."""
        with self._changed:
            return sum(1 for line in self.lines if re.search(pattern, line))

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> str:
        """The first output line from index `after` on that matches `pattern` (a regex); raises
        TimeoutError (with the output) when none does within `timeout` s or the launch ends."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if re.search(pattern, line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(self.lines[-60:])
                    raise TimeoutError(f"no output line matching {pattern!r} within {timeout} s:\n{tail}")
                self._changed.wait(min(remaining, 0.5))

    def interrupt(self, group: bool = False, timeout: float = 30.0) -> int:
        """SIGINT to the launch process (`group`: to its whole process group, as Ctrl-C in a
        terminal does); the exit code once it has ended (killed after `timeout` s: -9)."""
        if self.process.poll() is None:
            if group:
                os.killpg(self.process.pid, signal.SIGINT)
            else:
                self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        self._reader.join(10.0)
        return code

    def kill(self) -> None:
        """SIGKILL to the whole process group (nothing is left running)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._reader.join(10.0)


@dataclass
class Collected:
    """Messages received on one topic, with their arrival time (`time.time()` seconds)."""

    topic: str
    items: list[tuple[float, Any]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _close: Callable[[], object] | None = field(default=None, repr=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe (a node builds its cloud only while somebody subscribes)."""
        if self._close is not None:
            self._close()
            self._close = None

    def add(self, msg: Any) -> None:
        with self._changed:
            self.items.append((time.time(), msg))
            self._changed.notify_all()

    @property
    def messages(self) -> list[Any]:
        with self._changed:
            return [msg for _, msg in self.items]

    def clear(self) -> None:
        with self._changed:
            self.items.clear()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float) -> list[Any]:
        """Wait until `predicate(messages)` holds; the messages, or TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate([msg for _, msg in self.items]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.topic}: condition not met within {timeout} s ({len(self.items)} received)")
                self._changed.wait(min(remaining, 0.5))
            return [msg for _, msg in self.items]

    def with_stamp(self, stamp_ns: int, timeout: float) -> Any:
        """The message whose header stamp is `stamp_ns`, waiting up to `timeout` s for it."""
        def found(messages: list[Any]) -> bool:
            return any(header_ns(m.header) == stamp_ns for m in messages)

        messages = self.wait_for(found, timeout)
        return next(m for m in messages if header_ns(m.header) == stamp_ns)


def header_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def set_stamp(msg: Any, stamp_ns: int) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)


def qos(reliable: bool, depth: int = 5) -> Any:
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    policy = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=depth, reliability=policy)


@dataclass(frozen=True)
class Frame:
    """One camera frame as rclpy messages: RGB image and CameraInfo, depth image and CameraInfo
    (depth None: a frame without depth). `depth_offset_ns`: depth stamp minus RGB stamp."""

    rgb: Any
    rgb_info: Any
    depth: Any | None
    depth_info: Any | None
    depth_offset_ns: int = 0

    @property
    def stamp_ns(self) -> int:
        return header_ns(self.rgb.header)


def bag_frames(bag: Path) -> list[Frame]:
    """The frames of a bag written by `replay.sample_bag.build_sample_bag`, deserialised from the
    bag's own CDR bytes into rclpy messages (so the node gets exactly what replay reads)."""
    from rclpy.serialization import deserialize_message
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import CameraInfo, Image

    from depth_sr_ros.replay import sample_bag as sb

    types = {sb.RGB_TOPIC: Image, sb.RGB_INFO_TOPIC: CameraInfo, sb.DEPTH_TOPIC: Image, sb.DEPTH_INFO_TOPIC: CameraInfo}
    by_topic: dict[str, list[Any]] = {topic: [] for topic in types}
    with AnyReader([Path(bag)]) as reader:
        connections = [c for c in reader.connections if c.topic in types]
        for connection, _, raw in reader.messages(connections=connections):
            by_topic[connection.topic].append(deserialize_message(bytes(raw), types[connection.topic]))
    depths = list(zip(by_topic[sb.DEPTH_TOPIC], by_topic[sb.DEPTH_INFO_TOPIC], strict=True))
    frames = []
    for rgb, info in zip(by_topic[sb.RGB_TOPIC], by_topic[sb.RGB_INFO_TOPIC], strict=True):
        stamp = header_ns(rgb.header)
        near = [(d, di) for d, di in depths if abs(header_ns(d.header) - stamp) < sb.PERIOD_NS // 2]
        depth, depth_info = near[0] if near else (None, None)
        offset = 0 if depth is None else header_ns(depth.header) - stamp
        frames.append(Frame(rgb, info, depth, depth_info, offset))
    return frames


def restamped(frame: Frame, stamp_ns: int) -> Frame:
    """`frame` with the RGB stamp `stamp_ns` (depth keeps its offset); the messages are copies."""
    import copy

    copies = [copy.copy(m) for m in (frame.rgb, frame.rgb_info, frame.depth, frame.depth_info)]
    for msg, offset in zip(copies, (0, 0, frame.depth_offset_ns, frame.depth_offset_ns), strict=True):
        if msg is not None:
            msg.header = copy.deepcopy(msg.header)
            set_stamp(msg, stamp_ns + offset)
    return replace(frame, rgb=copies[0], rgb_info=copies[1], depth=copies[2], depth_info=copies[3])


class Probe:
    """An rclpy node in this process, spun by a SingleThreadedExecutor on a background thread.

    (Single-threaded: every callback here is short, and rclpy 7.1.6's MultiThreadedExecutor
    busy-loops in Python when callbacks queue up, which delays both what the probe publishes and
    what it receives.)
    """

    def __init__(self, name: str = "depth_sr_probe") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self._owns_context = not rclpy.ok()
        if self._owns_context:
            rclpy.init()
        self.node = rclpy.create_node(name)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()
        self._publishers: dict[tuple[str, bool], Any] = {}
        self._clients: dict[str, Any] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        import rclpy

        self._executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        if self._owns_context:
            rclpy.try_shutdown()
        self._spinner.join(10.0)

    # ------------------------------------------------------------------------------- topics

    def publisher(self, msg_type: Any, topic: str, reliable: bool = True) -> Any:
        key = (topic, reliable)
        if key not in self._publishers:
            self._publishers[key] = self.node.create_publisher(msg_type, topic, qos(reliable))
        return self._publishers[key]

    def collect(self, msg_type: Any, topic: str, reliable: bool = True, depth: int = 10) -> Collected:
        collected = Collected(topic)
        subscription = self.node.create_subscription(msg_type, topic, collected.add, qos(reliable, depth))
        collected._close = lambda: self.node.destroy_subscription(subscription)
        return collected

    def wait_for_subscribers(self, topic: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.node.count_subscribers(topic) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: fewer than {count} subscribers after {timeout} s")
            time.sleep(0.05)

    def feed(self, frame: Frame, stamp_ns: int | None = None, prefix: str = "", reliable: bool = True,
             rgb_info: bool = True, topics: Mapping[str, str] | None = None) -> Frame:
        """Publish `frame` (restamped to `stamp_ns` when given) on `prefix` + the node's input
        names (rgb/image, rgb/camera_info, depth/image, depth/camera_info), or on `topics`
        (launch remap argument name -> topic, e.g. {"rgb_image": "/cam/color/image_raw"}).
        `rgb_info=False` leaves the RGB CameraInfo out."""
        from sensor_msgs.msg import CameraInfo, Image

        from depth_sr_ros.ros.topics import REMAP_ARGUMENTS

        if stamp_ns is not None:
            frame = restamped(frame, stamp_ns)
        names = {argument: prefix + topic for argument, topic in REMAP_ARGUMENTS.items()} | dict(topics or {})
        sends = [(Image, "rgb_image", frame.rgb), (CameraInfo, "rgb_info", frame.rgb_info if rgb_info else None),
                 (Image, "depth_image", frame.depth), (CameraInfo, "depth_info", frame.depth_info)]
        for msg_type, argument, msg in sends:
            if msg is not None:
                self.publisher(msg_type, names[argument], reliable).publish(msg)
        return frame

    # ----------------------------------------------------------------------------- services

    def call(self, srv_type: Any, service: str, request: Any, timeout: float = 30.0,
             resend_s: float | None = None) -> Any:
        """Call `service` and wait for the response; TimeoutError when there is none in time.

        `resend_s`, for requests that may be repeated (queries, setting the same values): send the
        request again when no response came within that many seconds. A server that answers a
        client whose response reader it has not matched yet drops the response (Fast DDS waits
        100 ms for the match, ros2/rmw_fastrtps#390 and #467): on a loaded machine the first
        request to a node that has just started can go unanswered although the service is
        available."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(srv_type, service)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {service} not available within {timeout} s")
        done = threading.Event()
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            left = deadline - time.monotonic()
            if done.wait(min(left, resend_s) if resend_s else left):
                return future.result()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"service {service}: no response within {timeout} s")
            client.remove_pending_request(future)

    def lifecycle_state(self, node: str, timeout: float = 30.0) -> str:
        from lifecycle_msgs.srv import GetState

        return str(self.call(GetState, f"{node}/get_state", GetState.Request(), timeout,
                             resend_s=QUERY_RESEND_S).current_state.label)

    def change_state(self, node: str, transition: str | int, timeout: float = 120.0) -> bool:
        """Ask for a lifecycle transition by label (configure, activate, ...: as `ros2 lifecycle
        set` does) or by id (lifecycle_msgs/Transition.TRANSITION_*: as launch_ros and C++
        lifecycle managers do); its success."""
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        if isinstance(transition, int):
            request.transition.id = transition
        else:
            request.transition.label = transition
        return bool(self.call(ChangeState, f"{node}/change_state", request, timeout).success)

    def set_parameters(self, node: str, values: Mapping[str, Any], timeout: float = 120.0) -> list[Any]:
        """Set parameters one call each (rcl_interfaces SetParameters); their SetParametersResults."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
        return list(self.call(SetParameters, f"{node}/set_parameters", request, timeout,
                              resend_s=QUERY_RESEND_S).results)

    def get_parameters(self, node: str, names: Iterable[str], timeout: float = 30.0) -> dict[str, Any]:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        names = list(names)
        request = GetParameters.Request(names=names)
        values = self.call(GetParameters, f"{node}/get_parameters", request, timeout, resend_s=QUERY_RESEND_S).values
        return {name: parameter_value_to_python(value) for name, value in zip(names, values, strict=True)}
