"""Is the depth registered to the colour camera, and if not, what moves it there: decided once per replay.

`decide(...)` weighs what the recording says before the first frame is processed:
- a depth CameraInfo whose intrinsics, scaled to the colour size, are not the colour camera's
  (`core.camera_info.registration_mismatch`: another field of view or principal point) means the
  depth is another camera's: it is registered into the colour camera
  (`FrameProcessor.process_unaligned`) with the first extrinsic found of
  1. `--extrinsic`,
  2. the recording's own stream extrinsics (RealSense `tf/<g>`, `realsense_bag`),
  3. TF: the bag's `/tf_static` (or `/tf`, looked up per frame) between the two frame ids;
  and with none of them the replay stops with a UsageError naming `--extrinsic`;
- a depth CameraInfo that matches is registered depth (`FrameProcessor.process`);
- no depth CameraInfo: nothing can tell. Depth in another frame than the colour image stops the
  replay (it cannot be registered without its intrinsics); depth in the same (or no) frame is
  processed as registered after one loud warning naming the flags that decide.
`--assume-registered` and `--unaligned-depth` override the evidence ("registered", "unaligned").

Every extrinsic here maps points in the depth camera's optical frame into the colour camera's
optical frame, `p_colour = R @ p_depth + t` (metres): tf2's
`lookup_transform(colour_optical_frame, depth_optical_frame, stamp)`, the transform a
`static_transform_publisher --frame-id <colour optical> --child-frame-id <depth optical>` publishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from depth_sr_ros.core.camera_info import intrinsics_from_camera_info, registration_mismatch
from depth_sr_ros.core.errors import FrameError, UsageError
from depth_sr_ros.core.fields import frame_id
from depth_sr_ros.core.frame_processor import REGISTRATION_TOLERANCE
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.transforms import TransformBuffer
from depth_sr_ros.replay.bag_io import BagReader
from depth_sr_ros.replay.realsense_bag import RealSenseStreams, describe_extrinsic, streams_for

if TYPE_CHECKING:
    from depth_sr_ros.replay.config import ReplayConfig

LOG = logging.getLogger(__name__)

MODES = ("auto", "registered", "unaligned")


class RegistrationError(UsageError):
    """The depth is another camera's and nothing relates the two cameras."""


@dataclass(frozen=True)
class Evidence:
    """What the recording says, from its first messages: CameraInfos (None = none) and frame ids."""

    rgb_info: Any
    depth_info: Any
    rgb_frame: str
    depth_frame: str


@dataclass(frozen=True)
class Registration:
    """The decision: `unaligned` depth is moved by `extrinsic` (depth optical -> colour optical;
    None = looked up in TF per frame); `reason` and `source` say why and from where (log line).
    `from_tf`: the extrinsic is TF's, so the replay keeps looking it up per frame as tf2 would
    (`extrinsic` is then the static value found before the first frame, for the log)."""

    unaligned: bool
    extrinsic: Extrinsic | None
    reason: str
    source: str = ""
    from_tf: bool = False
    depth_sampling: float | None = None  # colour pixels per depth pixel across (fx_colour / fx_depth); None: unknown

    def describe(self) -> str:
        if not self.unaligned:
            return f"depth processed as registered to the colour camera: {self.reason}"
        value = describe_extrinsic(self.extrinsic) if self.extrinsic is not None else "looked up per frame"
        return (f"depth registered into the colour camera ({self.reason}) with the extrinsic from {self.source}: "
                f"depth optical -> colour optical {value}")


def decide(mode: str, evidence: Evidence, extrinsic_flag: Extrinsic | None, stream_extrinsic: Extrinsic | None,
           stream_source: str, tf: TransformBuffer, tf_topics: tuple[str, ...]) -> Registration:
    """The registration of this replay (module docstring); raises RegistrationError when the
    depth must be registered and nothing gives the extrinsic, or cannot be registered at all."""
    if mode not in MODES:
        raise ValueError(f"registration mode must be one of {MODES}, got {mode!r}")
    if mode == "registered":
        return Registration(False, None, "--assume-registered")
    mismatch = _mismatch(evidence)
    if mode == "unaligned" or mismatch:
        if evidence.depth_info is None:
            raise RegistrationError("--unaligned-depth needs the depth camera's CameraInfo: give --depth-info-topic")
        reason = "--unaligned-depth" if mode == "unaligned" else f"another camera's CameraInfo: {mismatch}"
        return _unaligned(reason, evidence, extrinsic_flag, stream_extrinsic, stream_source, tf, tf_topics)
    if evidence.depth_info is not None:
        return Registration(False, None, "its CameraInfo is the colour camera's at the depth resolution")
    if evidence.depth_frame and evidence.rgb_frame and evidence.depth_frame != evidence.rgb_frame:
        raise RegistrationError(
            f"the depth is in frame {evidence.depth_frame!r}, the colour in {evidence.rgb_frame!r}, and there is no "
            "depth CameraInfo to register it with: give --depth-info-topic (with TF or --extrinsic), or "
            "--assume-registered if the driver did register it")
    LOG.warning("NOTE: no depth CameraInfo, so nothing tells whether the depth is registered to the colour camera; "
                "it is processed as registered. If it comes from another camera (another field of view), give "
                "--depth-info-topic and --extrinsic (or record /tf_static); --assume-registered says it is registered "
                "and silences this")
    return Registration(False, None, "no depth CameraInfo (assumed registered; see the note above)")


def _mismatch(evidence: Evidence) -> str:
    if evidence.rgb_info is None or evidence.depth_info is None:
        return ""
    try:
        return registration_mismatch(intrinsics_from_camera_info(evidence.depth_info),
                                     intrinsics_from_camera_info(evidence.rgb_info), REGISTRATION_TOLERANCE)
    except FrameError:
        return ""  # a broken CameraInfo is skipped per frame with its own reason


def _unaligned(reason: str, evidence: Evidence, extrinsic_flag: Extrinsic | None, stream_extrinsic: Extrinsic | None,
               stream_source: str, tf: TransformBuffer, tf_topics: tuple[str, ...]) -> Registration:
    if extrinsic_flag is not None:
        return Registration(True, extrinsic_flag, reason, "--extrinsic")
    if stream_extrinsic is not None:
        return Registration(True, stream_extrinsic, reason, f"the recording's stream extrinsics ({stream_source})")
    rgb, depth = evidence.rgb_frame, evidence.depth_frame
    if rgb and depth and rgb != depth:
        try:
            static = tf.lookup(rgb, depth, 0)
            return Registration(True, static, reason, f"/tf_static ({rgb!r} <- {depth!r})", from_tf=True)
        except FrameError:
            pass
        if "/tf" in tf_topics:
            return Registration(True, None, reason, f"/tf ({rgb!r} <- {depth!r})", from_tf=True)
    frames = f"frames {rgb!r} and {depth!r}" if rgb != depth else f"both in frame {rgb!r}"
    raise RegistrationError(
        f"the depth is another camera's ({reason}) and the recording does not say where that camera is ({frames}; "
        "no /tf_static between them, no stream extrinsics): give --extrinsic 'tx ty tz qx qy qz qw' (depth optical "
        "frame -> colour optical frame), or --assume-registered if it is registered after all")


FIRST_LOOK_RECORDS = 300  # records read at most to find each stream's first message (10 s of 4 topics at 30 Hz)


def first_messages(reader: BagReader, topics: list[str]) -> dict[str, Any]:
    """The first decodable message of each of `topics`; reading stops as soon as every topic has
    given one, or after FIRST_LOOK_RECORDS records (a topic silent that long is left out)."""
    wanted = {t for t in topics if t}
    found: dict[str, Any] = {}
    for count, record in enumerate(reader.records(wanted), start=1):
        if record.message is not None:
            found.setdefault(record.topic, record.message)
        if len(found) == len(wanted) or count >= FIRST_LOOK_RECORDS:
            break
    return found


def prepare(reader: BagReader, config: ReplayConfig) -> tuple[Registration, RealSenseStreams | None]:
    """Read what decides the registration (the recording's stream extrinsics and depth units,
    /tf_static, the first CameraInfo and image of each stream) and decide it (`decide`).

    Returns the decision and the RealSense view of the recording (None for other layouts),
    which adapts its messages during the replay (`RealSenseStreams.adapt`).
    """
    present = reader.topics()
    realsense = streams_for(config.rgb_topic, config.depth_topic)
    stream_source = ""
    if realsense is not None:
        metadata = realsense.metadata_topics(present)
        for record in reader.records(metadata):
            if record.message is not None:
                realsense.add(record.topic, record.message)
        stream_source = ", ".join(t for t in metadata if "/tf/" in t)
        if realsense.depth_units is not None:
            LOG.info("depth units from the recording: %.6g m", realsense.depth_units)
    tf = static_transforms(reader)
    firsts = first_messages(reader, [config.rgb_info_topic, config.depth_info_topic, config.rgb_topic,
                                     config.depth_topic])

    def first(topic: str) -> Any:
        message = firsts.get(topic) if topic else None
        return realsense.adapt(topic, message) if realsense is not None and message is not None else message

    evidence = Evidence(first(config.rgb_info_topic), first(config.depth_info_topic),
                        frame_id(firsts.get(config.rgb_topic)) or frame_id(firsts.get(config.rgb_info_topic)),
                        frame_id(firsts.get(config.depth_topic)) or frame_id(firsts.get(config.depth_info_topic)))
    mode = "unaligned" if config.unaligned_depth else "registered" if config.output.assume_registered else "auto"
    decision = decide(mode, evidence, config.extrinsic, realsense.depth_to_colour() if realsense else None,
                      stream_source, tf, tuple(t for t in ("/tf_static", "/tf") if t in present))
    sampling = depth_sampling(evidence, firsts.get(config.rgb_topic), firsts.get(config.depth_topic))
    return replace(decision, depth_sampling=sampling), realsense


def static_transforms(reader: BagReader) -> TransformBuffer:
    """The recording's /tf_static (an empty buffer without one); unusable messages are warned about."""
    tf = TransformBuffer()
    if "/tf_static" in reader.topics():
        for record in reader.records(["/tf_static"]):
            if record.message is not None:
                try:
                    tf.add_message(record.message, static=True)
                except ValueError as err:
                    LOG.warning("a /tf_static message is unusable: %s", err)
    return tf


def depth_sampling(evidence: Evidence, rgb_msg: Any, depth_msg: Any) -> float | None:
    """Colour pixels per depth pixel across: `fx_colour / fx_depth` from the CameraInfos, else the
    ratio of the image widths (raw images; a compressed one has no width before decoding)."""
    try:
        if evidence.rgb_info is not None and evidence.depth_info is not None:
            return intrinsics_from_camera_info(evidence.rgb_info).fx / intrinsics_from_camera_info(evidence.depth_info).fx
    except FrameError:
        return None
    rgb_width, depth_width = (int(getattr(m, "width", 0) or 0) for m in (rgb_msg, depth_msg))
    return rgb_width / depth_width if rgb_width > 0 and depth_width > 0 else None
