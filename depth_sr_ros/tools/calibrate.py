"""`depth-sr calibrate BAG`: estimate the depth sensor's registration residual over a bag, no ground truth.

    depth-sr calibrate BAG --rgb-topic /camera/color/image_raw \\
        --depth-topic /camera/aligned_depth_to_color/image_raw [--frames 30] [--out tf.launch.py]

The depth topic is taken as registered to the colour camera (the vendor's "aligned" depth, at any
resolution covering the colour image); what is estimated is the residual pose of the depth sensor
in the colour optical frame (core/registration_estimate.py). Up to `--frames` colour/depth pairs
spread over the bag are used. The run prints the estimate with its uncertainty, how far it moves
depth edges and how much it changes the depth, and writes a launch snippet with a tf2_ros
`static_transform_publisher` carrying it (`--x ... --qw`, `--frame-id`, `--child-frame-id`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from depth_sr_ros.core.camera_info import intrinsics_from_camera_info
from depth_sr_ros.core.errors import FrameError, UsageError
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.core.registration_estimate import RegistrationEstimate
from depth_sr_ros.core.registration_window import SelfRegistration, SelfRegistrationConfig
from depth_sr_ros.core.reprojection import assumed_intrinsics
from depth_sr_ros.core.resample import check_aspect
from depth_sr_ros.eval.registration import describe
from depth_sr_ros.replay.bag_io import TYPESTORES, BagReader
from depth_sr_ros.tools.usage import add_no_progress, bounded, output_file

LOG = logging.getLogger(__name__)
ASPECT_TOLERANCE = 0.03  # registered depth must cover the colour image's field of view


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (sqlite3 or MCAP), a .mcap/.db3 file or a ROS 1 .bag")
    parser.add_argument("--rgb-topic", required=True, help="colour sensor_msgs/Image (or CompressedImage) topic")
    parser.add_argument("--depth-topic", required=True,
                        help="depth Image topic labelled as registered to the colour camera (16UC1 mm or 32FC1 m)")
    parser.add_argument("--rgb-info-topic", default=None,
                        help="colour CameraInfo topic (default: camera_info beside --rgb-topic; without one in the "
                        "bag, a 60 degree field of view is assumed and said)")
    parser.add_argument("--frames", type=bounded(int, 3, 200), default=30, metavar="N",
                        help="colour/depth pairs to estimate over, spread over the bag (default 30)")
    parser.add_argument("--slop", type=bounded(float, 0.0, 1.0), default=0.05, metavar="S",
                        help="largest colour/depth stamp difference of a pair, seconds (default 0.05)")
    parser.add_argument("--frame-id", default=None,
                        help="parent frame of the transform (default: the colour image's frame_id)")
    parser.add_argument("--child-frame-id", default=None,
                        help="child frame (default: the depth image's frame_id, or <colour frame>_depth_sensor "
                        "when the depth carries the colour frame's id)")
    parser.add_argument("--out", default=None,
                        help="write the launch snippet here (default: runs/calibrate/<bag name>_static_tf.launch.py)")
    parser.add_argument("--typestore", choices=sorted(TYPESTORES), default="humble",
                        help="message definitions for bags that embed none (Humble sqlite3)")
    add_no_progress(parser)


def _stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)


def _sibling_info(topic: str) -> str:
    return topic.rsplit("/", 1)[0] + "/camera_info"


def collect(args: argparse.Namespace, registration: SelfRegistration) -> dict[str, Any]:
    """Add up to `--frames` colour/depth pairs of the bag to `registration`; what was read and
    skipped, the frame ids, and the depth images kept (to measure the change the estimate makes)."""
    info_topic = args.rgb_info_topic or _sibling_info(args.rgb_topic)
    with BagReader(args.bag, args.typestore) as bag:
        present = bag.topics()
        roles = {"colour": args.rgb_topic, "depth": args.depth_topic}
        if args.rgb_info_topic:
            roles["colour info"] = args.rgb_info_topic
        bag.require(roles)
        topics = [args.rgb_topic, args.depth_topic] + ([info_topic] if info_topic in present else [])
        every = max(1, present[args.depth_topic][1] // args.frames)
        state: dict[str, Any] = {"rgb": None, "intrinsics": None, "pairs": 0, "skipped": {}, "depths": [],
                                 "frame_id": "", "depth_frame_id": "", "info_topic": info_topic in present}
        bar = tqdm(total=args.frames, desc="calibrate", disable=args.no_progress)
        for record in bag.records(topics):
            if record.message is None:
                state["skipped"]["corrupt_record"] = state["skipped"].get("corrupt_record", 0) + 1
            elif record.topic == info_topic:
                state["intrinsics"] = record.message
            elif record.topic == args.rgb_topic:
                state["rgb"] = record.message
            elif state["rgb"] is not None and abs(_stamp_ns(record.message) - _stamp_ns(state["rgb"])) <= args.slop * 1e9:
                state["pairs"] += 1
                if (state["pairs"] - 1) % every == 0 and _add(state, record.message, registration):
                    bar.update(1)
            if len(state["depths"]) >= args.frames:
                break
        bar.close()
    return state


def _add(state: dict[str, Any], depth_msg: Any, registration: SelfRegistration) -> bool:
    """One pair into the window; a bad frame is a counted skip."""
    try:
        rgb = rgb_from_image(state["rgb"])
        depth = depth_from_image(depth_msg)
        check_aspect(depth.shape, rgb.shape, ASPECT_TOLERANCE)  # registered depth covers the colour image
        intrinsics = (intrinsics_from_camera_info(state["intrinsics"]) if state["intrinsics"] is not None
                      else assumed_intrinsics(rgb.shape[1], rgb.shape[0]))
        if (intrinsics.width, intrinsics.height) != (rgb.shape[1], rgb.shape[0]):
            raise FrameError("camera_info_size", f"CameraInfo is for {intrinsics.width}x{intrinsics.height}, "
                             f"the colour image is {rgb.shape[1]}x{rgb.shape[0]}")
    except FrameError as err:
        state["skipped"][err.reason] = state["skipped"].get(err.reason, 0) + 1
        LOG.debug("skipping a pair: %s", err)
        return False
    registration.add(rgb, depth, intrinsics)
    state["depths"].append((depth, intrinsics))
    state["frame_id"] = str(state["rgb"].header.frame_id)
    state["depth_frame_id"] = str(depth_msg.header.frame_id)
    return True


def depth_change_m(registration: SelfRegistration, depths: list[tuple[np.ndarray, Any]]) -> float:
    """The mean absolute change (metres) the current estimate makes to the depth images, over the
    pixels valid before and after (0 when it is not applied)."""
    changes = []
    for depth, intrinsics in depths:
        after = registration.apply(depth, intrinsics)
        both = np.isfinite(depth) & np.isfinite(after)
        if both.any():
            changes.append(float(np.mean(np.abs(after[both] - depth[both]))))
    return float(np.mean(changes)) if changes else 0.0


def launch_snippet(result: RegistrationEstimate, parent: str, child: str) -> str:
    """A launch `Node` running tf2_ros' static_transform_publisher with the estimate: the depth
    sensor's pose in the colour optical frame (parent = colour frame, child = depth sensor)."""
    extrinsic = result.extrinsic
    values = dict(zip(("--x", "--y", "--z"), extrinsic.translation.tolist()))
    values.update(zip(("--qx", "--qy", "--qz", "--qw"), extrinsic.as_quaternion()))
    arguments = ", ".join(f"'{flag}', '{value:.6f}'" for flag, value in values.items())
    return (f"# depth-sr calibrate: {describe(result)}\n"
            "from launch_ros.actions import Node\n\n"
            "depth_registration_tf = Node(\n"
            "    package='tf2_ros', executable='static_transform_publisher', name='depth_registration_tf',\n"
            f"    arguments=[{arguments},\n"
            f"               '--frame-id', '{parent}', '--child-frame-id', '{child}'],\n"
            ")\n")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path("runs") / "calibrate" / f"{args.bag.resolve().name}_static_tf.launch.py"
    output_file("--out", str(out))
    registration = SelfRegistration(SelfRegistrationConfig(window=args.frames))
    state = collect(args, registration)
    if not state["depths"]:
        raise UsageError(f"{args.bag}: no colour/depth pair within --slop {args.slop} s on {args.rgb_topic} and "
                         f"{args.depth_topic} ({state['pairs']} pairs, skipped: {state['skipped'] or 'none'})")
    if not state["info_topic"]:
        LOG.warning("no CameraInfo on %s: a 60 degree horizontal field of view is assumed (give --rgb-info-topic)",
                    args.rgb_info_topic or _sibling_info(args.rgb_topic))
    result = registration.update()
    parent = args.frame_id or state["frame_id"]
    child = args.child_frame_id or (state["depth_frame_id"] if state["depth_frame_id"] != parent
                                    else f"{parent}_depth_sensor")
    print(f"\ncalibrate {args.bag}: {len(state['depths'])} pairs used of {state['pairs']} "
          f"(skipped: {state['skipped'] or 'none'})")
    print(f"estimate: {describe(result)}")
    if result.status != "ok":
        print("no snippet written: the bag does not constrain the registration (record a scene with objects "
              "in front of a background, at 1-3 m)")
        return 0
    print(f"change to the depth: {100 * depth_change_m(registration, state['depths']):.2f} cm mean absolute, "
          f"depth edges moved {result.shift_px:.2f} colour px")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(launch_snippet(result, parent, child), encoding="utf-8")
    print(f"wrote {out}: paste its Node into your launch file")
    return 0
