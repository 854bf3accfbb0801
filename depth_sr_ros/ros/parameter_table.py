"""The node's parameter table, without ROS: one row per parameter, and how a row checks a value.

`PARAMETERS` is the one table of node parameters (name, type, default, description, allowed
values or range, and when a change takes effect: `APPLY_REBUILD`, `APPLY_LIVE`,
`APPLY_ON_ACTIVATE`, see `parameters.py`). The node's `ParameterDescriptor`s, the launch file's
argument choices, `config/sr.yaml` and the `depth-sr replay` flags are all made from it.
`parameters.py` holds the values (`NodeParams`) and the rules between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from depth_sr_ros.core.limits import DEFAULT_MAX_PIXELS
from depth_sr_ros.optional import has_torch
from depth_sr_ros.ros.topics import DEPTH_TRANSPORTS, INPUT_MODES, RGB_TRANSPORTS

APPLY_REBUILD = "rebuild"
APPLY_LIVE = "live"
APPLY_ON_ACTIVATE = "on_activate"

SCALES = (2, 4, 8, 16)
CLASSIC_BACKBONES = ("bicubic", "guided_filter", "joint_bilateral", "normalized_conv")
NETWORK_BACKBONES = ("lite", "lite_unet", "nafnet_adain", "gta_dinov2")
BACKBONE_CHOICES = ("auto", *CLASSIC_BACKBONES, *NETWORK_BACKBONES)
INFERENCE_BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16")
OUTPUT_ENCODINGS = ("32FC1", "16UC1")
REGISTRATION_MODES = ("none", "tf", "auto")  # the depth sensor's residual registration (ros/online_registration.py)
MAX_IMAGE_SIDE = 16384  # pixels, for input_width / input_height
MAX_PIXELS_LIMIT = 1 << 30  # the most max_image_pixels may be: OpenCV's own decoder limit
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
WEIGHTS_SUFFIX = ".safetensors"


def _weights_file(value: str, name: str = "weights", others: str = "empty for the shipped weights") -> str | None:
    """None when `value` is empty (the shipped weights) or an existing .safetensors file."""
    if not value:
        return None
    if not value.endswith(WEIGHTS_SUFFIX):
        return f"{name}={value!r} must be a {WEIGHTS_SUFFIX} file (or {others})"
    if not Path(value).expanduser().is_file():
        return f"{name}={value!r}: no such file"
    return None


def _second_pass_weights(value: str) -> str | None:
    """None when `value` is "auto", "same" or an existing .safetensors file."""
    if value in ("auto", "same"):
        return None
    return _weights_file(value or "?", "registration_second_pass_weights", "auto or same")


def cuda_device_count() -> int:
    """CUDA devices the inference backends can use here: torch's count (0 without torch, where
    every backend runs on the CPU)."""
    if not has_torch():
        return 0
    import torch

    return int(torch.cuda.device_count())


def _device_present(value: str) -> str | None:
    """None for auto, cpu, or a CUDA device this machine has; else why it cannot take effect."""
    if not value.startswith("cuda"):
        return None
    index = int(value.split(":")[1]) if ":" in value else 0
    count = cuda_device_count()
    if index < count:
        return None
    have = f"{count} CUDA device{'s' if count != 1 else ''}" + (f" (cuda:0 to cuda:{count - 1})" if count else "")
    return f"device={value!r}: this machine has {have}; use cpu, auto or one of them"


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter. `choices` or `value_range` (inclusive) constrain the value."""

    name: str
    type: type
    default: Any
    description: str
    apply: str
    choices: tuple[Any, ...] | None = None
    value_range: tuple[float, float] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    validator: Callable[[Any], str | None] | None = None  # a check beyond type/choices/range/pattern

    def constraints_text(self) -> str:
        """The human-readable constraint, for `ParameterDescriptor.additional_constraints`."""
        if self.choices is not None:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        if self.value_range is not None:
            return f"from {self.value_range[0]} to {self.value_range[1]} (inclusive)"
        return self.pattern_text

    def check(self, value: Any) -> str | None:
        """None when `value` is allowed, else the reason it is not."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not self.type:
            return f"{self.name} must be {self.type.__name__}; got {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{self.name}={value!r} is not allowed; {self.constraints_text()}"
        if self.value_range is not None:
            lo, hi = self.value_range
            number = float(cast(float, value))
            if not math.isfinite(number):
                return f"{self.name}={value!r} must be finite"
            if not lo <= number <= hi:
                return f"{self.name}={value!r} is out of range; {self.constraints_text()}"
        if self.pattern is not None and not self.pattern.match(str(value)):
            return f"{self.name}={value!r} is not allowed; {self.pattern_text}"
        if self.validator is not None:
            return self.validator(value)
        return None


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "scale",
        int,
        4,
        "Upsampling factor: depth is super-resolved to the RGB resolution from a "
        "model input grid of RGB size / scale (input depth of another size is resampled to it).",
        APPLY_REBUILD,
        choices=SCALES,
    ),
    ParamSpec(
        "backbone",
        str,
        "auto",
        "Super-resolution backbone by registry name; 'auto' = the best shipped backbone for the scale.",
        APPLY_REBUILD,
        choices=BACKBONE_CHOICES,
    ),
    ParamSpec(
        "weights",
        str,
        "",
        "Weights file (.safetensors) for a network backbone; empty = the "
        "shipped weights for backbone and scale.",
        APPLY_REBUILD,
        pattern_text="empty, or an existing .safetensors file",
        validator=_weights_file,
    ),
    ParamSpec(
        "inference_backend",
        str,
        "auto",
        "Inference backend for network backbones; 'auto' = TensorRT, else ONNX Runtime, else PyTorch.",
        APPLY_REBUILD,
        choices=INFERENCE_BACKENDS,
    ),
    ParamSpec(
        "precision",
        str,
        "fp32",
        "Network precision (fp16 only where the backend supports it).",
        APPLY_REBUILD,
        choices=PRECISIONS,
    ),
    ParamSpec(
        "device",
        str,
        "auto",
        "Compute device: auto (CUDA if available, else CPU), cpu, cuda or cuda:N.",
        APPLY_REBUILD,
        pattern=_DEVICE,
        pattern_text="auto, cpu, cuda or cuda:N (a CUDA device this machine has)",
        validator=_device_present,
    ),
    ParamSpec(
        "engine_cache_dir",
        str,
        "",
        "Directory for cached TensorRT engines; empty = the backend's default cache directory.",
        APPLY_REBUILD,
    ),
    ParamSpec(
        "min_depth",
        float,
        0.1,
        "Nearest valid depth in metres; input depth below it is treated as invalid.",
        APPLY_REBUILD,
        value_range=(0.0, 1000.0),
    ),
    ParamSpec(
        "max_depth",
        float,
        20.0,
        "Farthest valid depth in metres; input depth beyond it is treated as invalid.",
        APPLY_REBUILD,
        value_range=(0.01, 1000.0),
    ),
    ParamSpec(
        "input_width",
        int,
        0,
        "RGB image width in pixels that configure builds and warms up the network for; 0 = at the "
        "first RGB frame (which then waits for the build).",
        APPLY_REBUILD,
        value_range=(0, MAX_IMAGE_SIDE),
    ),
    ParamSpec(
        "input_height",
        int,
        0,
        "RGB image height in pixels that configure builds and warms up the network for; 0 = at the "
        "first RGB frame.",
        APPLY_REBUILD,
        value_range=(0, MAX_IMAGE_SIDE),
    ),
    ParamSpec(
        "max_image_pixels",
        int,
        DEFAULT_MAX_PIXELS,
        "Largest image (width x height, pixels) an input Image, CompressedImage header or CameraInfo may "
        "claim; larger ones are skipped as 'oversize' before anything is allocated for them. The default "
        "(25 MP) serves 4K and 24 MP machine-vision cameras.",
        APPLY_LIVE,
        value_range=(1, MAX_PIXELS_LIMIT),
    ),
    ParamSpec(
        "output_encoding",
        str,
        "32FC1",
        "Encoding of depth_sr/image: 32FC1 metres (NaN = "
        "invalid) or 16UC1 millimetres (0 = invalid), REP 118.",
        APPLY_LIVE,
        choices=OUTPUT_ENCODINGS,
    ),
    ParamSpec(
        "publish_points",
        bool,
        True,
        "Publish depth_sr/points (built only while it has subscribers).",
        APPLY_LIVE,
    ),
    ParamSpec("point_cloud_rgb", bool, True, "Colour the point cloud (XYZRGB) instead of XYZ.", APPLY_LIVE),
    ParamSpec(
        "point_stride",
        int,
        1,
        "Keep every Nth pixel in each direction in the point cloud.",
        APPLY_LIVE,
        value_range=(1, 16),
    ),
    ParamSpec(
        "publish_confidence",
        bool,
        True,
        "Publish depth_sr/confidence: the per-pixel confidence in [0, 1] of depth_sr/image (32FC1, same "
        "header and size, 0 where the depth is invalid; docs/confidence.md), computed only while it has "
        "subscribers.",
        APPLY_LIVE,
    ),
    ParamSpec(
        "point_cloud_confidence",
        bool,
        False,
        "Add a float32 'confidence' field (the point's pixel's confidence) to depth_sr/points.",
        APPLY_LIVE,
    ),
    ParamSpec(
        "min_confidence",
        float,
        0.0,
        "Output pixels whose confidence is below it are invalid in depth_sr/image (NaN in 32FC1, 0 in "
        "16UC1, REP 118) and NaN in depth_sr/points; 0 keeps every pixel. 0.5 keeps predicted errors under "
        "3.5 cm (docs/confidence.md).",
        APPLY_LIVE,
        value_range=(0.0, 1.0),
    ),
    ParamSpec(
        "queue_size",
        int,
        10,
        "Synchroniser queue size per input (message_filters).",
        APPLY_ON_ACTIVATE,
        value_range=(1, 1000),
    ),
    ParamSpec(
        "slop",
        float,
        0.02,
        "Largest stamp difference in seconds for an approximate-time pair.",
        APPLY_ON_ACTIVATE,
        value_range=(0.0, 10.0),
    ),
    ParamSpec(
        "exact_sync",
        bool,
        False,
        "Pair only identical stamps (TimeSynchronizer) instead of ApproximateTimeSynchronizer.",
        APPLY_ON_ACTIVATE,
    ),
    ParamSpec(
        "input_mode",
        str,
        "depth",
        "'depth': depth/image + depth/camera_info registered to the RGB camera; 'unaligned_depth': "
        "the same topics from a depth camera with its own frame, registered with TF; 'lidar': "
        "lidar/points (PointCloud2) projected into the RGB camera with TF.",
        APPLY_ON_ACTIVATE,
        choices=INPUT_MODES,
    ),
    ParamSpec(
        "assume_registered",
        bool,
        False,
        "input_mode 'depth' only: accept depth whose header frame_id differs from the RGB image's as "
        "already registered to the RGB camera (some drivers register depth but keep the depth "
        "camera's frame name). False refuses such frames as 'unregistered_depth'; depth from "
        "another camera needs input_mode 'unaligned_depth'.",
        APPLY_LIVE,
    ),
    ParamSpec(
        "rgb_transport",
        str,
        "raw",
        "image_transport of the colour input: 'raw' (sensor_msgs/Image on rgb/image) or 'compressed' "
        "(sensor_msgs/CompressedImage, jpeg or png, on <rgb/image resolved>/compressed).",
        APPLY_ON_ACTIVATE,
        choices=RGB_TRANSPORTS,
    ),
    ParamSpec(
        "depth_transport",
        str,
        "raw",
        "image_transport of the depth input: 'raw' (sensor_msgs/Image on depth/image) or "
        "'compressedDepth' (sensor_msgs/CompressedImage on <depth/image resolved>/compressedDepth).",
        APPLY_ON_ACTIVATE,
        choices=DEPTH_TRANSPORTS,
    ),
    ParamSpec(
        "tf_timeout",
        float,
        0.05,
        "Seconds to wait for the depth-source-to-camera transform at the depth's stamp "
        "(unaligned_depth and lidar modes).",
        APPLY_LIVE,
        value_range=(0.0, 10.0),
    ),
    ParamSpec(
        "health_period",
        float,
        5.0,
        "Seconds between health summaries in the log.",
        APPLY_ON_ACTIVATE,
        value_range=(0.5, 3600.0),
    ),
    ParamSpec(
        "registration",
        str,
        "auto",
        "input_mode 'depth' only: the depth sensor's residual registration to the colour camera. 'none': "
        "depth as labelled; 'tf': the transform <colour frame> <- <colour frame>_depth_sensor (or the depth "
        "image's frame) from TF; 'auto': that transform (or none) until the online estimate from colour and "
        "depth is confident, then the estimate when it is significant, published on depth_sr/registration "
        "(docs/registration.md).",
        APPLY_ON_ACTIVATE,
        choices=REGISTRATION_MODES,
    ),
    ParamSpec(
        "registration_frozen",
        bool,
        False,
        "registration 'auto': stop estimating and keep applying the current estimate.",
        APPLY_LIVE,
    ),
    ParamSpec(
        "registration_budget",
        float,
        0.05,
        "registration 'auto': the estimator's CPU time as a fraction of wall time (it waits after each "
        "frame it adds and each estimate so as to stay within it).",
        APPLY_LIVE,
        value_range=(0.001, 1.0),
    ),
    ParamSpec(
        "registration_second_pass",
        bool,
        True,
        "registration 'tf' or 'auto' with a network backbone, while a pose is applied: super-resolve once "
        "more in the colour camera, on the output reprojected from the depth sensor's view (x2-x8; 6-11 % "
        "lower error at x4 with a sensor 2-5 cm away, docs/registration.md). false: one network run per "
        "frame instead of two.",
        APPLY_LIVE,
    ),
    ParamSpec(
        "registration_second_pass_weights",
        str,
        "auto",
        "The network of that second pass: 'auto' = the shipped weights made for the network's second pass "
        "when there are (lite x2-x8: 2-4 % lower error there, docs/registration.md), else the network itself; "
        "'same' = the network itself; or a .safetensors file.",
        APPLY_REBUILD,
        pattern_text="auto, same, or an existing .safetensors file",
        validator=_second_pass_weights,
    ),
)

PARAMETER_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}

# parameters that are also launch arguments (their values arrive as strings)
LAUNCH_PARAMETERS = (
    "scale",
    "backbone",
    "weights",
    "inference_backend",
    "precision",
    "device",
    "output_encoding",
    "publish_points",
    "point_cloud_rgb",
    "publish_confidence",
    "point_cloud_confidence",
    "min_confidence",
    "input_mode",
    "rgb_transport",
    "depth_transport",
    "registration",
)
