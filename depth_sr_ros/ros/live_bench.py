"""Live benchmark of the launched node: stamp-to-publish latency and output rate against input rate.

    colcon build --packages-select depth_sr_ros && . install/setup.bash
    python -m depth_sr_ros.ros.live_bench --rates 5 10 30 --seconds 20 --markdown live.md --json live.json

For each input rate, without and with a point-cloud subscriber, a probe node publishes the bundled
TUM frame 00 (640x480 rgb8, 160x120 16UC1, their CameraInfo; reliable QoS, stamped with the wall
clock at publishing) to a node started with `ros2 launch depth_sr_ros sr.launch.py` (its default
parameters, the network warmed up for 640x480 in configure), and reads what comes back:
- at the probe: the output rate and each output's stamp-to-receive latency (median, p90, max);
- from the node's /diagnostics, per health window: stamp-to-publish latency, processing time
  (FrameProcessor: decode, super-resolution, encode, cloud fields), building the rclpy messages,
  and rclpy's publish, averaged over the measured windows weighted by their frame counts.
"Frame time" is processing + build + publish. The targets: latency at most 1.5 x frame time at
any rate; build + publish at most 10% of the frame time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DIAGNOSTIC_TASK = "depth_sr_node: depth super-resolution"


@dataclass
class LiveRecord:
    """One input rate, with or without a cloud subscriber. Times in ms, rates in Hz."""

    rate_in_hz: float
    cloud: bool
    sent: int
    received: int
    rate_out_hz: float
    latency_receive_median_ms: float
    latency_receive_p90_ms: float
    latency_receive_max_ms: float
    latency_publish_mean_ms: float
    processing_ms: float
    build_ms: float
    publish_ms: float
    stale_pairs: int
    registration_cpu_share: float = float("nan")  # the estimator's CPU / wall time at the end (registration auto)

    @property
    def frame_ms(self) -> float:
        return self.processing_ms + self.build_ms + self.publish_ms

    @property
    def latency_ratio(self) -> float:
        return self.latency_publish_mean_ms / self.frame_ms

    @property
    def publish_share(self) -> float:
        return (self.build_ms + self.publish_ms) / self.frame_ms


def _weighted(statuses: list[dict[str, str]], key: str) -> float:
    pairs = [(float(s["output rate (Hz)"]), float(s[key])) for s in statuses if key in s and s[key] != "nan"]
    total = sum(weight for weight, _ in pairs)
    return sum(weight * value for weight, value in pairs) / total if total else float("nan")


def measure(probe: Any, frame: Any, rate_hz: float, seconds: float, cloud: bool, warmup_s: float) -> LiveRecord:
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image, PointCloud2

    from depth_sr_ros.ros.live_probe import header_ns

    with (
        probe.collect(Image, "/depth_sr/image") as images,
        probe.collect(DiagnosticArray, "/diagnostics") as diagnostics,
    ):
        clouds = probe.collect(PointCloud2, "/depth_sr/points") if cloud else None
        if clouds is not None:
            probe.wait_for_subscribers("/depth_sr/points", 1, 30.0)
        time.sleep(1.0)  # discovery
        period, start = 1.0 / rate_hz, time.monotonic()
        index, measuring_from = 0, start + warmup_s
        sent = 0
        while (now := time.monotonic()) < measuring_from + seconds:
            if now >= measuring_from and not sent:
                images.clear()
                diagnostics.clear()
            probe.feed(frame, time.time_ns())
            sent += now >= measuring_from
            index += 1
            time.sleep(max(0.0, start + index * period - time.monotonic()))
        time.sleep(1.5)  # the last frames and a closing health window
        items = list(images.items)
        statuses = [
            {"level": str(status.level), **{kv.key: kv.value for kv in status.values}}
            for _, array in diagnostics.items for status in array.status if status.name == DIAGNOSTIC_TASK
        ]
        if clouds is not None:
            clouds.close()
    latencies = sorted((arrival - header_ns(msg.header) * 1e-9) * 1000.0 for arrival, msg in items) or [float("nan")]
    statuses = [s for s in statuses if "processing mean (ms)" in s]
    stale = [int(s.get("skipped stale_pair", 0)) for s in statuses]
    shares = [float(s["registration cpu share"]) for s in statuses if "registration cpu share" in s]
    return LiveRecord(
        rate_in_hz=rate_hz,
        cloud=cloud,
        sent=sent,
        received=len(items),
        rate_out_hz=len(items) / seconds,
        latency_receive_median_ms=statistics.median(latencies),
        latency_receive_p90_ms=latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))],
        latency_receive_max_ms=latencies[-1],
        latency_publish_mean_ms=_weighted(statuses, "latency stamp->publish mean (ms)"),
        processing_ms=_weighted(statuses, "processing mean (ms)"),
        build_ms=_weighted(statuses, "message build mean (ms)"),
        publish_ms=_weighted(statuses, "publish mean (ms)"),
        stale_pairs=(max(stale) - min(stale)) if stale else 0,
        registration_cpu_share=shares[-1] if shares else float("nan"),
    )


def markdown(records: list[LiveRecord]) -> str:
    header = (
        "| input Hz | cloud | output Hz | latency stamp->publish mean ms | stamp->receive median / p90 / max ms "
        "| processing ms | build ms | publish ms | frame ms | latency / frame | build+publish / frame | stale pairs |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r.rate_in_hz:g} | {'XYZRGB' if r.cloud else 'none'} | {r.rate_out_hz:.1f} | {r.latency_publish_mean_ms:.1f} "
            f"| {r.latency_receive_median_ms:.1f} / {r.latency_receive_p90_ms:.1f} / {r.latency_receive_max_ms:.1f} "
            f"| {r.processing_ms:.1f} | {r.build_ms:.2f} | {r.publish_ms:.2f} | {r.frame_ms:.1f} "
            f"| {r.latency_ratio:.2f} | {100 * r.publish_share:.1f}% | {r.stale_pairs} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth_sr_ros.ros.live_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[5.0, 10.0, 30.0], help="input rates in Hz")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per record")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of input before measuring")
    parser.add_argument("--launch-arg", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra sr.launch.py argument (e.g. backbone:=guided_filter); repeatable")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra node parameter for the params file, a YAML value (e.g. point_stride:=2); repeatable")
    parser.add_argument("--json", type=Path, help="write the records here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args(argv)

    from depth_sr_ros.replay.sample_bag import build_sample_bag
    from depth_sr_ros.ros.live_probe import Launch, Probe, bag_frames

    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        build_sample_bag(bag)
        frame = bag_frames(bag)[0]
        params = Path(tmp) / "params.yaml"
        values = ["health_period: 1.0", "input_width: 640", "input_height: 480"]
        values += [": ".join(item.split(":=", 1)) for item in args.param]
        params.write_text("/**:\n  ros__parameters:\n" + "".join(f"    {line}\n" for line in values))
        node = Launch([f"params_file:={params}", *args.launch_arg])
        try:
            configured = node.wait_for(r"configured in", 300.0)
            node.wait_for(r"\]: active: ", 60.0)
            print(configured.split("]: ", 1)[-1], flush=True)
            records = []
            with Probe("depth_sr_live_bench") as probe:
                probe.wait_for_subscribers("/depth/image", 1, 60.0)
                for rate in args.rates:
                    for cloud in (False, True):
                        record = measure(probe, frame, rate, args.seconds, cloud, args.warmup)
                        print(markdown([record]).splitlines()[-1], flush=True)
                        records.append(record)
        finally:
            code = node.interrupt(group=True)
    table = markdown(records)
    summary = f"machine: {machine()}\nnode: {configured.split(']: ', 1)[-1]}\nlaunch exit code: {code}\n"
    print(summary + table)
    if args.markdown:
        args.markdown.write_text(summary + "\n" + table)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "node": configured,
                                         "records": [asdict(r) for r in records]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
