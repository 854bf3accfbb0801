"""Evaluation protocols: `gdsr` (the published benchmark, PROTOCOL.md, exactly) and `metric`.

A *method* is any callable `method(rgb, depth_lr, valid_lr, scale) -> depth_hr` with
`rgb` H x W x 3 uint8, `depth_lr` h x w float32 hole-filled, `valid_lr` h x w bool, and the
output H x W float32 in the unit of `depth_lr` (classic backbones' `upsample` has this form;
`network_method` wraps a torch network).

gdsr, per frame: crop to a multiple of s; PIL bicubic downsampling of the float32 ground truth
(or a named sensor degradation, or the real `depth_lr/`); normalise by the ground truth's min and
max; upsample; clamp to [0, 1]; de-normalise; score by the set's `gdsr_style` (`middlebury`: 0-255
scale, prediction clipped to [0, 255], all pixels; `nyu`: centimetres, 6 px border crop; `rgbdd`:
centimetres, no crop). Report the mean per-image RMSE.

Ground truth of every kind: a stored 0 of a set with `zero_is_invalid: false` is a value like any
other (downsampled and scored). Ground truth with holes (NaN: a `zero_is_invalid: true` set) is
outside the published protocol: its holes are filled with the nearest valid depth before the
bicubic downsampling, low-resolution pixels whose whole footprint is a hole stay invalid, and only
valid ground-truth pixels are scored (`FrameInput.gt_holes` says so). Inputs whose size is not the
ground truth's divided by s (a real `depth_lr/`, a sensor of another resolution) are brought to the
model grid as the robot pipeline does (`core.resample.resample_to_grid`); for such real inputs an
`rgbdd`-style set is cropped to a multiple of 4 (PROTOCOL.md), and the colour image is padded to
the grid and the prediction cropped back.

metric, per frame: the same inputs, but normalised by the valid *input's* min and max (what the
robot pipeline can do), scored in metres: RMSE, MAE, AbsRel, delta<1.25 (core.metrics) and
`edge_rmse`, the RMSE within `EDGE_RADIUS_PX` of a ground-truth depth discontinuity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from depth_sr_ros.core.metrics import depth_metrics
from depth_sr_ros.core.resample import (
    bicubic_downsample,
    denormalise,
    fill_holes,
    normalise,
    pad_to_multiple,
    pil_resize,
    resample_to_grid,
)
from depth_sr_ros.train.datasets import Frame

if TYPE_CHECKING:
    from depth_sr_ros.train.degradations import Degradation

Method = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class ToColour:
    """How a prediction made in the depth sensor's view reaches the colour camera, as
    `core/frame_processor.py` takes it there (`eval/registration.py` makes one): `reproject` maps it
    (H x W metres) into the colour camera; with `rgb` (the colour image, H x W x 3 uint8) the method
    then runs a second time, beside `rgb`, on the reprojected prediction brought to the input grid
    (`core/sensor_view.py`); `method`: the second pass's own network (`SRConfig.second_pass_weights`),
    None = the method itself."""

    reproject: Callable[[np.ndarray], np.ndarray]
    rgb: np.ndarray | None = None
    method: Method | None = None


NYU_BORDER_PX = 6
REAL_INPUT_MULTIPLE = 4  # PROTOCOL.md: real RGB-D-D pairs are cropped to a multiple of 4
EDGE_RADIUS_PX = 3
EDGE_JUMP_REL = 0.05  # a discontinuity: neighbouring depths differ by more than 5 %


@dataclass
class FrameInput:
    """What a method sees for one frame, plus what scoring needs.

    gt: cropped ground truth in metres (NaN invalid); rgb: cropped colour; lr: low-resolution
    depth in metres (NaN invalid) on the model grid `(ceil(h / s), ceil(w / s))` of the crop;
    valid_lr: its validity; source: "bicubic", a degradation name, or "depth_lr" (a real sensor
    image); gt_holes: whether the ground truth has invalid pixels (filled before the bicubic
    downsampling, left out of the score).
    """

    name: str
    rgb: np.ndarray
    gt: np.ndarray
    lr: np.ndarray
    valid_lr: np.ndarray
    source: str
    gt_holes: bool = False


def protocol_bicubic_downsample(gt: np.ndarray, scale: int) -> np.ndarray:
    """Protocol step 2: PIL bicubic (antialiased) resize of float32 `gt` to `(H // scale, W // scale)`.

    `gt` must have no NaN (the benchmark's ground truth is hole-filled); crop it to a multiple
    of `scale` first, as the protocol does.
    """
    h, w = gt.shape
    return pil_resize(gt, (w // scale, h // scale), "bicubic")


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop at the bottom and right to a multiple of `scale` in height and width (protocol step 1)."""
    h, w = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    return image[:h, :w]


def _grid(depth: np.ndarray, image_shape: tuple[int, ...], crop_shape: tuple[int, ...], scale: int) -> np.ndarray:
    """`depth` (covering an image of `image_shape`) on the model grid of its top-left `crop_shape`."""
    grid = resample_to_grid(depth, image_shape, scale)
    return np.ascontiguousarray(grid[: -(-crop_shape[0] // scale), : -(-crop_shape[1] // scale)])


def make_input(frame: Frame, scale: int, degradation: Degradation | None = None,
               rng: np.random.Generator | None = None) -> FrameInput:
    """Protocol steps 1-2 for one frame: crop, then the low-resolution input on the model grid.

    The real `depth_lr` wins when the frame has one; else `degradation` (None = the protocol's
    PIL bicubic downsampling of the float32 ground truth, in the stored unit so the numbers equal
    the published pipeline's to float precision).
    """
    real = frame.depth_lr is not None
    multiple = REAL_INPUT_MULTIPLE if real and frame.gdsr_style == "rgbdd" else scale
    rgb = crop_to_multiple(frame.rgb, multiple)
    gt = crop_to_multiple(frame.depth, multiple)
    gt_holes = not np.isfinite(gt).all()
    unit = np.float32(frame.depth_unit_m)
    if frame.depth_lr is not None:
        lr = _grid(frame.depth_lr, frame.rgb.shape, gt.shape, scale)
        source = "depth_lr"
    elif degradation is None:
        native = gt / unit
        lr = (bicubic_downsample(native, scale) if gt_holes else protocol_bicubic_downsample(native, scale)) * unit
        source = "bicubic"
    else:
        lr = degradation(gt, scale, rng if rng is not None else np.random.default_rng(0))
        lr = _grid(lr, gt.shape, gt.shape, scale)
        source = degradation.name
    if not np.isfinite(gt).any():
        raise ValueError(f"{frame.name}: the ground truth has no valid pixel")
    valid = np.isfinite(lr)
    if not valid.any():
        raise ValueError(f"{frame.name}: the low-resolution input has no valid pixel")
    return FrameInput(frame.name, rgb, gt, lr.astype(np.float32), valid, source, gt_holes)


def run_method(method: Method, inp: FrameInput, scale: int, lo: float, hi: float, clamp: bool) -> np.ndarray:
    """Normalise the filled input by (lo, hi), run `method` (on the colour image padded to the
    grid), crop its output to the ground truth's size, optionally clamp to [0, 1], and
    de-normalise: the prediction in the unit of `lo`, `hi`."""
    filled = fill_holes(np.nan_to_num(inp.lr), inp.valid_lr)
    norm, _, _ = normalise(filled, inp.valid_lr, lo, hi)
    rgb = pad_to_multiple(inp.rgb, scale)
    expected = (inp.lr.shape[0] * scale, inp.lr.shape[1] * scale)
    if rgb.shape[:2] != expected:
        raise ValueError(f"{inp.name}: colour {rgb.shape[:2]} does not fit the input grid {inp.lr.shape} x{scale}")
    pred = np.asarray(method(rgb, norm, inp.valid_lr, scale), dtype=np.float32)
    if pred.shape != expected:
        raise ValueError(f"method returned {pred.shape}, expected {expected}")
    pred = pred[: inp.gt.shape[0], : inp.gt.shape[1]]
    if clamp:
        pred = np.clip(pred, 0.0, 1.0)
    return denormalise(pred, lo, hi)


def gdsr_score(pred_native: np.ndarray, gt_native: np.ndarray, style: str, unit_m: float) -> float:
    """Step 6, over the valid ground-truth pixels: `middlebury` -> RMSE on the stored (0-255)
    scale, prediction clipped to [0, 255], all pixels; `nyu` -> RMSE in centimetres after a 6 px
    border crop; `rgbdd` -> RMSE in centimetres, no crop."""
    pred = pred_native.astype(np.float64)
    gt = gt_native.astype(np.float64)
    if style == "middlebury":
        pred = np.clip(pred, 0, 255)
    elif style in ("nyu", "rgbdd"):
        to_cm = 100.0 * unit_m
        pred, gt = pred * to_cm, gt * to_cm
        if style == "nyu":
            b = NYU_BORDER_PX
            pred, gt = pred[b:-b, b:-b], gt[b:-b, b:-b]
    else:
        raise ValueError(f"unknown gdsr style {style!r}")
    valid = np.isfinite(gt)
    if not valid.any():
        raise ValueError("no valid ground-truth pixel to score")
    return float(np.sqrt(np.mean((pred[valid] - gt[valid]) ** 2)))


def gdsr_frame(method: Method, frame: Frame, inp: FrameInput, scale: int,
               to_colour: ToColour | None = None) -> tuple[np.ndarray, float]:
    """Steps 3-6 for one method on one prepared input: (prediction in metres, RMSE). `to_colour`:
    the prediction (metres) is in the depth sensor's view and this takes it to the colour
    camera's before it is scored (`eval/registration.py`)."""
    unit = np.float32(frame.depth_unit_m)
    gt_native = inp.gt / unit
    lo, hi = float(np.nanmin(gt_native)), float(np.nanmax(gt_native))
    native_inp = FrameInput(inp.name, inp.rgb, gt_native, inp.lr / unit, inp.valid_lr, inp.source, inp.gt_holes)
    pred_native = run_method(method, native_inp, scale, lo, hi, clamp=True)
    if to_colour is not None:
        pred_native = _in_colour(to_colour, method, native_inp, (scale, lo, hi, True), pred_native,
                                 frame.depth_unit_m)
    return pred_native * unit, gdsr_score(pred_native, gt_native, frame.gdsr_style, frame.depth_unit_m)


def _in_colour(to_colour: ToColour, method: Method, inp: FrameInput, run: tuple[int, float, float, bool],
               pred: np.ndarray, unit_m: float) -> np.ndarray:
    """`pred` (the sensor's view, in the unit of `unit_m` metres) in the colour camera: reprojected,
    then `method` once more on it when `to_colour` asks for a second pass. `run`: the first pass's
    (scale, lo, hi, clamp), which the second repeats."""
    scale, lo, hi, clamp = run
    unit = np.float32(unit_m)
    pred = to_colour.reproject(pred * unit) / unit
    if to_colour.rgb is None:
        return pred
    lr = bicubic_downsample(pred, scale)
    again = FrameInput(inp.name, to_colour.rgb, inp.gt, lr, np.isfinite(lr), inp.source, inp.gt_holes)
    return run_method(to_colour.method or method, again, scale, lo, hi, clamp)


def discontinuity_mask(gt: np.ndarray, radius: int = EDGE_RADIUS_PX, jump_rel: float = EDGE_JUMP_REL) -> np.ndarray:
    """True within `radius` px of a ground-truth depth discontinuity (a relative jump larger than
    `jump_rel` between 4-neighbours, both valid)."""
    g = gt.astype(np.float64)
    edge = np.zeros(gt.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        dy = np.abs(g[1:] - g[:-1]) > jump_rel * np.minimum(g[1:], g[:-1])
        dx = np.abs(g[:, 1:] - g[:, :-1]) > jump_rel * np.minimum(g[:, 1:], g[:, :-1])
    edge[1:] |= dy
    edge[:-1] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(edge.astype(np.uint8), kernel).astype(bool)


def metric_frame(method: Method, inp: FrameInput, scale: int,
                 to_colour: ToColour | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """Metric protocol for one method: (prediction in metres, metrics incl. `edge_rmse`);
    `to_colour` as in `gdsr_frame`."""
    valid_depth = inp.lr[inp.valid_lr]
    lo, hi = float(valid_depth.min()), float(valid_depth.max())
    pred = run_method(method, inp, scale, lo, hi, clamp=False)
    if to_colour is not None:
        pred = _in_colour(to_colour, method, inp, (scale, lo, hi, False), pred, 1.0)
    metrics = depth_metrics(pred, inp.gt)
    near_edge = discontinuity_mask(inp.gt) & np.isfinite(inp.gt)
    err = (pred - inp.gt)[near_edge].astype(np.float64)
    metrics["edge_rmse"] = float(np.sqrt(np.mean(err**2))) if err.size else float("nan")
    return pred, metrics


def network_method(model, device: str = "cpu") -> Method:
    """Wrap a torch network (contract of docs/ARCHITECTURE.md) as a `Method` on normalised depth."""
    import torch

    def run(rgb: np.ndarray, depth_lr: np.ndarray, valid_lr: np.ndarray, scale: int) -> np.ndarray:
        with torch.inference_mode():
            rgb_t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255.0)[None]
            depth_t = torch.from_numpy(np.ascontiguousarray(depth_lr, dtype=np.float32))[None, None]
            mask_t = torch.from_numpy(valid_lr.astype(np.float32))[None, None]
            out = model(rgb_t.to(device), depth_t.to(device), mask_t.to(device))
        return out[0, 0].float().cpu().numpy()

    return run
