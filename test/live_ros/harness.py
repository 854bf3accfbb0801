"""Helpers shared by the live tests: launching a node, round trips, diagnostics, clean shutdown."""

from __future__ import annotations

import importlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from depth_sr_ros.core.image_msg import depth_from_image
from depth_sr_ros.ros.live_probe import Collected, Frame, Launch, Probe, header_ns
from depth_sr_ros.ros.topics import NODE_NAME

REQUIRE_ENV = "DEPTH_SR_REQUIRE_ROS"
START_TIMEOUT_S = 120.0  # process start, imports, configure (a network's session build) on 2 busy cores
FRAME_TIMEOUT_S = 60.0
DIAGNOSTIC_TASK = "depth super-resolution"


def require_ros() -> None:
    """Skip the calling test module without a sourced ROS 2 runtime (rclpy and the Python packages
    the node and these tests use, `ros2` and `colcon`); with DEPTH_SR_REQUIRE_ROS=1 fail instead."""
    try:
        for module in ("rclpy", "message_filters", "tf2_ros", "launch_ros", "diagnostic_updater"):
            importlib.import_module(module)
        missing = [command for command in ("ros2", "colcon") if shutil.which(command) is None]
        if missing:
            raise ImportError(f"no {' or '.join(missing)} command")
    except ImportError as error:
        reason = f'ROS 2 is not available ({error}): run `. "$VIRTUAL_ENV/bin/ros2-env.sh"` first (docs/robot.md)'
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 requires the ROS tests to run", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def launch(installed: dict[str, str], *arguments: str, active: bool = True) -> Launch:
    """`ros2 launch depth_sr_ros sr.launch.py ARGUMENTS`; waits until the node is active."""
    node = Launch(arguments, installed)
    try:
        if active:
            node.wait_for(r"\]: active: ", START_TIMEOUT_S)
        else:
            node.wait_for(r"process started with pid", START_TIMEOUT_S)
    except BaseException:
        node.kill()
        raise
    return node


def params_file(directory: Path, **values: Any) -> str:
    """A params file with `values` for every node (`/**`); the others keep their declared defaults."""
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return str(path)


def stop_cleanly(node: Launch, group: bool) -> str:
    """SIGINT (to the launch process, or to its whole process group as Ctrl-C does); asserts that
    launch and node exit 0 with no traceback. Returns the output."""
    code = node.interrupt(group=group, timeout=60.0)
    output = node.output()
    assert code == 0, f"ros2 launch exited {code}:\n{output[-4000:]}"
    assert "process has finished cleanly" in output, output[-4000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-4000:]
    return output


def roundtrip(probe: Probe, frame: Frame, outputs: Collected, stamp_ns: int | None = None, prefix: str = "",
              reliable: bool = True, timeout: float = FRAME_TIMEOUT_S, topics: dict[str, str] | None = None) -> Any:
    """Publish `frame` (restamped when `stamp_ns` is given) until the output with its RGB stamp
    arrives on `outputs` (resent every few seconds: the first frames after start-up may meet
    subscriptions that discovery has not matched yet); that output message."""
    deadline = time.monotonic() + timeout
    while True:
        sent = probe.feed(frame, stamp_ns, prefix=prefix, reliable=reliable, topics=topics)
        try:
            return outputs.with_stamp(sent.stamp_ns, min(5.0, max(deadline - time.monotonic(), 0.1)))
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


def depth_m(image: Any) -> np.ndarray:
    return depth_from_image(image)


def status_values(arrays: list[Any], node_name: str = NODE_NAME) -> list[dict[str, str]]:
    """The node's task statuses in received DiagnosticArrays, oldest first, as key -> value (plus
    "level" and "message")."""
    name = f"{node_name}: {DIAGNOSTIC_TASK}"
    return [
        {"level": str(int.from_bytes(status.level, "little")), "message": status.message,
         **{kv.key: kv.value for kv in status.values}}
        for array in arrays for status in array.status if status.name == name
    ]


def wait_for_status(diagnostics: Collected, predicate: Callable[[dict[str, str]], bool], timeout: float = 30.0,
                    node_name: str = NODE_NAME) -> dict[str, str]:
    """The first /diagnostics status of the node for which `predicate(values)` holds."""
    def found(arrays: list[Any]) -> bool:
        return any(predicate(values) for values in status_values(arrays, node_name))

    arrays = diagnostics.wait_for(found, timeout)
    return next(values for values in status_values(arrays, node_name) if predicate(values))


def stamps(messages: list[Any]) -> list[int]:
    return [header_ns(m.header) for m in messages]


def check_cloud(cloud: Any, depth: np.ndarray, info: Any, rgb: np.ndarray) -> None:
    """Read a published XYZRGB PointCloud2 back as RViz-side tools do (sensor_msgs_py's
    `read_points`, the referee) and check it against the depth image and CameraInfo published with
    it and the colour image sent: z is the depth, x = (u - cx) z / fx and y = (v - cy) z / fy with
    the CameraInfo's K (depth_image_proc's point_cloud_xyz), rgb the packed colour of each pixel."""
    from sensor_msgs_py import point_cloud2

    height, width = depth.shape
    points = point_cloud2.read_points(cloud, field_names=("x", "y", "z", "rgb"), skip_nans=False)
    assert len(points) == height * width
    fx, cx, fy, cy = info.k[0], info.k[2], info.k[4], info.k[5]
    column, row = np.meshgrid(np.arange(width), np.arange(height))
    z = points["z"].reshape(height, width)
    np.testing.assert_array_equal(z, depth)
    valid = np.isfinite(depth)
    np.testing.assert_allclose(points["x"].reshape(height, width)[valid], ((column - cx) * depth / fx)[valid],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(points["y"].reshape(height, width)[valid], ((row - cy) * depth / fy)[valid],
                               rtol=1e-5, atol=1e-6)
    packed = np.ascontiguousarray(points["rgb"]).astype(np.float32).view(np.uint32).reshape(height, width)
    colour = np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF], axis=-1)
    np.testing.assert_array_equal(colour, rgb)
