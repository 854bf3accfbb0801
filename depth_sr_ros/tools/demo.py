"""`depth-sr demo [--out DIR]`: build the bundled TUM sample bag and replay it through the default backbone.

Offline and argument-free: the bag is made from the PNGs shipped in the package
(`depth_sr_ros/samples/tum_fr1`), replayed with `SRConfig(backbone="auto")` (the best shipped
weights for x4, else `guided_filter`), scored against the full-resolution ground truth beside
`bicubic`, and summarised with where every output went.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.replay import sample_bag
from depth_sr_ros.replay.runner import ReplayConfig, ReplayReport, format_summary, run_replay
from depth_sr_ros.tools.usage import add_no_progress, output_dir

LOG = logging.getLogger(__name__)

DEFAULT_OUT = Path("depth_sr_demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default ./{DEFAULT_OUT})")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="sample bag storage")
    add_no_progress(parser)


def run_demo(out_dir: Path, storage: str = "mcap", progress: bool = True) -> ReplayReport:
    """Build the sample bag in `out_dir/sample_bag` (replacing an earlier one) and replay it into `out_dir`."""
    bag_dir = out_dir / "sample_bag"
    if (bag_dir / "metadata.yaml").exists():
        shutil.rmtree(bag_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bag = sample_bag.build_sample_bag(bag_dir, storage=storage)
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
        progress=progress,
    )
    return run_replay(config)


def run(args: argparse.Namespace) -> int:
    report = run_demo(output_dir("--out", args.out), args.storage, progress=not args.no_progress)
    print(format_summary(report))
    print(f"\nsample bag: {args.out / 'sample_bag'} (TUM RGB-D fr1, CC BY 4.0; see README)")
    print(f"replay it yourself: depth-sr replay {args.out / 'sample_bag'} --out OUT --gt-topic {sample_bag.GT_TOPIC}")
    return 0
