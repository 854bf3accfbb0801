"""`depth-sr replay BAG --out DIR`: run a recording (rosbag2, ROS 1 .bag, RealSense Viewer file)
through the node's pipeline and score it.

Topics left out are found in the recording (`replay/discovery.py`: one obvious colour/depth set,
else exit 2 with the candidates); a topic flag overrides what would be found. An
empty string (`--depth-info-topic ''`) turns an optional input off. With `--gt-topic`, every
frame is also scored against ground truth, beside the `bicubic` baseline on the same frames.
With `--lidar-topic`, a LiDAR PointCloud2 replaces the depth image (docs/lidar.md); with
`--unaligned-depth`, a depth image in its own frame is registered into the RGB camera. The
transform comes from the bag's /tf_static and /tf, or from `--extrinsic`.
Pipeline, sync and output defaults, and the allowed values of those flags, are the node's
(`depth_sr_ros.ros.parameters.PARAMETERS`, config/sr.yaml): a replay behaves like the node with
its default parameters, and refuses what the node refuses.
The outputs are meant to be kept: depth as 16UC1 millimetres in zstd-compressed MCAP, no point
cloud, previews of every 100th and the 6 worst frames, and `report.html` (0.24 MB per 640x480
frame in all, README; `--output-encoding 32FC1`, `--points xyzrgb`, `--every N` and the preview
flags change that).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from depth_sr_ros.core.frame_processor import OutputConfig
from depth_sr_ros.core.pipeline import SRConfig
from depth_sr_ros.core.transforms import EXTRINSIC_HELP, parse_extrinsic
from depth_sr_ros.replay import discovery, sample_bag
from depth_sr_ros.replay.bag_io import TYPESTORES
from depth_sr_ros.replay.config import PREVIEW_EVERY, REPLAY_OUTPUT, WORST_PREVIEWS, ReplayConfig
from depth_sr_ros.replay.out_dir import OutputDir
from depth_sr_ros.replay.residual import REGISTRATION_MODES
from depth_sr_ros.replay.runner import run_replay
from depth_sr_ros.replay.summary import format_reasons, format_summary
from depth_sr_ros.replay.writer import POINTS_MODES
from depth_sr_ros.ros.parameters import PARAMETER_BY_NAME, NodeParams
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    add_second_pass_argument,
    add_second_pass_weights_argument,
    add_table_argument,
    bounded,
    existing_file,
    output_dir,
)

LOG = logging.getLogger(__name__)
NODE = NodeParams.defaults()


def extrinsic_flag(text: str) -> Any:
    """argparse `type` for --extrinsic."""
    try:
        return parse_extrinsic(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="recording: a rosbag2 directory (sqlite3 or MCAP), a single "
                        ".mcap/.db3 file, or a ROS 1 .bag file (RealSense Viewer files included)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (created; an earlier replay's outputs there are replaced, with a "
                        "line saying so, and nothing else is touched)")
    parser.add_argument("--rgb-topic", default=None,
                        help="colour Image or CompressedImage topic; " + discovery.help_text())
    parser.add_argument("--rgb-info-topic", default=None,
                        help="colour CameraInfo topic (default: the camera_info beside the colour topic, "
                        f"{sample_bag.RGB_INFO_TOPIC} in the sample bag)")
    parser.add_argument("--depth-topic", default=None,
                        help="depth Image topic (16UC1/mono16 mm or 32FC1 m), registered to the colour camera or "
                        "not (see --unaligned-depth); default: found with --rgb-topic "
                        f"({sample_bag.DEPTH_TOPIC} in the sample bag)")
    parser.add_argument("--depth-info-topic", default=None,
                        help="depth CameraInfo topic ('' = none; the RGB intrinsics define the output; default: the "
                        f"camera_info beside the depth topic, {sample_bag.DEPTH_INFO_TOPIC} in the sample bag). "
                        "It tells registered depth from another camera's")
    parser.add_argument("--lidar-topic", default="",
                        help="LiDAR PointCloud2 topic in place of --depth-topic ('' = depth image input); "
                        "pair it with the camera with --slop of at least half the camera period")
    parser.add_argument("--unaligned-depth", action="store_true",
                        help="the depth image is in its own frame (not registered to the RGB camera): "
                        "register it with --extrinsic or the bag's TF, using --depth-info-topic's intrinsics")
    parser.add_argument("--extrinsic", type=extrinsic_flag, default=None,
                        help=f"LiDAR (or unaligned depth camera) extrinsic {EXTRINSIC_HELP}; "
                        "default: the bag's /tf_static and /tf")
    parser.add_argument("--registration", choices=REGISTRATION_MODES, default="auto",
                        help="residual registration of depth labelled registered to the colour camera: none (as "
                        "labelled), tf (the residual given as --extrinsic, else on /tf_static as depth-sr calibrate's "
                        "snippet publishes it), auto (estimated over 30 pairs spread over the bag from colour and "
                        "depth alone, applied only when significant, so registered depth is left as it is; the "
                        "estimate goes to the log and metrics.json). docs/registration.md")
    parser.add_argument("--gt-topic", default="", help="ground-truth depth Image at the RGB resolution ('' = none)")
    add_table_argument(parser, "--backbone", "backbone", "backbone name, or 'auto' for the best shipped weights")
    parser.add_argument("--weights", default=None, help="weights file (.safetensors with its .card.json) for a network backbone (default: the "
                        "shipped weights for --backbone and --scale)")
    add_table_argument(parser, "--scale", "scale", "upsampling factor")
    add_table_argument(parser, "--slop", "slop", "approximate-sync slop in seconds")
    add_table_argument(parser, "--queue-size", "queue_size", "sync queue size per stream")
    parser.add_argument("--exact-sync", action="store_true", help="pair equal stamps only (TimeSynchronizer)")
    parser.add_argument("--assume-registered", action="store_true",
                        help="the node's assume_registered: " + PARAMETER_BY_NAME["assume_registered"].description)
    parser.add_argument("--typestore", choices=sorted(TYPESTORES), default="humble",
                        help="message definitions for bags that embed none (sqlite3 bags from Humble)")
    add_table_argument(parser, "--output-encoding", "output_encoding",
                       "SR depth encoding in the output bag: 16UC1 millimetres, or 32FC1 metres (the node's default; "
                       "4x the size in the bag). Metrics use the float depth either way",
                       default=REPLAY_OUTPUT.output_encoding)
    add_points_argument(parser)
    add_table_argument(parser, "--point-stride", "point_stride", "keep every n-th row/column in the cloud")
    add_table_argument(parser, "--min-confidence", "min_confidence",
                       "the node's min_confidence: output pixels whose confidence is below it are invalid in the "
                       "written depth and cloud (0 in 16UC1, NaN in 32FC1 and the cloud), and the metrics score the "
                       "pixels kept; 0 keeps every pixel (docs/confidence.md)")
    add_second_pass_argument(parser)
    add_second_pass_weights_argument(parser)
    add_table_argument(parser, "--max-image-pixels", "max_image_pixels",
                       "largest image (width x height) an input Image, compressed image header or CameraInfo may "
                       "claim; larger ones are skipped as oversize before anything is decoded")
    parser.add_argument("--every", type=bounded(int, 1), default=1, metavar="N",
                        help="write the outputs of every N-th processed frame to the bag; metrics cover all frames "
                        "(default 1)")
    parser.add_argument("--max-frames", type=bounded(int, 0), default=0, metavar="N",
                        help="stop after N processed frames (default 0: the whole bag)")
    parser.add_argument("--preview-every", type=bounded(int, 0), default=PREVIEW_EVERY, metavar="N",
                        help=f"a preview PNG for every N-th processed frame, 0 = none (default {PREVIEW_EVERY})")
    parser.add_argument("--worst-previews", type=bounded(int, 0), default=WORST_PREVIEWS, metavar="K",
                        help=f"previews of the K frames with the highest RMSE, at least 1 s apart; 0 = none "
                        f"(default {WORST_PREVIEWS})")
    parser.add_argument("--no-previews", action="store_true", help="no preview PNG at all")
    add_no_progress(parser)


def add_points_argument(parser: argparse.ArgumentParser) -> None:
    """`--points none|xyz|xyzrgb`: the point cloud written beside the depth image (default none)."""
    parser.add_argument("--points", choices=POINTS_MODES, default="none",
                        help="point cloud in the output bag: none, xyz, or xyzrgb (packed rgb). A full-resolution "
                        "XYZRGB cloud is 4.9 MB per 640x480 frame; depth_image_proc makes it from the depth image "
                        "and CameraInfo at any time (default none)")


def config_from_args(args: argparse.Namespace) -> ReplayConfig:
    """The replay configuration; raises UsageError for flags that cannot work together."""
    OutputDir(args.out, "replay").check_inputs([args.bag])  # before the recording is even read
    for flag, topic in (("--rgb-topic", args.rgb_topic), ("--depth-topic", args.depth_topic)):
        if topic == "":
            raise UsageError(f"{flag} '' names no topic; leave the flag out to find it in the recording")
    lidar = bool(args.lidar_topic)
    choice = discovery.discover_in_bag(args.bag, args.typestore, {
        "rgb": args.rgb_topic, "rgb_info": args.rgb_info_topic,
        "depth": "" if lidar else args.depth_topic, "depth_info": "" if lidar else args.depth_info_topic})
    args.rgb_topic, args.rgb_info_topic = choice.rgb, choice.rgb_info
    args.depth_topic, args.depth_info_topic = choice.depth, choice.depth_info
    if not args.rgb_info_topic:
        raise UsageError("--rgb-info-topic is required: the outputs take their intrinsics from the RGB CameraInfo")
    if not args.exact_sync and args.slop <= 0:
        raise UsageError(f"--slop {args.slop}: approximate sync pairs stamps closer than the slop, so 0 pairs "
                         "nothing; give a positive slop (the node's default is "
                         f"{NODE.slop}) or --exact-sync")
    if args.weights is not None:
        existing_file("--weights", args.weights, "weights file")
    return ReplayConfig(
        bag=args.bag,
        out_dir=output_dir("--out", args.out),
        rgb_topic=args.rgb_topic,
        rgb_info_topic=args.rgb_info_topic,
        depth_topic=args.depth_topic,
        depth_info_topic=args.depth_info_topic,
        gt_topic=args.gt_topic,
        lidar_topic=args.lidar_topic,
        unaligned_depth=args.unaligned_depth,
        extrinsic=args.extrinsic,
        registration=args.registration,
        sr=SRConfig(scale=args.scale, backbone=args.backbone, weights=args.weights, min_depth=NODE.min_depth,
                    max_depth=NODE.max_depth, second_pass_weights=args.second_pass_weights),
        output=OutputConfig(args.output_encoding, point_stride=args.point_stride,
                            assume_registered=args.assume_registered, min_confidence=args.min_confidence,
                            second_pass=not args.no_second_pass),
        queue_size=args.queue_size,
        slop_s=args.slop,
        exact_sync=args.exact_sync,
        typestore=args.typestore,
        previews=not args.no_previews,
        preview_every=args.preview_every,
        worst_previews=args.worst_previews,
        points=args.points,
        every=args.every,
        max_frames=args.max_frames,
        max_image_pixels=args.max_image_pixels,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    """Replay and print the summary; a run that processed no frame ends with its hint as the one
    error line (exit 2), the outputs written for the record."""
    report = run_replay(config_from_args(args))
    print(format_summary(report))
    if not report.pairs_processed:
        reasons = format_reasons(report.pairs_skipped)
        raise UsageError("no frame processed: " + (" | ".join(report.hints) if report.hints else
                                                   f"pairs skipped: {reasons}; see the summary above"))
    return 0
