"""`depth-sr replay --registration none|tf|auto`: the residual registration of depth labelled as
registered to the colour camera, decided once before the replay.

- `none`: the depth is taken as labelled.
- `tf`: the residual as given: `--extrinsic`, else the recording's /tf_static from the colour
  frame to the depth sensor (the depth image's frame when it names another, else
  `<colour frame>_depth_sensor`, the child of `depth-sr calibrate`'s launch snippet); with
  neither, nothing is applied. Depth from another camera (`registration.py`) is registered with TF or
  `--extrinsic` in every mode, as before.
- `auto` (the default): the residual is estimated over a window of colour/depth pairs spread
  evenly over the bag (every n-th pair, paired the way the replay pairs them, `StampSync`), from
  colour and depth alone (`core/registration_window.py`), and applied to every frame only when the
  estimate says it is significant (at least 8 distinct views, constrained, beyond 3 standard
  deviations from identity, moving depth edges by at least one colour pixel). Correctly
  registered depth is then left as it is (docs/registration.md: registered RGB-D-D, Middlebury,
  NYU and TUM inputs get no estimate applied).

Frames: the residual maps the depth sensor's optical frame into the colour optical frame,
`p_colour = R p_depth + t` (metres), applied by `FrameProcessor.process(residual=...)`.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from depth_sr_ros.core.camera_info import Intrinsics, intrinsics_from_camera_info
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.fields import frame_id, time_ns
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.core.projection import Extrinsic
from depth_sr_ros.core.registration_window import SelfRegistration, SelfRegistrationConfig
from depth_sr_ros.core.reprojection import extrinsic_params
from depth_sr_ros.core.sync import Pair, StampSync
from depth_sr_ros.eval.registration import describe
from depth_sr_ros.replay.bag_io import BagReader
from depth_sr_ros.replay.realsense_bag import RealSenseStreams, describe_extrinsic
from depth_sr_ros.replay.registration import first_messages, static_transforms

if TYPE_CHECKING:
    from depth_sr_ros.replay.config import ReplayConfig

LOG = logging.getLogger(__name__)

REGISTRATION_MODES = ("none", "tf", "auto")
DEPTH_SENSOR_SUFFIX = "_depth_sensor"  # child frame of the residual for depth that carries the colour frame's id


@dataclass(frozen=True)
class Residual:
    """The decision: `extrinsic` is applied to every frame (None: nothing); `report` goes to
    metrics.json under "registration" (mode, applied, the estimate and its uncertainty)."""

    extrinsic: Extrinsic | None
    report: dict[str, Any] = field(default_factory=dict)


def decide_residual(reader: BagReader, config: ReplayConfig, realsense: RealSenseStreams | None,
                    window: int = SelfRegistrationConfig.window) -> Residual:
    """The residual of this replay (module docstring). `config` is the replay's after the
    registration decision (`registration.prepare`): projected inputs (LiDAR, unaligned depth)
    are registered by their own extrinsic and get no residual."""
    mode = config.registration
    if mode == "none":
        return Residual(None, {"mode": mode, "applied": False})
    if config.lidar_topic or config.unaligned_depth:
        LOG.info("--registration %s: the depth is registered with its own extrinsic (TF or --extrinsic); "
                 "no residual is %s", mode, "estimated" if mode == "auto" else "added")
        return Residual(None, {"mode": mode, "applied": False, "note": "projected input: its extrinsic only"})
    if mode == "tf":
        given, source = _given(reader, config)
        LOG.info("--registration tf: %s", f"residual from {source} applied: {describe_extrinsic(given)}"
                 if given is not None else "no --extrinsic and no /tf_static residual, so the depth is taken "
                 "as labelled")
        report: dict[str, Any] = {"mode": mode, "applied": given is not None, "source": source}
        if given is not None:
            report["params"] = _rounded(extrinsic_params(given))
        return Residual(given, report)
    return _estimated(reader, config, realsense, window)


def _given(reader: BagReader, config: ReplayConfig) -> tuple[Extrinsic | None, str]:
    """`--extrinsic`, else the recording's /tf_static from the colour frame to the depth sensor:
    the depth image's frame when it names another one, else `<colour frame>_depth_sensor` (the
    child `depth-sr calibrate`'s launch snippet publishes for depth in the colour frame)."""
    if config.extrinsic is not None:
        return config.extrinsic, "--extrinsic"
    firsts = first_messages(reader, [config.rgb_topic, config.depth_topic])
    colour, depth = frame_id(firsts.get(config.rgb_topic)), frame_id(firsts.get(config.depth_topic))
    if not colour:
        return None, ""
    child = depth if depth and depth != colour else f"{colour}{DEPTH_SENSOR_SUFFIX}"
    try:
        return static_transforms(reader).lookup(colour, child, 0), f"/tf_static ({colour!r} <- {child!r})"
    except FrameError:
        return None, ""


def _estimated(reader: BagReader, config: ReplayConfig, realsense: RealSenseStreams | None,
               window: int) -> Residual:
    registration = SelfRegistration(SelfRegistrationConfig(window=window))
    skipped: Counter[str] = Counter()
    intrinsics = _colour_intrinsics(reader, config, realsense)
    used = 0
    stride = _stride(reader, config, window)
    if intrinsics is not None:
        for pair in itertools.islice(_pairs(reader, config, realsense), 0, None, stride):
            try:
                rgb = rgb_from_image(pair.rgb.payload, config.max_image_pixels)
                depth = depth_from_image(pair.depth.payload, config.max_image_pixels)
            except FrameError as err:
                skipped[err.reason] += 1
                continue
            if (rgb.shape[1], rgb.shape[0]) != (intrinsics.width, intrinsics.height):
                skipped["size_mismatch"] += 1
                continue
            registration.add(rgb, depth, intrinsics)
            used += 1
            if used >= window:
                break
    report: dict[str, Any] = {"mode": "auto", "window": window, "every_nth_pair": stride, "pairs_used": used,
                              "pairs_skipped": dict(skipped)}
    if used == 0:
        LOG.warning("--registration auto: no usable colour/depth pair (colour CameraInfo %s, skipped %s); "
                    "the depth is taken as labelled", "missing" if intrinsics is None else "found", dict(skipped))
        return Residual(None, {**report, "applied": False, "status": "no_pairs"})
    result = registration.update()
    current = registration.current
    applied = registration.applies
    LOG.info("--registration auto over %d pairs (one in %d): %s", used, stride, describe(result))
    report.update(applied=applied, status=result.status, solved=list(result.solved),
                  params=_rounded(result.params), std=_rounded(result.std), shift_px=round(float(result.shift_px), 3),
                  frames_used=result.frames_used, frames_rejected=result.frames_rejected, notes=list(result.notes),
                  units="params, std: tx ty tz metres, rx ry rz radians (depth optical -> colour optical)")
    return Residual(current.extrinsic if current is not None and applied else None, report)


def _stride(reader: BagReader, config: ReplayConfig, window: int) -> int:
    """Every how many pairs the window takes one, to spread it over the pairs the replay processes
    (the bag's declared message counts; `--max-frames` when smaller): a camera standing still at
    the start of a recording gives one view, not `window` (`EstimateConfig.min_views`)."""
    counts = reader.topics()
    pairs = min(counts.get(config.rgb_topic, ("", 0))[1], counts.get(config.depth_topic, ("", 0))[1])
    if config.max_frames:
        pairs = min(pairs, config.max_frames)
    return max(1, pairs // window)


def _colour_intrinsics(reader: BagReader, config: ReplayConfig, realsense: RealSenseStreams | None
                       ) -> Intrinsics | None:
    """The colour camera from the first usable CameraInfo on the colour info topic."""
    for record in reader.records([config.rgb_info_topic]):
        if record.message is None:
            continue
        message = realsense.adapt(record.topic, record.message) if realsense is not None else record.message
        try:
            return intrinsics_from_camera_info(message)
        except FrameError:
            continue
    return None


def _pairs(reader: BagReader, config: ReplayConfig, realsense: RealSenseStreams | None) -> Iterator[Pair]:
    """Colour/depth pairs from the start of the bag, paired with the replay's sync policy."""
    sync = StampSync(config.queue_size, config.slop_s, config.exact_sync)
    for record in reader.records([config.rgb_topic, config.depth_topic]):
        if record.message is None:
            continue
        message = realsense.adapt(record.topic, record.message) if realsense is not None else record.message
        stamp = time_ns(message.header.stamp)
        if stamp == 0:
            continue
        stream = "rgb" if record.topic == config.rgb_topic else "depth"
        yield from sync.add(stream, stamp, record.log_time_ns, message)


def _rounded(values: np.ndarray) -> list[float | None]:
    """JSON numbers; None for a parameter not solved (its uncertainty is NaN)."""
    return [round(float(v), 6) if np.isfinite(v) else None for v in values]
