"""The node's frame path without ROS: newest-pair mailbox, CameraInfo matching, the frame handler.

CameraInfo: the synchroniser pairs only the RGB image with the depth image (or cloud); each
CameraInfo topic feeds an `InfoCache`, and a pair's CameraInfo is the one with its image's
stamp, else the latest earlier one, the policy `depth-sr replay` uses
(`core.sync.match_camera_info`). Drivers publish the CameraInfo just after its image, so once a
camera has shown that its CameraInfos carry the image stamps, a lookup waits up to
`INFO_WAIT_S` for the one with the pair's stamp before it falls back to the latest earlier one.
A pair whose RGB CameraInfo never arrived is skipped as `missing_camera_info`, counted and
logged like any bad frame. An image (or cloud) stamped 0 never reaches the synchroniser: it is
skipped as `zero_stamp` (`zero_stamp_error`), as `depth-sr replay` does (an unset clock says
nothing about which frame it is).

Messages are read by field name, so rclpy messages (node) and rosbags messages (tests) both work.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import float_image_fields
from depth_sr_ros.core.sync import match_camera_info
from depth_sr_ros.ros.health import HealthMonitor

INTERNAL_ERROR = "internal_error"  # an unexpected exception while processing one pair
ZERO_STAMP = "zero_stamp"  # replay's reason for the same message
INFO_WAIT_S = 0.05  # how long a lookup waits for the CameraInfo with the image's own stamp


def stamp_ns(header: Any) -> int:
    """A message header's stamp in nanoseconds (`sec`, `nanosec`)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def stamp_seconds(header: Any) -> float:
    """A message header's stamp in seconds."""
    return stamp_ns(header) * 1e-9


def zero_stamp_error(topic: str, header: Any) -> FrameError | None:
    """FrameError("zero_stamp") for an input image or cloud stamped 0, else None."""
    if stamp_ns(header) != 0:
        return None
    return FrameError(ZERO_STAMP, f"a {topic} message stamped 0 (the publisher's clock is not set); "
                      "it cannot be paired by stamp")


class InfoCache:
    """The last `keep` CameraInfo messages of one topic, matched to images by stamp.

    `wait_s`: how long `find` waits for the CameraInfo with the image's stamp, while this topic's
    CameraInfos have been carrying their images' stamps (the last lookup found one).
    """

    def __init__(self, topic: str, keep: int, wait_s: float = INFO_WAIT_S) -> None:
        self.topic = topic
        self.wait_s = wait_s
        self._items: deque[tuple[int, Any]] = deque(maxlen=max(keep, 1))
        self._changed = threading.Condition()
        self._stamped_like_images = False

    def put(self, msg: Any) -> None:
        with self._changed:
            self._items.append((stamp_ns(msg.header), msg))
            self._changed.notify_all()

    def find(self, header: Any) -> Any | None:
        """The CameraInfo for an image with `header`: equal stamp, else the latest earlier, else None."""
        stamp = stamp_ns(header)
        with self._changed:
            def exact() -> bool:
                return any(s == stamp for s, _ in self._items)

            if self._stamped_like_images:
                self._stamped_like_images = self._changed.wait_for(exact, self.wait_s)
            else:
                self._stamped_like_images = exact()
            items = list(self._items)
        match = match_camera_info([stamp], [s for s, _ in items])[0]
        return None if match is None else items[match][1]

    def require(self, header: Any) -> Any:
        """`find`, or FrameError("missing_camera_info") naming the topic."""
        info = self.find(header)
        if info is None:
            raise FrameError(
                "missing_camera_info",
                f"no CameraInfo on {self.topic} at or before the image's stamp {stamp_seconds(header):.3f} s: "
                "is the camera publishing it (and remapped to this topic)?",
            )
        return info


@dataclass(frozen=True)
class FrameInputs:
    """One synchronised pair: the RGB image and the depth source (depth image or PointCloud2)."""

    rgb: Any
    source: Any


class MessageFactory(Protocol):
    """What the handler needs from a `core.msg_build.MessageBuilder`."""

    def image(self, header: Any, fields: Any) -> Any: ...

    def camera_info(self, header: Any, fields: Any) -> Any: ...

    def point_cloud(self, header: Any, fields: Any) -> Any: ...


@dataclass(frozen=True)
class OutputMessages:
    """The messages to publish for one pair, all with the RGB header, and what they cost (ms)."""

    image: Any
    camera_info: Any
    points: Any | None
    stamp_s: float
    processing_ms: float  # FrameProcessor: decode, super-resolution, encode, cloud fields
    build_ms: float  # field sets -> message objects
    confidence: Any | None = None  # 32FC1 Image of the confidence in [0, 1], when wanted


@dataclass(frozen=True)
class PairResult:
    """Either `messages` to publish, or `skip`: why the pair was unusable (its reason is counted)."""

    messages: OutputMessages | None = None
    skip: FrameError | None = None
    exception: Exception | None = None  # set for INTERNAL_ERROR skips, so the node can log the traceback


Extrinsic = Callable[[Any, Any], Any]
"""(rgb message, depth-source message) -> core.projection.Extrinsic, or raises FrameError."""


class FrameHandler:
    """Turns one synchronised pair into output messages; bad pairs are counted, never raised.

    `input_mode` picks the FrameProcessor path: "depth" (registered depth; its CameraInfo is
    optional and, when present, checked), "unaligned_depth" (depth CameraInfo required, pose
    from `extrinsic`) or "lidar" (a PointCloud2, pose from `extrinsic`). `registration` (depth
    only; `registration_io.RegistrationIO`): `residual(rgb_msg, depth_msg)` gives the residual
    extrinsic to apply, `observe(rgb, depth, intrinsics)` takes the decoded frame.
    """

    def __init__(
        self,
        builder: MessageFactory,
        health: HealthMonitor,
        input_mode: str,
        rgb_infos: InfoCache,
        depth_infos: InfoCache | None = None,
        registration: Any | None = None,
    ) -> None:
        self.builder = builder
        self.health = health
        self.input_mode = input_mode
        self.rgb_infos = rgb_infos
        self.depth_infos = depth_infos
        self.registration = registration

    def handle(self, processor: Any, pair: FrameInputs, want_points: bool, extrinsic: Extrinsic,
               want_confidence: bool = False) -> PairResult:
        """`want_points`: make the cloud; `want_confidence`: the confidence image (32FC1 in [0, 1],
        written as it is: 0 where the depth is invalid)."""
        start = time.perf_counter()
        try:
            out = self._process(_require(processor), pair, want_points, extrinsic, want_confidence)
            processed = time.perf_counter()
            header = pair.rgb.header
            confidence = out.confidence if want_confidence else None
            confidence_msg = None if confidence is None else self.builder.image(header, float_image_fields(confidence))
            messages = OutputMessages(
                image=self.builder.image(header, out.image),
                camera_info=self.builder.camera_info(header, out.camera_info),
                points=None if out.points is None else self.builder.point_cloud(header, out.points),
                stamp_s=stamp_seconds(header),
                processing_ms=(processed - start) * 1000.0,
                build_ms=(time.perf_counter() - processed) * 1000.0,
                confidence=confidence_msg,
            )
        except FrameError as error:
            self.health.count_skip(error.reason)
            return PairResult(skip=error)
        except Exception as error:  # noqa: BLE001 - a bug or a device failure must not stop the stream
            self.health.count_skip(INTERNAL_ERROR)
            return PairResult(
                skip=FrameError(INTERNAL_ERROR, f"{type(error).__name__}: {error}"), exception=error
            )
        return PairResult(messages=messages)

    def _process(self, processor: Any, pair: FrameInputs, want_points: bool, extrinsic: Extrinsic,
                 want_confidence: bool) -> Any:
        rgb, source = pair.rgb, pair.source
        rgb_info = self.rgb_infos.require(rgb.header)
        if self.input_mode == "depth":
            depth_info = None if self.depth_infos is None else self.depth_infos.find(source.header)
            registration = {} if self.registration is None else {
                "residual": self.registration.residual(rgb, source), "observe": self.registration.observe}
            return processor.process(rgb, rgb_info, source, depth_info, want_points, want_confidence=want_confidence,
                                     **registration)
        transform = extrinsic(rgb, source)
        if self.input_mode == "unaligned_depth":
            if self.depth_infos is None:
                raise ValueError("unaligned_depth needs the depth CameraInfo cache")
            depth_info = self.depth_infos.require(source.header)
            return processor.process_unaligned(rgb, rgb_info, source, depth_info, transform, want_points,
                                               want_confidence=want_confidence)
        return processor.process_lidar(rgb, rgb_info, source, transform, want_points, want_confidence=want_confidence)


def _require(processor: Any) -> Any:
    if processor is None:
        raise FrameError("not_configured", "no pipeline is loaded (the node is not configured)")
    return processor


def extrinsic_from_transform(transform: Any) -> Any:
    """`core.projection.Extrinsic` from a geometry_msgs/TransformStamped (fields only)."""
    from depth_sr_ros.core.projection import Extrinsic

    t, q = transform.transform.translation, transform.transform.rotation
    try:
        return Extrinsic.from_translation_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
    except ValueError as error:  # a zero or non-finite quaternion
        raise FrameError("bad_transform", f"unusable transform {transform.child_frame_id}: {error}") from None
