"""The super-resolution pipeline that the ROS node and replay both drive.

    result = DepthSR(SRConfig(scale=4, backbone="guided_filter")).process(rgb, depth_lr)

rgb is H x W x 3 uint8; depth_lr is h x w float32 metres (NaN invalid), registered to the RGB
camera (same optical frame and field of view); result.depth is H x W float32 metres, NaN invalid,
in the RGB camera's optical frame. See docs/pipeline.md for resampling and the hole policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from depth_sr_ros.core import resample
from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.network_upsampler import NetworkUpsampler
from depth_sr_ros.optional import has_torch_weights

PRECISIONS = ("fp32", "fp16")


@dataclass
class SRConfig:
    """Pipeline settings.

    scale: upsampling factor; the model grid is (ceil(H / scale), ceil(W / scale)) for H x W RGB.
    backbone: a registered backbone name, or "auto" for the best shipped weights for `scale`
        (`depth_sr_ros.models.zoo.default_backbone`), falling back to "guided_filter".
    weights: weights file of a network backbone; None = its shipped default.
    inference_backend, precision, device, engine_cache_dir: how a network backbone runs
        (`depth_sr_ros.backends`); ignored by classic backbones. An empty engine_cache_dir is the
        backends' default, `$XDG_CACHE_HOME/depth_sr_ros/engines` (`~/.cache` when unset).
    min_depth, max_depth: valid depth range in metres. Input depth outside it counts as invalid;
        output depth outside it becomes NaN.
    max_hole_radius: hole policy, in low-res (grid) pixels. Invalid input pixels are masked out and
        filled with the nearest valid depth before upsampling. Output pixels over an invalid grid
        pixel within `max_hole_radius` of valid depth keep the upsampled value; over one farther
        away (inside a larger hole) they are NaN.
    aspect_tolerance: largest relative difference between the depth's and the RGB image's
        width/height ratios; beyond it a frame raises FrameError("aspect_mismatch").
    second_pass_weights: the network of the second pass in the colour camera (`process(...,
        second_pass=True)`, `core/sensor_view.py`) of a network backbone: "auto" = the shipped
        weights made for this network's second pass when there are (`zoo.second_pass_weights`),
        else the network itself; "same" = the network itself; else a weights file.
    """

    scale: int = 4
    backbone: str = "auto"
    weights: str | None = None
    inference_backend: str = "auto"
    precision: str = "fp32"
    device: str = "cpu"
    engine_cache_dir: str = ""
    min_depth: float = 0.1
    max_depth: float = 20.0
    max_hole_radius: int = 2
    aspect_tolerance: float = 0.03
    second_pass_weights: str = "auto"

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_hole_radius < 0 or self.aspect_tolerance < 0:
            raise ValueError("max_hole_radius and aspect_tolerance must be >= 0")


@dataclass
class SRResult:
    """depth: H x W float32 metres, NaN invalid. timings_ms: "preprocess", "network", "postprocess".

    filled_lr, valid_lr: the input on the model grid as the backbone took it, holes filled (h x w
    float32 metres), and its validity mask (h x w bool, False where filled); the pipeline's own
    arrays, not copies (the confidence, `core/confidence.py`, starts from them). Read-only.
    """

    depth: np.ndarray
    filled_lr: np.ndarray
    valid_lr: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)


class DepthSR:
    """RGB-guided depth super-resolution of one frame at a time; build once, call `process` per frame.

    Attributes: `config`, `scale`, `backbone_name` (the resolved name when config.backbone is
    "auto"), `weights` (the weights path a network backbone was built from, else None),
    `is_network` (a network backbone, not a classic upsampler), `second_pass_weights` (the weights
    of the second pass's own network, None when the second pass runs this one: `SRConfig`).
    """

    def __init__(self, config: SRConfig) -> None:
        self.config = config
        self.scale = config.scale
        self.backbone_name, self.weights = self._resolve_backbone(config)
        self.is_network = get_backbone(self.backbone_name).kind == "network"
        # the weights file the network is built from (`weights`, else the shipped ones); None: classic
        self.network_weights = self._network_weights()
        self.upsampler = self._build_upsampler(self.network_weights)
        self.second_pass_weights = self._resolve_second_pass(self.network_weights)
        self.second_pass_upsampler = (self._build_upsampler(self.second_pass_weights)
                                      if self.second_pass_weights is not None else self.upsampler)

    @staticmethod
    def _resolve_backbone(config: SRConfig) -> tuple[str, str | Path | None]:
        if config.backbone != "auto":
            return config.backbone, config.weights
        from depth_sr_ros.models.zoo import default_backbone

        name, weights = default_backbone(config.scale)
        return name, config.weights if config.weights is not None else weights

    def _network_weights(self) -> str | Path | None:
        """The weights file of a network backbone (`weights`, else the shipped ones); None for a classic one."""
        if not self.is_network or self.weights is not None:
            return self.weights
        from depth_sr_ros.models import zoo

        return zoo.find_weights(self.backbone_name, self.scale)

    def _resolve_second_pass(self, network_weights: str | Path | None) -> str | Path | None:
        """The second pass's own weights for the network built from `network_weights` (`SRConfig`)."""
        if not self.is_network:
            return None
        from depth_sr_ros.models import zoo

        return zoo.second_pass_choice(self.config.second_pass_weights, self.backbone_name, self.scale, network_weights)

    def _build_upsampler(self, weights: str | Path | None) -> Any:
        spec = get_backbone(self.backbone_name)
        if spec.kind == "classic":
            return spec.factory(**spec.defaults)
        # Network branch: models and backends are imported only when a network is asked for. The
        # torch network is loaded where the [torch] extra is (torch and safetensors); the shipped ONNX
        # file of the weights, when it matches their card, lets ONNX Runtime run without them.
        from depth_sr_ros.backends import BackendConfig, create_backend, default_cache_dir
        from depth_sr_ros.models.shipped_onnx import verified_onnx
        from depth_sr_ros.models.weights import load_network

        onnx_path = verified_onnx(weights) if weights is not None else None
        model = None
        if has_torch_weights() or onnx_path is None:  # no ONNX, or no [torch] extra: load_network says why
            model = load_network(self.backbone_name, self.scale, weights)
        cache = self.config.engine_cache_dir
        backend_config = BackendConfig(
            precision=cast(Literal["fp32", "fp16"], self.config.precision),
            device=self.config.device,
            engine_cache_dir=Path(cache).expanduser() if cache else default_cache_dir(),
        )
        backend = create_backend(self.config.inference_backend, model, backend_config, onnx_path=onnx_path)
        return NetworkUpsampler(backend, self.scale)

    def process(self, rgb: np.ndarray, depth_lr: np.ndarray, second_pass: bool = False) -> SRResult:
        """Super-resolve `depth_lr` (h x w metres, NaN invalid) to the size of `rgb` (H x W x 3 uint8);
        `second_pass`: `depth_lr` is this pipeline's own output reprojected into the colour camera
        and brought to the input grid (`core/sensor_view.py`): the second pass's network takes it.

        Raises FrameError ("bad_shape", "bad_dtype", "aspect_mismatch", "all_invalid_depth").
        """
        cfg = self.config
        start = time.perf_counter()
        _check_inputs(rgb, depth_lr)
        resample.check_aspect(depth_lr.shape, rgb.shape, cfg.aspect_tolerance)
        depth = resample.resample_to_grid(depth_lr.astype(np.float32, copy=False), rgb.shape, self.scale)
        with np.errstate(invalid="ignore"):
            valid = (depth >= cfg.min_depth) & (depth <= cfg.max_depth)  # False for NaN and inf
        if not valid.any():
            raise FrameError(
                "all_invalid_depth",
                f"no input depth in [{cfg.min_depth}, {cfg.max_depth}] m (NaN/inf/out-of-range everywhere)",
            )
        filled = resample.fill_holes(depth, valid)
        too_far = resample.hole_mask(valid, cfg.max_hole_radius)
        rgb_padded = resample.pad_to_multiple(rgb, self.scale)
        timings = {}
        upsampler = self.second_pass_upsampler if second_pass else self.upsampler

        if isinstance(upsampler, NetworkUpsampler):
            inputs = upsampler.preprocess(rgb_padded, filled, valid)
            timings["preprocess"] = _elapsed_ms(start)
            start = time.perf_counter()
            output = upsampler.infer(inputs)
            timings["network"] = _elapsed_ms(start)
            start = time.perf_counter()
            depth_hr = upsampler.postprocess(output, inputs)
            owned = True  # a new array: NetworkUpsampler.postprocess clips into one
        else:
            timings["preprocess"] = _elapsed_ms(start)
            start = time.perf_counter()
            depth_hr = upsampler.upsample(rgb_padded, filled, valid, self.scale)
            owned = False
            timings["network"] = _elapsed_ms(start)
            start = time.perf_counter()

        depth_hr = self._apply_hole_policy(depth_hr, too_far, rgb.shape[:2], owned)
        timings["postprocess"] = _elapsed_ms(start)
        return SRResult(depth=depth_hr, timings_ms=timings, filled_lr=filled, valid_lr=valid)

    def _apply_hole_policy(self, depth_hr: np.ndarray, too_far: np.ndarray, size: tuple[int, ...],
                           owned: bool) -> np.ndarray:
        """Crop the padded output to `size`, NaN over large input holes and outside the depth range.
        `owned`: `depth_hr` is a new array of the pipeline's own, written in place when nothing is
        cropped; otherwise (or when it is not float32) the crop is copied first."""
        s = self.scale
        if owned and depth_hr.shape == tuple(size) and depth_hr.dtype == np.float32:
            out = depth_hr
        else:
            out = np.array(depth_hr[: size[0], : size[1]], dtype=np.float32)  # own, writable copy
        # min/max tell cheaply whether any pixel leaves the range (a NaN fails the test and is checked too).
        if not (out.min() >= self.config.min_depth and out.max() <= self.config.max_depth):
            with np.errstate(invalid="ignore"):
                out[(out < self.config.min_depth) | (out > self.config.max_depth)] = np.nan
        if too_far.any():
            blocked = np.repeat(np.repeat(too_far, s, axis=0), s, axis=1)
            out[blocked[: size[0], : size[1]]] = np.nan
        return out


def _check_inputs(rgb: np.ndarray, depth: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or not isinstance(depth, np.ndarray):
        raise FrameError("bad_type", "rgb and depth must be numpy arrays")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise FrameError("bad_shape", f"rgb must be H x W x 3, got shape {rgb.shape}")
    if depth.ndim != 2 or depth.size == 0:
        raise FrameError("bad_shape", f"depth must be a non-empty h x w array, got shape {depth.shape}")
    if rgb.dtype != np.uint8:
        raise FrameError("bad_dtype", f"rgb must be uint8, got {rgb.dtype}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise FrameError(
            "bad_dtype", f"depth must be floating-point metres, got {depth.dtype} (convert millimetres first)"
        )


def _elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3
