"""`depth-sr replay BAG --out DIR`: run a rosbag2 bag through the node's pipeline and score it.

Topic defaults are the bundled sample bag's; pass your camera's topics for your own bags. An
empty string (`--depth-info-topic ''`) turns an optional input off. With `--gt-topic`, every
frame is also scored against ground truth, beside the `bicubic` baseline on the same frames.
With `--lidar-topic`, a LiDAR PointCloud2 replaces the depth image (docs/lidar.md); with
`--unaligned-depth`, a depth image in its own frame is registered into the RGB camera. The
transform comes from the bag's /tf_static and /tf, or from `--extrinsic`.
Pipeline, sync and output defaults are the node's (`depth_sr_ros.ros.parameters.PARAMETERS`,
config/sr.yaml), so a replay behaves like the node with its default parameters.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from depth_sr_ros.core.frame_processor import OUTPUT_ENCODINGS, OutputConfig
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.core.transforms import EXTRINSIC_HELP, parse_extrinsic
from depth_sr_ros.replay import sample_bag
from depth_sr_ros.replay.bag_io import TYPESTORES, BagError
from depth_sr_ros.replay.runner import ReplayConfig, format_summary, run_replay
from depth_sr_ros.ros.parameters import NodeParams

LOG = logging.getLogger(__name__)
NODE = NodeParams.defaults()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (sqlite3 or MCAP), or a single .mcap/.db3 file")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--rgb-topic", default=sample_bag.RGB_TOPIC, help="sensor_msgs/Image colour topic")
    parser.add_argument("--rgb-info-topic", default=sample_bag.RGB_INFO_TOPIC, help="colour CameraInfo topic")
    parser.add_argument("--depth-topic", default=sample_bag.DEPTH_TOPIC,
                        help="low-resolution depth Image topic (16UC1/mono16 mm or 32FC1 m), registered to the RGB")
    parser.add_argument("--depth-info-topic", default=sample_bag.DEPTH_INFO_TOPIC,
                        help="depth CameraInfo topic ('' = none; the RGB intrinsics define the output)")
    parser.add_argument("--lidar-topic", default="",
                        help="LiDAR PointCloud2 topic in place of --depth-topic ('' = depth image input); "
                        "pair it with the camera with --slop of at least half the camera period")
    parser.add_argument("--unaligned-depth", action="store_true",
                        help="the depth image is in its own frame (not registered to the RGB camera): "
                        "register it with --extrinsic or the bag's TF, using --depth-info-topic's intrinsics")
    parser.add_argument("--extrinsic", type=parse_extrinsic, default=None,
                        help=f"LiDAR (or unaligned depth camera) extrinsic {EXTRINSIC_HELP}; "
                        "default: the bag's /tf_static and /tf")
    parser.add_argument("--gt-topic", default="", help="ground-truth depth Image at the RGB resolution ('' = none)")
    parser.add_argument("--backbone", default=NODE.backbone,
                        help=f"backbone name, or 'auto' for the best shipped weights (default {NODE.backbone})")
    parser.add_argument("--weights", default=None, help="weights file for a network backbone")
    parser.add_argument("--scale", type=int, default=NODE.scale, help=f"upsampling factor (default {NODE.scale})")
    parser.add_argument("--slop", type=float, default=NODE.slop,
                        help=f"approximate-sync slop in seconds (default {NODE.slop})")
    parser.add_argument("--queue-size", type=int, default=NODE.queue_size,
                        help=f"sync queue size per stream (default {NODE.queue_size})")
    parser.add_argument("--exact-sync", action="store_true", help="pair equal stamps only (TimeSynchronizer)")
    parser.add_argument("--typestore", choices=sorted(TYPESTORES), default="humble",
                        help="message definitions for bags that embed none (sqlite3 bags from Humble)")
    parser.add_argument("--output-encoding", choices=OUTPUT_ENCODINGS, default=NODE.output_encoding,
                        help=f"SR depth encoding: 32FC1 metres or 16UC1 millimetres (default {NODE.output_encoding})")
    parser.add_argument("--point-cloud", choices=("xyz", "xyzrgb"), default="xyzrgb" if NODE.point_cloud_rgb else "xyz",
                        help="point fields (default: the node's)")
    parser.add_argument("--point-stride", type=int, default=NODE.point_stride,
                        help="keep every n-th row/column in the cloud")
    parser.add_argument("--no-points", action="store_true", help="do not write depth_sr/points")
    parser.add_argument("--no-previews", action="store_true", help="do not write PNG previews")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> ReplayConfig:
    return ReplayConfig(
        bag=args.bag,
        out_dir=args.out,
        rgb_topic=args.rgb_topic,
        rgb_info_topic=args.rgb_info_topic,
        depth_topic=args.depth_topic,
        depth_info_topic=args.depth_info_topic,
        gt_topic=args.gt_topic,
        lidar_topic=args.lidar_topic,
        unaligned_depth=args.unaligned_depth,
        extrinsic=args.extrinsic,
        sr=SRConfig(scale=args.scale, backbone=args.backbone, weights=args.weights, min_depth=NODE.min_depth,
                    max_depth=NODE.max_depth),
        output=OutputConfig(args.output_encoding, args.point_cloud == "xyzrgb", args.point_stride),
        queue_size=args.queue_size,
        slop_s=args.slop,
        exact_sync=args.exact_sync,
        typestore=args.typestore,
        previews=not args.no_previews,
        points=not args.no_points,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    if not args.rgb_info_topic:
        LOG.error("--rgb-info-topic is required: the outputs take their intrinsics from the RGB CameraInfo")
        return 2
    try:
        config = config_from_args(args)
        report = run_replay(config)
    except (BagError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    print(format_summary(report))
    return 0
