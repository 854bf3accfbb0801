"""`depth-sr demo [--out DIR]`: build the bundled TUM sample bag and replay it through the default backbone.

Offline and argument-free: the bag is made from the PNGs shipped in the package
(`depth_sr_ros/samples/tum_fr1`), replayed with `SRConfig(backbone="auto")` (the best shipped
weights for x4, else `guided_filter`), scored against the full-resolution ground truth beside
`bicubic`, and summarised with where every output went.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay import sample_bag
from depth_sr_ros.replay.config import PREVIEW_EVERY, ReplayConfig
from depth_sr_ros.replay.out_dir import OutputDir
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.summary import ReplayReport, format_summary
from depth_sr_ros.tools.replay import add_points_argument
from depth_sr_ros.tools.usage import add_no_progress, bounded, output_dir

LOG = logging.getLogger(__name__)

DEFAULT_OUT = Path("depth_sr_demo")  # in the current folder (ignored by git in a clone of this project)
SAMPLE_BAG = "sample_bag"
MAX_FRAMES = 10_000  # a long sample bag is 0.83 MB per frame (zstd MCAP, measured at 100 frames): 8 GB at most


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory; an earlier demo's outputs there are replaced, nothing else is touched "
                        f"(default ./{DEFAULT_OUT})")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="sample bag storage")
    parser.add_argument("--frames", type=bounded(int, 0, MAX_FRAMES), default=0, metavar="N",
                        help="a long bag: N frames cycling through the sample's (to measure output sizes and "
                        f"speed over a long run; at most {MAX_FRAMES}; default: the 4 sample frames)")
    add_points_argument(parser)
    add_no_progress(parser)


def run_demo(out_dir: Path, storage: str = "mcap", progress: bool = True, points: str = "none",
             frames: int = 0) -> ReplayReport:
    """Build the sample bag in `out_dir/sample_bag` (replacing an earlier demo's; `frames` > 0: a long
    one, zstd-compressed when MCAP) and replay it into `out_dir`."""
    output = OutputDir(out_dir, "demo")  # an earlier demo's sample bag is replaced; nothing else is touched
    output.prepare([f"{SAMPLE_BAG}/"])
    try:
        bag = sample_bag.build_sample_bag(out_dir / SAMPLE_BAG, storage=storage, frames=frames,
                                          compress=frames > 0 and storage == "mcap")
    finally:
        output.record_files(SAMPLE_BAG)
    LOG.info("sample bag: %s (%s)", bag.path, ", ".join(f"{t} x{n}" for t, n in bag.counts.items()))
    config = ReplayConfig(
        bag=bag.path,
        out_dir=out_dir,
        rgb_topic=sample_bag.RGB_TOPIC,
        rgb_info_topic=sample_bag.RGB_INFO_TOPIC,
        depth_topic=sample_bag.DEPTH_TOPIC,
        depth_info_topic=sample_bag.DEPTH_INFO_TOPIC,
        gt_topic=sample_bag.GT_TOPIC,
        sr=SRConfig(scale=sample_bag.DECIMATION, backbone="auto"),
        points=points,
        preview_every=1 if not frames else PREVIEW_EVERY,  # the sample's three frames: a figure of each
        progress=progress,
    )
    return run_replay(config)


def run(args: argparse.Namespace) -> int:
    report = run_demo(output_dir("--out", args.out), args.storage, progress=not args.no_progress, points=args.points,
                      frames=args.frames)
    print(format_summary(report))
    print(f"\nreport: {args.out / 'report.html'} (open it in a browser)")
    print(f"sample bag: {args.out / SAMPLE_BAG} (TUM RGB-D fr1, CC BY 4.0; see README)")
    print(f"replay it yourself: depth-sr replay {args.out / SAMPLE_BAG} --out OUT --gt-topic {sample_bag.GT_TOPIC}")
    return 0
