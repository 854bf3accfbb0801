"""A short live start of the node in the active Python environment (one install of the CI matrix).

    . "$ROS_VENV/bin/ros2-env.sh"                  # a ROS 2 runtime, as a robot's system ROS
    python tools/install_check.py --backbone lite  # the backbone `auto` must pick here

Starts `depth_sr_node` with this interpreter (`python -m depth_sr_ros.ros.node`, the node's
defaults: x4, backbone auto), configures and activates it through its lifecycle services as
launch does, publishes the demo's sample frames (TUM RGB-D fr1, 640x480 RGB, 160x120 depth) on
its input topics until a super-resolved depth image comes back on `/depth_sr/image`, and checks
that image (640x480, mostly valid metres). It prints the node's configure line (what runs: the
backbone, its weights, the inference backend) and a summary; exit 0 on success, 1 with the
node's output otherwise. `.ci/run` runs it in every install that the README and docs/robot.md
name; the live tests (test/live_ros) go much further in the full one.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

START_TIMEOUT_S = 180.0  # process start, imports and configure (ONNX Runtime session) on 2 busy cores
FRAME_TIMEOUT_S = 60.0
NODE = "/depth_sr_node"
OUT_TOPIC = "/depth_sr/image"


class NodeProcess:
    """`python -m depth_sr_ros.ros.node` with its output (stdout and stderr) kept line by line."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "depth_sr_ros.ros.node"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, cwd="/",  # the installed package, not a checkout's copy in cwd
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def line(self, pattern: str, wait_s: float = 0.0) -> str | None:
        """The first output line matching `pattern`, waiting up to `wait_s` for it: a line the node
        logged before answering a service call can reach this pipe after the answer."""
        deadline = time.monotonic() + wait_s
        while True:
            found = next((line for line in list(self.lines) if re.search(pattern, line)), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGINT (Ctrl-C), then the exit code; killed when it does not exit in 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def first_output(probe, frames, collected, timeout: float):
    """Feed the sample frames, freshly stamped, until the node publishes a depth image."""
    deadline = time.monotonic() + timeout
    index = 0
    while time.monotonic() < deadline:
        probe.feed(frames[index % len(frames)], stamp_ns=time.time_ns())
        index += 1
        got = collected.messages
        if got:
            return got[0], index
        time.sleep(0.5)
    raise TimeoutError(f"no image on {OUT_TOPIC} within {timeout:.0f} s of feeding {index} frames")


def check(backbone: str) -> str:
    """Start, configure, activate, one frame through; the summary line. Raises on any failure."""
    from sensor_msgs.msg import Image

    from depth_sr_ros.core.image_msg import depth_from_image
    from depth_sr_ros.replay.sample_bag import build_sample_bag
    from depth_sr_ros.ros.live_probe import Probe, bag_frames

    with tempfile.TemporaryDirectory(prefix="depth_sr_install_check_") as scratch:
        frames = [f for f in bag_frames(build_sample_bag(Path(scratch) / "bag").path) if f.depth is not None]
    node = NodeProcess()
    try:
        with Probe("depth_sr_install_check") as probe:
            started = time.monotonic()
            if not probe.change_state(NODE, "configure", timeout=START_TIMEOUT_S):
                raise RuntimeError(f"configure failed: {node.line('configure failed', wait_s=5.0) or 'no reason logged'}")
            configured = node.line(r"configured in", wait_s=10.0) or ""
            if f"backbone {backbone} " not in configured:
                raise RuntimeError(f"expected backbone {backbone}, the node says: {configured or 'nothing'}")
            if not probe.change_state(NODE, "activate", timeout=60.0):
                raise RuntimeError(f"activate failed: {node.line('activate failed', wait_s=5.0) or 'no reason logged'}")
            collected = probe.collect(Image, OUT_TOPIC)
            image, fed = first_output(probe, frames, collected, FRAME_TIMEOUT_S)
            depth = depth_from_image(image)
            valid = float(np.isfinite(depth).mean())
            rgb = frames[0].rgb
            if depth.shape != (rgb.height, rgb.width) or valid < 0.5:
                raise RuntimeError(f"output {depth.shape[1]}x{depth.shape[0]} with {valid:.0%} valid pixels, "
                                   f"expected {rgb.width}x{rgb.height}, mostly valid")
            seconds = time.monotonic() - started
    except BaseException:
        node.stop()
        print("\n".join(["node output:", *node.lines[-80:]]), file=sys.stderr)
        raise
    code = node.stop()
    if code != 0:
        raise RuntimeError(f"the node exited with {code} after SIGINT")
    configured = configured.split("]: ", 1)[-1]
    return (f"node {configured}; {depth.shape[1]}x{depth.shape[0]} depth out ({valid:.0%} valid, "
            f"median {np.nanmedian(depth):.2f} m) after {fed} frame(s) in, {seconds:.1f} s from start")


def environment() -> str:
    """numpy's version and which optional pieces this install has ("numpy 1.26.4, torch 2.13.0, no safetensors")."""
    from importlib import metadata

    parts = [f"numpy {np.__version__}"]
    for name in ("torch", "safetensors", "onnxruntime"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"no {name}")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="lite", help="the backbone the node's `auto` must pick (default lite)")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(10 + os.getpid() % 90)  # apart from other ROS runs on this machine
    try:
        print(f"install check ({environment()}): {check(args.backbone)}")
    except Exception as error:  # noqa: BLE001 - the check's verdict: one line, then the node's output
        print(f"install check FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
