"""The node's parameter table, without ROS: one source for the node, its launch file and replay.

`PARAMETERS` is the one table of node parameters (name, type, default, description, allowed
values or range, and when a change takes effect). The node's `ParameterDescriptor`s, the
launch file's argument choices, `config/sr.yaml` and the `depth-sr replay` flags are all made
from it, so a value the node refuses is refused offline too.

Runtime changes (`plan_change`) follow one policy, by the parameter's `apply` class:
- `APPLY_REBUILD` (scale, backbone, weights, inference_backend, precision, device,
  engine_cache_dir, min_depth, max_depth, input_width, input_height): while the node is
  configured, the node builds (and warms up) a complete new pipeline with the new values first
  and swaps it in between two frames. If the build fails (missing weights, no CUDA, engine
  build error) the change is rejected with the build error as its reason and the old pipeline
  keeps running.
- `APPLY_LIVE` (output_encoding, publish_points, point_cloud_rgb, point_stride, assume_registered,
  tf_timeout):
  applied from the next frame on.
- `APPLY_ON_ACTIVATE` (queue_size, slop, exact_sync, input_mode, rgb_transport,
  depth_transport, health_period): read when the node activates, because they shape the
  subscriptions and timers. While the node is active a change is refused with a reason that
  says to deactivate, set, and activate again.

A value is checked whether or not the running backbone uses it (`device`, `inference_backend`
and `weights` under a classic backbone): a parameter is never stored invalid.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, cast

from depth_sr_ros.ros.topics import DEPTH_TRANSPORTS, INPUT_MODES, RGB_TRANSPORTS

# ---------------------------------------------------------------------------------------------
# Parameter table

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
MAX_IMAGE_SIDE = 16384  # pixels, for input_width / input_height
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
WEIGHTS_SUFFIX = ".safetensors"


def _weights_file(value: str) -> str | None:
    """None when `value` is empty (the shipped weights) or an existing .safetensors file."""
    if not value:
        return None
    if not value.endswith(WEIGHTS_SUFFIX):
        return f"weights={value!r} must be a {WEIGHTS_SUFFIX} file (or empty for the shipped weights)"
    if not Path(value).expanduser().is_file():
        return f"weights={value!r}: no such file"
    return None


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
        pattern_text="auto, cpu, cuda or cuda:N",
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
        "first RGB CameraInfo (then the first frame waits for the build).",
        APPLY_REBUILD,
        value_range=(0, MAX_IMAGE_SIDE),
    ),
    ParamSpec(
        "input_height",
        int,
        0,
        "RGB image height in pixels that configure builds and warms up the network for; 0 = at the "
        "first RGB CameraInfo.",
        APPLY_REBUILD,
        value_range=(0, MAX_IMAGE_SIDE),
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
    "input_mode",
    "rgb_transport",
    "depth_transport",
)


class ParameterRejected(ValueError):
    """A parameter value or change that the node refuses; the text is the reason."""


@dataclass(frozen=True)
class NodeParams:
    """The node's parameter values (defaults live only in `PARAMETERS`)."""

    scale: int
    backbone: str
    weights: str
    inference_backend: str
    precision: str
    device: str
    engine_cache_dir: str
    min_depth: float
    max_depth: float
    input_width: int
    input_height: int
    output_encoding: str
    publish_points: bool
    point_cloud_rgb: bool
    point_stride: int
    queue_size: int
    slop: float
    exact_sync: bool
    input_mode: str
    assume_registered: bool
    rgb_transport: str
    depth_transport: str
    tf_timeout: float
    health_period: float

    @classmethod
    def defaults(cls) -> NodeParams:
        return cls(**{spec.name: spec.default for spec in PARAMETERS})

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NodeParams:
        """Defaults overridden by `values`, all validated; raises `ParameterRejected`."""
        return validated(replace(cls.defaults(), **_checked(values)))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        spec = PARAMETER_BY_NAME.get(name)
        if spec is None:
            raise ParameterRejected(f"unknown parameter {name!r}")
        reason = spec.check(value)
        if reason:
            raise ParameterRejected(reason)
        out[name] = float(value) if spec.type is float else value
    return out


def validated(params: NodeParams) -> NodeParams:
    """Check every value and the rules between values; raises `ParameterRejected`."""
    _checked(params.as_dict())
    if params.min_depth >= params.max_depth:
        raise ParameterRejected(
            f"min_depth ({params.min_depth} m) must be smaller than max_depth ({params.max_depth} m)"
        )
    if (params.input_width == 0) != (params.input_height == 0):
        raise ParameterRejected(
            f"input_width ({params.input_width}) and input_height ({params.input_height}) are set "
            "together, or both 0 (warm up at the first RGB CameraInfo)"
        )
    return params


def parse_launch_value(name: str, text: str) -> Any:
    """A launch argument string as the parameter's type (never evaluated); raises `ParameterRejected`."""
    spec = PARAMETER_BY_NAME.get(name)
    if spec is None:
        raise ParameterRejected(f"unknown parameter {name!r}")
    text = text.strip()
    value: Any
    try:
        if spec.type is bool:
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError
            value = lowered == "true"
        elif spec.type is int:
            value = int(text, 10)
        elif spec.type is float:
            value = float(text)
        else:
            value = text
    except ValueError:
        raise ParameterRejected(f"{name}:={text!r} is not a valid {spec.type.__name__}") from None
    reason = spec.check(value)
    if reason:
        raise ParameterRejected(reason)
    return value


def launch_overrides(arguments: Mapping[str, str]) -> dict[str, Any]:
    """Typed parameter overrides from launch arguments; empty strings mean 'keep the params file value'."""
    return {name: parse_launch_value(name, text) for name, text in arguments.items() if text.strip()}


def parameters_yaml(node_name: str = "/**") -> dict[str, Any]:
    """The content of `config/sr.yaml`: every parameter's default under `ros__parameters`."""
    return {node_name: {"ros__parameters": {spec.name: spec.default for spec in PARAMETERS}}}


def render_parameters_yaml() -> str:
    """The text of `config/sr.yaml`, each default under its description and constraint.

    After changing PARAMETERS, write this text to config/sr.yaml (a test compares the two).
    """
    lines = [
        "# depth_sr_node parameters and their defaults, made from the PARAMETERS table in",
        "# depth_sr_ros/ros/parameters.py (render_parameters_yaml; a test checks that they agree).",
        "# '/**' applies to the node whatever its name or namespace. A launch argument given on the",
        "# command line (scale:=8 ...) overrides the value here; one left empty keeps it.",
        "/**:",
        "  ros__parameters:",
    ]
    for spec in PARAMETERS:
        text = spec.description + (f" [{spec.constraints_text()}]" if spec.constraints_text() else "")
        lines += textwrap.wrap(text, 100, initial_indent="    # ", subsequent_indent="    #   ")
        lines.append(f"    {spec.name}: {_yaml_scalar(spec.default)}")
    return "\n".join(lines) + "\n"


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@dataclass(frozen=True)
class ChangePlan:
    """What a runtime parameter change needs: the new values and which parts to rebuild."""

    params: NodeParams
    rebuild_pipeline: bool
    rebuild_output: bool


def plan_change(
    current: NodeParams, changes: Mapping[str, Any], configured: bool, active: bool
) -> ChangePlan:
    """Validate a set of parameter changes against the runtime policy (module docstring).

    `configured`: a pipeline exists (inactive or active). Raises `ParameterRejected` with the reason.
    """
    updates = _checked(changes)
    changed = {name for name, value in updates.items() if getattr(current, name) != value}
    if active:
        frozen = sorted(n for n in changed if PARAMETER_BY_NAME[n].apply == APPLY_ON_ACTIVATE)
        if frozen:
            raise ParameterRejected(
                f"{', '.join(frozen)} can only change while the node is inactive (they shape the "
                "subscriptions): deactivate the node, set it, then activate again"
            )
    params = validated(replace(current, **updates))
    rebuild = configured and any(PARAMETER_BY_NAME[n].apply == APPLY_REBUILD for n in changed)
    output = (
        configured
        and not rebuild
        and any(n in ("output_encoding", "point_cloud_rgb", "point_stride", "assume_registered") for n in changed)
    )
    return ChangePlan(params, rebuild_pipeline=rebuild, rebuild_output=output)


def want_points(params: NodeParams, subscriber_count: int) -> bool:
    """Build the cloud only when it is enabled and somebody listens."""
    return params.publish_points and subscriber_count > 0


# ---------------------------------------------------------------------------------------------
# Parameters -> core configuration


def sr_config(params: NodeParams) -> Any:
    """The pipeline configuration (`core.pipeline.SRConfig`) for these parameters.

    Empty `weights`/`engine_cache_dir` keep SRConfig's defaults (shipped weights, default cache);
    device "auto" becomes "cuda" where torch sees a GPU, else "cpu".
    """
    from depth_sr_ros.core.pipeline import SRConfig

    optional: dict[str, Any] = {}
    if params.weights:
        optional["weights"] = params.weights
    if params.engine_cache_dir:
        optional["engine_cache_dir"] = params.engine_cache_dir
    return SRConfig(
        scale=params.scale,
        backbone=params.backbone,
        inference_backend=params.inference_backend,
        precision=params.precision,
        device=resolve_device(params.device),
        min_depth=params.min_depth,
        max_depth=params.max_depth,
        **optional,
    )


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    from depth_sr_ros.backends import default_device

    return default_device()


def output_config(params: NodeParams) -> Any:
    """The output configuration (`core.frame_processor.OutputConfig`) for these parameters."""
    from depth_sr_ros.core.frame_processor import OutputConfig

    return OutputConfig(
        output_encoding=params.output_encoding,
        point_cloud_rgb=params.point_cloud_rgb,
        point_stride=params.point_stride,
        assume_registered=params.assume_registered,
    )
