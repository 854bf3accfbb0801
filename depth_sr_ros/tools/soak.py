"""`depth-sr bench --soak N`: a long replay with the process's memory sampled every second.

    depth-sr bench --soak 10000 --height 480 --width 640 --scale 4 --json soak.json --markdown soak.md

It writes a bag of N RGB-D frames (the sample frames of `depth-sr bench`, the real TUM fr1
images, tiled with fresh 30 Hz stamps; depth 4 ms after RGB, both CameraInfo topics) into a
scratch folder, replays it with `depth-sr replay`'s runner and the node's defaults (default
backbone `auto`, ONNX Runtime on a CPU), without previews or point clouds, and samples the
resident set size (RSS, /proc/self/statm) every second in a thread. The report gives the RSS at
every tenth of the run, its growth after the warm-up (the first tenth of the frames) as a
fraction of the RSS at the end of the warm-up, the slope of a line fitted to the RSS after
the warm-up (MB per 1000 frames), and the per-frame processing time (`FrameProcessor` total,
ms) of the first and last tenth. The scratch folder (input and output bags) is removed at the
end unless `--soak-dir` names one to keep.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ACCEPTED_GROWTH = 0.05  # the acceptance: RSS flat within 5% after the warm-up
WARMUP_FRACTION = 0.1
RGB_PERIOD_NS = 33_333_333
DEPTH_OFFSET_NS = 4_000_000
EPOCH_NS = 1_700_000_000 * 10**9
MAX_SOAK_FRAMES = 10_000  # the bag is about 0.83 MB a 640x480 frame (as demo's): 8 GB at most there
TOPICS = {"rgb": "/camera/color/image_raw", "rgb_info": "/camera/color/camera_info",
          "depth": "/camera/depth/image_raw", "depth_info": "/camera/depth/camera_info"}


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    from depth_sr_ros.tools.usage import bounded

    parser.add_argument("--soak", type=bounded(int, 10, MAX_SOAK_FRAMES), default=0, metavar="N",
                        help="soak mode: replay N frames (height x width, the first --scale and --backbones) with "
                        f"RSS sampled every second, instead of timing stages; at most {MAX_SOAK_FRAMES} (the bag "
                        "is written to disk first)")
    parser.add_argument("--soak-dir", type=Path, default=None,
                        help="soak mode: keep the bag and the replay output here (default: a scratch folder)")


def rss_mb() -> float:
    """Resident set size of this process, MiB (Linux /proc; ru_maxrss elsewhere, a peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_soak_bag(path: Path, frames: int, height: int, width: int, scale: int) -> int:
    """A bag of `frames` RGB-D frames tiled from the bench sample frames with fresh stamps; its bytes."""
    from depth_sr_ros.replay.bag_io import BagWriter, load_typestore
    from depth_sr_ros.tools.bench_frames import sample_frames

    store = load_typestore("humble")
    samples = sample_frames(height, width, scale)
    header_cls, time_cls = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    frame_id = samples[0].rgb.header.frame_id
    with BagWriter(path, store) as writer:
        for role, topic in TOPICS.items():
            writer.add_topic(topic, "sensor_msgs/msg/" + ("CameraInfo" if role.endswith("info") else "Image"))
        for i in range(frames):
            sample = samples[i % len(samples)]
            for stamp, pairs in ((EPOCH_NS + i * RGB_PERIOD_NS, (("rgb", sample.rgb), ("rgb_info", sample.rgb_info))),
                                 (EPOCH_NS + i * RGB_PERIOD_NS + DEPTH_OFFSET_NS,
                                  (("depth", sample.depth), ("depth_info", sample.depth_info)))):
                header = header_cls(stamp=time_cls(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=frame_id)
                for offset, (role, message) in enumerate(pairs):
                    writer.write(TOPICS[role], stamp + 2_000_000 + offset, replace(message, header=header))
    return sum(f.stat().st_size for f in path.iterdir())


class RssSampler(threading.Thread):
    """Samples (seconds since start, RSS MiB, frames done) every `period` seconds until stopped."""

    def __init__(self, progress: Any, period: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.progress = progress
        self.period = period
        self.samples: list[tuple[float, float, int]] = []
        self.load: list[float] = []  # 1-minute load average at each sample: was the machine shared?
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic() - self._start, rss_mb(), int(self.progress())))
            self.load.append(os.getloadavg()[0])
            self._stop_event.wait(self.period)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.samples.append((time.monotonic() - self._start, rss_mb(), int(self.progress())))


def summarise(samples: list[tuple[float, float, int]], frame_ms: list[float], frames: int) -> dict[str, Any]:
    """RSS trend and first/last-tenth frame times of one soak run (see the module docstring)."""
    warm = max(1, int(frames * WARMUP_FRACTION))
    after = [(t, rss, n) for t, rss, n in samples if n >= warm]
    baseline = after[0][1] if after else float("nan")
    peak = max((rss for _, rss, _ in after), default=float("nan"))
    slope = float("nan")
    if len(after) >= 3 and after[-1][2] > after[0][2]:
        slope = float(np.polyfit([n for _, _, n in after], [rss for _, rss, _ in after], 1)[0]) * 1000
    deciles = []
    for tenth in range(11):
        target = frames * tenth // 10
        nearest = min(samples, key=lambda s: abs(s[2] - target))
        deciles.append({"frames": nearest[2], "seconds": round(nearest[0], 1), "rss_mb": round(nearest[1], 1)})
    tenth = max(1, len(frame_ms) // 10)
    first, last = frame_ms[:tenth], frame_ms[-tenth:]
    growth = (peak - baseline) / baseline if after else float("nan")
    return {
        "frames": frames,
        "warmup_frames": warm,
        "rss_samples": len(samples),
        "rss_start_mb": round(samples[0][1], 1),
        "rss_after_warmup_mb": round(baseline, 1),
        "rss_peak_after_warmup_mb": round(peak, 1),
        "rss_end_mb": round(samples[-1][1], 1),
        "rss_growth_after_warmup": round(growth, 4),
        "rss_slope_mb_per_1000_frames": round(slope, 3),
        "flat_within_5_percent": bool(growth <= ACCEPTED_GROWTH),
        "rss_by_tenth": deciles,
        "frame_ms_first_tenth": {"median": round(float(np.median(first)), 2), "p90": round(float(np.percentile(first, 90)), 2)},
        "frame_ms_last_tenth": {"median": round(float(np.median(last)), 2), "p90": round(float(np.percentile(last, 90)), 2)},
        "seconds": round(samples[-1][0], 1),
    }


def markdown(result: dict[str, Any], machine: str, command: str) -> str:
    first, last = result["frame_ms_first_tenth"], result["frame_ms_last_tenth"]
    rss_line = (f"RSS after the warm-up ({result['warmup_frames']} frames): {result['rss_after_warmup_mb']:.1f} MB, "
                f"peak after it {result['rss_peak_after_warmup_mb']:.1f} MB (growth "
                f"{100 * result['rss_growth_after_warmup']:+.2f}%), end {result['rss_end_mb']:.1f} MB; fitted slope "
                f"{result['rss_slope_mb_per_1000_frames']:+.3f} MB per 1000 frames.")
    time_line = (f"Per-frame time (FrameProcessor total): first tenth median {first['median']:.1f} ms "
                 f"(p90 {first['p90']:.1f}), last tenth median {last['median']:.1f} ms (p90 {last['p90']:.1f}).")
    run_line = (f"{result['frames']} frames of {result['width']}x{result['height']} x{result['scale']}, backbone "
                f"{result['backbone']}, {result['seconds']:.0f} s; RSS sampled every second "
                f"({result['rss_samples']} samples).")
    load = result.get("load_average_1min")
    if load:
        run_line += (f" 1-minute load average during the run: median {load['median']}, {load['min']} to {load['max']} "
                     "(2 cores).")
    lines = [f"Machine: {machine}. Command: `{command}`", "", run_line, "", "| frames done | seconds | RSS MB |",
             "|---|---|---|", *(f"| {d['frames']} | {d['seconds']:.0f} | {d['rss_mb']:.1f} |" for d in result["rss_by_tenth"]),
             "", rss_line, time_line]
    return "\n".join(lines) + "\n"


def run_soak(args: argparse.Namespace) -> int:
    """`depth-sr bench --soak N`; exit 0 when the RSS stays within 5% after the warm-up, else 1."""
    import sys

    from depth_sr_ros.core.pipeline import SRConfig
    from depth_sr_ros.replay.runner import ReplayConfig, ReplayRunner
    from depth_sr_ros.tools.bench_machine import machine_info, machine_label

    scale = args.scale[0]
    backbone = args.backbones[0] if args.backbones else "auto"
    scratch = Path(args.soak_dir) if args.soak_dir else Path(tempfile.mkdtemp(prefix="depth_sr_soak_"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        bag = scratch / "soak_bag"
        if bag.exists():
            shutil.rmtree(bag)
        size = write_soak_bag(bag, args.soak, args.height, args.width, scale)
        print(f"soak bag: {args.soak} frames, {size / 1e9:.2f} GB in {bag}")
        config = ReplayConfig(bag=bag, out_dir=scratch / "replay", rgb_topic=TOPICS["rgb"],
                              rgb_info_topic=TOPICS["rgb_info"], depth_topic=TOPICS["depth"],
                              depth_info_topic=TOPICS["depth_info"], sr=SRConfig(scale=scale, backbone=backbone),
                              previews=False, points="none", progress=not args.no_progress)
        runner = ReplayRunner(config)
        sampler = RssSampler(lambda: runner.pairs_processed)
        sampler.start()
        try:
            report = runner.run()
        finally:
            sampler.stop()
        with open(report.outputs["frames_csv"], newline="") as handle:
            frame_ms = [float(row["total_ms"]) for row in csv.DictReader(handle) if row["status"] == "ok"]
        result = summarise(sampler.samples, frame_ms, report.pairs_processed)
        result["load_average_1min"] = {"min": round(min(sampler.load), 2), "median": round(float(np.median(sampler.load)), 2),
                                       "max": round(max(sampler.load), 2)}
        result.update(backbone=report.backbone, scale=scale, height=args.height, width=args.width,
                      pairs_skipped=report.pairs_skipped)
    finally:
        if not args.soak_dir:
            shutil.rmtree(scratch, ignore_errors=True)
    machine = machine_info()
    command = "depth-sr bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:])
    text = markdown(result, f"{machine_label(machine)} [{machine['cpu_detail']}]", command)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "command": command, "soak": result}, indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    return 0 if result["flat_within_5_percent"] else 1
