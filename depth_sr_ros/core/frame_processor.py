"""One synchronised message quadruple -> output field sets; the object the node and replay both drive.

    proc = FrameProcessor(DepthSR(SRConfig(...)), OutputConfig())
    out = proc.process(rgb_msg, rgb_info_msg, depth_msg, depth_info_msg, want_points=True)

Messages are read by field name only (rclpy and `rosbags` messages alike). The outputs live in
the RGB camera's optical frame at the RGB resolution: the SR depth image (32FC1 metres or 16UC1
millimetres, REP 118), the RGB CameraInfo re-expressed for the published image (roi and binning
folded in), and optionally an organised PointCloud2. The caller gives them the RGB header.

Checks, each a `FrameError` the caller counts by reason:
- "missing_camera_info": no RGB CameraInfo (the depth CameraInfo may be None: registered depth);
- "oversize", "size_changed" (`core/limits.py`): a size an image or CameraInfo claims (fields,
  or a compressed image's header) is beyond the pixel limit, or differs from its stream's size
  since the first good frame; checked before anything is decoded, with `InputBounds`, which the
  processor shares with its caller (the node checks CameraInfo on arrival with it);
- "size_mismatch": a CameraInfo describes another resolution than its image (also before decoding);
- "unregistered_depth": the depth CameraInfo is not the RGB camera at a lower resolution (focal
  lengths or principal point disagree beyond `REGISTRATION_TOLERANCE`), or (`process` only) the
  depth image's header frame_id names another frame than the RGB image's, unless
  `OutputConfig.assume_registered`. The pipeline takes depth registered to the RGB camera, so
  either would give a silently wrong answer; depth from another camera goes to
  `process_unaligned` (the node's input_mode 'unaligned_depth');
- plus the decoders' and the pipeline's own ("unsupported_encoding", "truncated_data",
  "bad_camera_info", "aspect_mismatch", "all_invalid_depth", ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from depth_sr_ros.core.camera_info import (
    CameraInfoFields,
    Intrinsics,
    intrinsics_from_camera_info,
    registration_mismatch,
    scaled_camera_info_fields,
)
from depth_sr_ros.core.cloud_read import points_from_cloud
from depth_sr_ros.core.confidence import ConfidenceEstimator
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.image_msg import (
    ImageFields,
    depth_from_image,
    depth_to_image_fields,
    image_size,
    rgb_from_image,
)
from depth_sr_ros.core.limits import InputBounds, Size, check_pixels
from depth_sr_ros.core.pipeline import DepthSR, SRResult
from depth_sr_ros.core.pointcloud import PointCloudFields, point_cloud_fields
from depth_sr_ros.core.projection import Extrinsic, ProjectionResult, project_points, register_depth
from depth_sr_ros.core.reprojection import register_residual
from depth_sr_ros.core.resample import bicubic_downsample, grid_shape
from depth_sr_ros.core.sensor_view import SensorView, runs_second_pass

OUTPUT_ENCODINGS = ("32FC1", "16UC1")
# Relative tolerance on focal lengths, and on the principal point as a fraction of the image size,
# when the depth camera (scaled to the RGB size) is compared with the RGB camera. Drivers scale
# cx/cy with either the pixel-corner or the pixel-centre convention; at x8 these differ by 3.5 px
# on a 640-wide image (0.5%), well inside 2%.
REGISTRATION_TOLERANCE = 0.02
# (rgb H x W x 3 uint8, depth h x w metres as labelled, colour intrinsics) of a decoded frame
Observer = Callable[[np.ndarray, np.ndarray, Intrinsics], None]


@dataclass
class OutputConfig:
    """What the processor publishes.

    output_encoding: "32FC1" (metres, NaN invalid; default) or "16UC1" (millimetres, 0 invalid).
    point_cloud_rgb: XYZRGB points (packed float rgb) instead of XYZ.
    point_stride: keep every n-th row and column in the cloud (1 = every pixel).
    assume_registered: publish depth whose frame_id differs from the RGB's as registered to the
        RGB camera (the node's `assume_registered`); False refuses it as "unregistered_depth".
    confidence: compute the per-pixel confidence (`core/confidence.py`) into `FrameOutput.confidence`
        for every frame (a call's `want_confidence=True` asks for it for that frame only).
    min_confidence: output pixels whose confidence is below it become invalid (NaN metres, 0 in
        16UC1, NaN points) before encoding; 0 keeps every pixel. Above 0 the confidence is computed.
    point_cloud_confidence: the cloud gets a float32 "confidence" field (`core/pointcloud.py`);
        the confidence is computed for the frames whose cloud is made.
    second_pass: where a residual pose applies and a network runs in the depth sensor's view, run
        it once more in the colour camera, up to `SECOND_PASS_MAX_SCALE` (`core/sensor_view.py`);
        False publishes the reprojected first pass (one network run per frame instead of two).
    """

    output_encoding: str = "32FC1"
    point_cloud_rgb: bool = False
    point_stride: int = 1
    assume_registered: bool = False
    confidence: bool = False
    min_confidence: float = 0.0
    point_cloud_confidence: bool = False
    second_pass: bool = True

    def __post_init__(self) -> None:
        if self.output_encoding not in OUTPUT_ENCODINGS:
            raise ValueError(f"output_encoding must be one of {OUTPUT_ENCODINGS}, got {self.output_encoding!r}")
        if self.point_stride < 1:
            raise ValueError(f"point_stride must be >= 1, got {self.point_stride}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")


@dataclass
class FrameOutput:
    """Field sets to publish (header: the RGB message's), the SR depth and per-stage times.

    depth: H x W float32 metres, NaN invalid, RGB optical frame. timings_ms: "decode",
    "register" (when a residual extrinsic was applied), "preprocess", "network", "postprocess"
    (the pipeline's), "confidence" (when computed),
    "encode", "pointcloud" (when points were made) and "total", in milliseconds.
    confidence: H x W float32 in [0, 1] beside `depth` (0 where it is invalid) when
    `OutputConfig.confidence`, `min_confidence`, `point_cloud_confidence` (with a cloud) or the
    call's `want_confidence` asks for it, else None.
    """

    image: ImageFields
    camera_info: CameraInfoFields
    points: PointCloudFields | None
    depth: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)
    input_counts: dict[str, int] = field(default_factory=dict)  # projected inputs: points kept/dropped by reason
    confidence: np.ndarray | None = None


class FrameProcessor:
    """Decode, check, super-resolve and encode one frame; raises FrameError on a bad frame.

    `process` takes a depth image registered to the RGB camera; `process_lidar` a PointCloud2;
    `process_unaligned` a depth image from another camera (its own CameraInfo and frame).
    `bounds`: the pixel limit and the streams' established sizes (a default `InputBounds` when
    None); a processed frame establishes the size of its RGB and depth image streams.
    `want_points` makes the cloud for this frame; `want_confidence` the confidence (the node asks
    for it while depth_sr/confidence has subscribers).
    """

    def __init__(self, pipeline: DepthSR, output: OutputConfig | None = None,
                 bounds: InputBounds | None = None) -> None:
        self.pipeline = pipeline
        self.output = output if output is not None else OutputConfig()
        self.bounds = bounds if bounds is not None else InputBounds()
        self._confidence_estimator = ConfidenceEstimator()  # keeps its working arrays between frames

    def process(self, rgb_msg: Any, rgb_info_msg: Any, depth_msg: Any, depth_info_msg: Any | None,
                want_points: bool, residual: Extrinsic | None = None, want_confidence: bool = False,
                observe: Observer | None = None) -> FrameOutput:
        """Registered depth -> outputs. `residual`: the depth sensor's pose left over by the
        registration the depth claims (depth -> colour optical frame, metres; the self-registration
        estimate, `core/registration_window.py`): a network then runs in the sensor's view and its
        output is reprojected into the colour camera (`core/sensor_view.py`); a classic upsampler
        takes the depth registered with it (`reprojection.register_residual`), which measured as
        well with the true pose and better with an estimate (docs/registration.md); either timed
        as "register". None takes the depth as registered. `observe(rgb, depth, intrinsics)` is
        given the decoded frame before the residual (the node's online self-registration keeps
        these arrays by reference: nothing on the frame path writes into them)."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        rgb, depth, intrinsics = self._decode(rgb_msg, rgb_info_msg, depth_msg, depth_info_msg)
        timings["decode"] = _ms_since(start)
        if observe is not None:
            observe(rgb, depth, intrinsics)
        view = None
        if residual is not None and self.pipeline.is_network:
            view = SensorView(intrinsics, residual)
        elif residual is not None:
            mark = time.perf_counter()
            depth = register_residual(depth, intrinsics, residual)
            timings["register"] = _ms_since(mark)
        output = self._super_resolve(rgb, depth, intrinsics, rgb_info_msg, (want_points, want_confidence), start,
                                     timings, view)
        self._establish(rgb, depth)
        return output

    def process_lidar(self, rgb_msg: Any, rgb_info_msg: Any, cloud_msg: Any, extrinsic: Extrinsic,
                      want_points: bool, want_confidence: bool = False) -> FrameOutput:
        """A LiDAR PointCloud2 in place of the depth image; same outputs as `process`.

        `extrinsic` maps the cloud's frame (`cloud_msg.header.frame_id`) into the RGB optical
        frame at the cloud's stamp (tf2 `lookup_transform(rgb_frame, cloud_frame, stamp)`). The
        points are projected with the RGB intrinsics (plumb_bob distortion applied) onto the
        pipeline's grid (RGB size / scale), nearest point per pixel: sparse depth whose valid
        pixels are the pipeline's mask. `FrameOutput.input_counts` says how many points were
        kept or dropped ("nan", "behind", "outside", "occluded"). Raises FrameError
        ("no_points_in_view") when no point lands in the image.
        """
        def project(camera: Intrinsics, grid: tuple[int, int]) -> ProjectionResult:
            return project_points(extrinsic.apply(points_from_cloud(cloud_msg)), camera, grid)

        return self._process_projected(rgb_msg, rgb_info_msg, project, (want_points, want_confidence))

    def process_unaligned(self, rgb_msg: Any, rgb_info_msg: Any, depth_msg: Any, depth_info_msg: Any,
                          extrinsic: Extrinsic, want_points: bool, want_confidence: bool = False) -> FrameOutput:
        """A depth image from a camera that is not registered to the RGB camera; same outputs.

        The depth is back-projected with its own CameraInfo (distortion undone), moved by
        `extrinsic` (depth optical frame -> RGB optical frame, tf2 `lookup_transform(rgb_frame,
        depth_frame, stamp)`) and projected like `process_lidar`'s points, which does what
        depth_image_proc's register node does. "nan" in `input_counts` counts invalid pixels.
        """
        def project(camera: Intrinsics, grid: tuple[int, int]) -> ProjectionResult:
            if depth_info_msg is None:
                raise FrameError("missing_camera_info", "an unaligned depth image needs its own CameraInfo")
            depth_intrinsics = intrinsics_from_camera_info(depth_info_msg)
            self._check_claims("depth", depth_msg, depth_intrinsics)
            depth = depth_from_image(depth_msg, self.bounds.max_pixels)
            decoded.append(depth)
            return register_depth(depth, depth_intrinsics, extrinsic, camera, grid)

        decoded: list[np.ndarray] = []
        output = self._process_projected(rgb_msg, rgb_info_msg, project, (want_points, want_confidence))
        self.bounds.establish("depth", _size_of(decoded[0]))
        return output

    def _process_projected(self, rgb_msg: Any, rgb_info_msg: Any,
                           project: Callable[[Intrinsics, tuple[int, int]], ProjectionResult],
                           wants: tuple[bool, bool]) -> FrameOutput:
        """Decode the RGB pair, `project(intrinsics, grid)` the depth input onto the pipeline's
        grid (timed as "project", decoding of the input included), super-resolve."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        if rgb_info_msg is None:
            raise FrameError("missing_camera_info", "no RGB CameraInfo for this frame; the output needs its intrinsics")
        intrinsics = intrinsics_from_camera_info(rgb_info_msg)
        self._check_claims("rgb", rgb_msg, intrinsics)
        rgb = np.ascontiguousarray(rgb_from_image(rgb_msg, self.bounds.max_pixels))
        timings["decode"] = _ms_since(start)
        mark = time.perf_counter()
        grid = grid_shape(rgb.shape, self.pipeline.scale)
        # The grid covers the RGB image padded to a multiple of the scale (bottom/right), which
        # leaves fx, cx unchanged: project with the padded size so the pitch is exactly `scale`.
        padded = replace(intrinsics, width=grid[1] * self.pipeline.scale, height=grid[0] * self.pipeline.scale)
        projected = project(padded, grid)
        timings["project"] = _ms_since(mark)
        if projected.counts["kept"] == 0:
            raise FrameError("no_points_in_view", f"no input point lands in the image ({projected.counts}); "
                             "check the extrinsic and the input's frame")
        output = self._super_resolve(rgb, projected.depth, intrinsics, rgb_info_msg, wants, start, timings)
        output.input_counts = projected.counts
        self.bounds.establish("rgb", _size_of(rgb))
        return output

    def _super_resolve(self, rgb: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics, rgb_info_msg: Any,
                       wants: tuple[bool, bool], start: float, timings: dict[str, float],
                       view: SensorView | None = None) -> FrameOutput:
        """`wants`: (want_points, want_confidence) of the call; `view`: the depth sensor's view to
        super-resolve in (None: the colour camera's, the depth is registered)."""
        want_points, want_confidence = wants
        mark = time.perf_counter()
        guide = rgb if view is None else view.colour(rgb, depth)
        register_ms = _ms_since(mark)
        result = self.pipeline.process(guide, depth)
        timings.update(result.timings_ms)
        cloud_confidence = want_points and self.output.point_cloud_confidence
        wanted = want_confidence or cloud_confidence
        depth_hr = result.depth
        if view is None:
            confidence = self._confidence(result, timings, wanted)
        else:
            depth_hr, confidence = self._to_colour(rgb, view, result, timings, wanted)
            timings["register"] += register_ms
        if confidence is not None and self.output.min_confidence > 0:
            depth_hr[confidence < self.output.min_confidence] = np.nan

        mark = time.perf_counter()
        height, width = depth_hr.shape
        image = depth_to_image_fields(depth_hr, self.output.output_encoding)
        camera_info = scaled_camera_info_fields(rgb_info_msg, width, height)
        timings["encode"] = _ms_since(mark)

        points = None
        if want_points:
            mark = time.perf_counter()
            colour = rgb if self.output.point_cloud_rgb else None
            points = point_cloud_fields(depth_hr, intrinsics, colour, self.output.point_stride,
                                        confidence if cloud_confidence else None)
            timings["pointcloud"] = _ms_since(mark)
        timings["total"] = _ms_since(start)
        return FrameOutput(image, camera_info, points, depth_hr, timings, confidence=confidence)

    def _to_colour(self, rgb: np.ndarray, view: SensorView, result: SRResult, timings: dict[str, float],
                   wanted: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The sensor's-view `result` reprojected into the colour camera (timed as "register") and,
        up to `SECOND_PASS_MAX_SCALE` and unless `OutputConfig.second_pass` is off, super-resolved
        once more there by the second pass's network (`DepthSR.process(..., second_pass=True)`,
        `core/sensor_view.py`; its stages timed into the first pass's): (depth
        H x W metres, its confidence or None). The confidence is 0 where the sensor saw nothing."""
        mark = time.perf_counter()
        scale = self.pipeline.scale
        seen = view.to_colour(result.depth, self.pipeline.config.max_hole_radius * scale)
        if seen.unseen.all():
            raise FrameError("no_points_in_view", "the registration residual moves every depth pixel out of the "
                             "colour camera's view; check the depth sensor's pose (TF or the estimate)")
        timings["register"] = _ms_since(mark)
        if not runs_second_pass(scale, self.output.second_pass):
            confidence = self._confidence(result, timings, wanted)
            return seen.depth, None if confidence is None else seen.carry(confidence)
        mark = time.perf_counter()
        again = bicubic_downsample(seen.depth, scale)
        timings["register"] += _ms_since(mark)
        second = self.pipeline.process(rgb, again, second_pass=True)
        for stage, ms in second.timings_ms.items():
            timings[stage] += ms
        depth_hr = second.depth
        depth_hr[np.isnan(seen.depth)] = np.nan  # beyond the hole policy's reach in the first pass
        confidence = self._confidence(second, timings, wanted)
        if confidence is not None:
            confidence[seen.unseen] = 0.0
        return depth_hr, confidence

    def _confidence(self, result: SRResult, timings: dict[str, float], wanted: bool) -> np.ndarray | None:
        """The output's confidence when asked for (`wanted` by the call, or by the OutputConfig;
        None otherwise), from the pipeline's filled input grid and mask. `_super_resolve` sets the
        pixels below `min_confidence` invalid before anything is encoded."""
        if not (wanted or self.output.confidence or self.output.min_confidence > 0):
            return None
        mark = time.perf_counter()
        confidence = self._confidence_estimator.confidence(result.depth, result.filled_lr, result.valid_lr,
                                                           self.pipeline.scale)
        timings["confidence"] = _ms_since(mark)
        return confidence

    def _decode(self, rgb_msg: Any, rgb_info_msg: Any, depth_msg: Any,
                depth_info_msg: Any | None) -> tuple[np.ndarray, np.ndarray, Intrinsics]:
        if rgb_info_msg is None:
            raise FrameError("missing_camera_info", "no RGB CameraInfo for this frame; the output needs its intrinsics")
        if not self.output.assume_registered:
            _check_same_frame(rgb_msg, depth_msg)
        intrinsics = intrinsics_from_camera_info(rgb_info_msg)
        self._check_claims("rgb", rgb_msg, intrinsics)
        depth_intrinsics = None if depth_info_msg is None else intrinsics_from_camera_info(depth_info_msg)
        self._check_claims("depth", depth_msg, depth_intrinsics)
        rgb = np.ascontiguousarray(rgb_from_image(rgb_msg, self.bounds.max_pixels))
        depth = depth_from_image(depth_msg, self.bounds.max_pixels)
        if depth_intrinsics is not None:
            _check_registered(depth_intrinsics, intrinsics)
        return rgb, depth, intrinsics

    def _check_claims(self, stream: str, image_msg: Any, intrinsics: Intrinsics | None) -> None:
        """Before decoding: the sizes the CameraInfo and the image claim within the pixel limit
        ("oversize"), equal to each other ("size_mismatch") and to the stream's ("size_changed")."""
        name = stream.upper() if stream == "rgb" else stream
        if intrinsics is not None:
            check_pixels(intrinsics.width, intrinsics.height, f"{name} CameraInfo", self.bounds.max_pixels)
        width, height = check_pixels(*image_size(image_msg), f"{name} image", self.bounds.max_pixels)
        if intrinsics is not None and (intrinsics.width, intrinsics.height) != (width, height):
            raise FrameError(
                "size_mismatch",
                f"{name} CameraInfo describes {intrinsics.width}x{intrinsics.height} but the {name} image is "
                f"{width}x{height}",
            )
        self.bounds.check(stream, width, height, f"{name} image")

    def _establish(self, rgb: np.ndarray, depth: np.ndarray) -> None:
        self.bounds.establish("rgb", _size_of(rgb))
        self.bounds.establish("depth", _size_of(depth))


def _size_of(image: np.ndarray) -> Size:
    """(width, height) of an HxW or HxWxC array."""
    return int(image.shape[1]), int(image.shape[0])


def _frame_id(msg: Any) -> str:
    return str(getattr(getattr(msg, "header", None), "frame_id", "") or "").lstrip("/")


def _check_same_frame(rgb_msg: Any, depth_msg: Any) -> None:
    """FrameError("unregistered_depth") when both images name their frame and the names differ."""
    rgb_frame, depth_frame = _frame_id(rgb_msg), _frame_id(depth_msg)
    if rgb_frame and depth_frame and rgb_frame != depth_frame:
        raise FrameError(
            "unregistered_depth",
            f"depth frame_id {depth_frame!r} differs from the RGB frame_id {rgb_frame!r}: registered depth "
            "lives in the RGB optical frame. For depth from another camera use input_mode unaligned_depth "
            "(replay --unaligned-depth); if the driver did register it, set assume_registered "
            "(replay --assume-registered)",
        )


def _check_registered(depth: Intrinsics, rgb: Intrinsics) -> None:
    """FrameError("unregistered_depth") unless `depth` is the RGB camera at another resolution."""
    mismatch = registration_mismatch(depth, rgb, REGISTRATION_TOLERANCE)
    if mismatch:
        raise FrameError("unregistered_depth", f"{mismatch}. The pipeline needs depth registered to the RGB camera")


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3
