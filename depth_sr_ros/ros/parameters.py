"""The node's parameters without ROS: their values, the rules between them, runtime changes.

`PARAMETERS` (rows in `parameter_table.py`, importable from here) is the one table of node
parameters (name, type, default, description, allowed values or range, and when a change takes
effect). The node's `ParameterDescriptor`s, the launch file's argument choices, `config/sr.yaml`
and the `depth-sr replay` flags are all made from it, so a value the node refuses is refused
offline too.

Runtime changes (`plan_change`) follow one policy, by the parameter's `apply` class:
- `APPLY_REBUILD` (scale, backbone, weights, inference_backend, precision, device,
  engine_cache_dir, min_depth, max_depth, input_width, input_height,
  registration_second_pass_weights): while the node is
  configured, the node builds (and warms up) a complete new pipeline with the new values first
  and swaps it in between two frames. If the build fails (missing weights, no CUDA, engine
  build error) the change is rejected with the build error as its reason and the old pipeline
  keeps running.
- `APPLY_LIVE` (output_encoding, publish_points, point_cloud_rgb, point_stride, publish_confidence,
  point_cloud_confidence, min_confidence, assume_registered, tf_timeout, max_image_pixels,
  registration_second_pass): applied from the next frame on.
- `APPLY_ON_ACTIVATE` (queue_size, slop, exact_sync, input_mode, rgb_transport,
  depth_transport, health_period, registration): read when the node activates, because they shape the
  subscriptions and timers. While the node is active a change is refused with a reason that
  says to deactivate, set, and activate again.
- `registration_frozen`, `registration_budget` (also `APPLY_LIVE`) go to the running
  estimator (`registration_io.RegistrationIO.set_params`) from the next frame on.

A value is checked whether or not the running backbone uses it (`device`, `inference_backend`
and `weights` under a classic backbone): a parameter is never stored invalid, and one that
cannot take effect here (a CUDA device this machine does not have) is refused with the reason.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from depth_sr_ros.ros.parameter_table import (
    APPLY_LIVE,
    APPLY_ON_ACTIVATE,
    APPLY_REBUILD,
    BACKBONE_CHOICES,
    CLASSIC_BACKBONES,
    LAUNCH_PARAMETERS,
    NETWORK_BACKBONES,
    PARAMETER_BY_NAME,
    PARAMETERS,
    SCALES,
    ParamSpec,
)

__all__ = [  # the table's names, so that `parameters` stays the one module to import
    "APPLY_LIVE", "APPLY_ON_ACTIVATE", "APPLY_REBUILD", "BACKBONE_CHOICES", "CLASSIC_BACKBONES",
    "LAUNCH_PARAMETERS", "NETWORK_BACKBONES", "PARAMETERS", "PARAMETER_BY_NAME", "SCALES", "ChangePlan",
    "NodeParams", "ParamSpec", "ParameterRejected", "launch_overrides", "output_config", "parameters_yaml",
    "parse_launch_value", "plan_change", "render_parameters_yaml", "resolve_device", "sr_config", "validated",
    "want_confidence", "want_points",
]


# APPLY_LIVE parameters the FrameProcessor holds: a change gives the node a new one (`set_output`)
OUTPUT_PARAMETERS = ("output_encoding", "point_cloud_rgb", "point_stride", "assume_registered", "max_image_pixels",
                     "min_confidence", "point_cloud_confidence", "registration_second_pass")


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
    max_image_pixels: int
    output_encoding: str
    publish_points: bool
    point_cloud_rgb: bool
    point_stride: int
    publish_confidence: bool
    point_cloud_confidence: bool
    min_confidence: float
    queue_size: int
    slop: float
    exact_sync: bool
    input_mode: str
    assume_registered: bool
    rgb_transport: str
    depth_transport: str
    tf_timeout: float
    health_period: float
    registration: str
    registration_frozen: bool
    registration_budget: float
    registration_second_pass: bool
    registration_second_pass_weights: str

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
            "together, or both 0 (warm up at the first RGB frame)"
        )
    if params.input_width * params.input_height > params.max_image_pixels:
        raise ParameterRejected(
            f"input_width x input_height ({params.input_width}x{params.input_height}) is more than "
            f"max_image_pixels ({params.max_image_pixels})"
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
        and any(n in OUTPUT_PARAMETERS for n in changed)
    )
    return ChangePlan(params, rebuild_pipeline=rebuild, rebuild_output=output)


def want_points(params: NodeParams, subscriber_count: int) -> bool:
    """Build the cloud only when it is enabled and somebody listens."""
    return params.publish_points and subscriber_count > 0


def want_confidence(params: NodeParams, subscriber_count: int) -> bool:
    """Build (and publish) the confidence image only when it is enabled and somebody listens.
    (The FrameProcessor computes the confidence on its own for `min_confidence` and the cloud's
    confidence field.)"""
    return params.publish_confidence and subscriber_count > 0


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
        second_pass_weights=params.registration_second_pass_weights,
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
        min_confidence=params.min_confidence,
        point_cloud_confidence=params.point_cloud_confidence,
        second_pass=params.registration_second_pass,
    )
