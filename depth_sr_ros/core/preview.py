"""Preview building blocks: colour-mapped depth and error, colour bars with labelled ticks, titled tiles.

Images are H x W x 3 uint8 BGR (OpenCV order). Depth and error are shown in a display unit: the
caller passes metres and a `DisplayUnit` (metres by default; centimetres, or a dataset's own scale
such as Middlebury's 0-255). Pixels without a value have colours of their own, never a colour of
the map: `NO_DATA_BGR` (grey) where a depth map has no value (NaN; a value <= 0, such as a
method's overshoot, is a value and takes the lowest colour) or where there is no ground truth to
score against, `MISSING_BGR` (cyan) in an error map where the ground truth has a value and the
method gave none. Scored pixels are those of `core.metrics`: finite, positive ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

NO_DATA_BGR = (150, 150, 150)  # grey: no colour of turbo or inferno comes within 110 (RGB distance)
MISSING_BGR = (255, 255, 0)  # cyan (BGR): far from every inferno colour
DEPTH_COLORMAP = cv2.COLORMAP_TURBO  # near = blue, far = red
ERROR_COLORMAP = cv2.COLORMAP_INFERNO  # 0 = black, large = yellow
BACKGROUND_BGR = (255, 255, 255)
TEXT_BGR = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
TITLE_HEIGHT = 22
BAR_WIDTH = 16
BAR_TICKS = 6


@dataclass(frozen=True)
class DisplayUnit:
    """How values are shown: `per_metre` display units per metre, labelled `label` ("m", "cm", ...)."""

    label: str = "m"
    per_metre: float = 1.0


METRES = DisplayUnit()


def depth_range(*depths: np.ndarray) -> tuple[float, float]:
    """A shared colour range (metres) for several depth maps: 2nd to 98th percentile of their values."""
    values = np.concatenate([d[np.isfinite(d)].ravel() for d in depths])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [2, 98])
    return float(lo), float(max(hi, lo + 1e-3))


def _colorize(values: np.ndarray, valid: np.ndarray, vmin: float, vmax: float, colormap: int) -> np.ndarray:
    scaled = np.clip((np.where(valid, values, vmin) - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    image = cv2.applyColorMap(np.rint(scaled * 255).astype(np.uint8), colormap)
    image[~valid] = NO_DATA_BGR
    return image


def colorize_depth(depth: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Depth in metres -> BGR (turbo from `vmin` to `vmax`, clipped); pixels without depth (NaN) grey."""
    return _colorize(depth, np.isfinite(depth), vmin, vmax, DEPTH_COLORMAP)


def colorize_error(pred: np.ndarray, gt: np.ndarray, vmax: float) -> np.ndarray:
    """|pred - gt| in metres -> BGR (inferno from 0 to `vmax`, clipped).

    Grey where the ground truth has no value (not scored); cyan where it has one and `pred` has
    none (a coverage gap).
    """
    has_gt = np.isfinite(gt) & (gt > 0)
    has_pred = np.isfinite(pred)
    valid = has_gt & has_pred
    image = _colorize(np.abs(np.where(valid, pred, 0.0) - np.where(valid, gt, 0.0)), valid, 0.0, vmax,
                      ERROR_COLORMAP)
    image[has_gt & ~has_pred] = MISSING_BGR
    return image


def nice_ticks(lo: float, hi: float, count: int = BAR_TICKS) -> list[float]:
    """At most `count` round values (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    raw = span / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = [first + i * step for i in range(math.floor((hi - first) / step + 1e-9) + 1)]
    return [round(t, 12) for t in ticks] or [lo]


def format_tick(value: float, step: float) -> str:
    """`value` with as many decimals as the tick `step` needs."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 2
    return f"{value:.{decimals}f}"


def text_width(text: str, scale: float = FONT_SCALE) -> int:
    return cv2.getTextSize(text, FONT, scale, 1)[0][0]


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = FONT_SCALE,
             color: tuple[int, int, int] = TEXT_BGR, thickness: int = 1) -> None:
    """Draw `text` with its baseline's left end at `origin` (x, y)."""
    cv2.putText(image, text, origin, FONT, scale, color, thickness, cv2.LINE_AA)


def _bar_span(height: int) -> tuple[int, int]:
    """First and one-past-last row of a colour bar's ramp."""
    return TITLE_HEIGHT + 12, height - 10


def colour_bar_ticks(vmin: float, vmax: float, height: int, unit: DisplayUnit = METRES,
                     clipped_top: bool = True) -> list[tuple[int, float, str]]:
    """(row, value in metres, label) of each tick of `colour_bar` with the same arguments."""
    lo, hi = vmin * unit.per_metre, vmax * unit.per_metre
    ticks = nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else max(hi - lo, 1e-6)
    top, bottom = _bar_span(height)
    out = []
    for tick in ticks:
        row = round(bottom - 1 - (tick - lo) / max(hi - lo, 1e-12) * (bottom - top - 1))
        label = format_tick(tick, step)
        if clipped_top and tick == ticks[-1] and abs(tick - hi) < 0.5 * step:
            label = f">={label}"
        out.append((row, tick / unit.per_metre, label))
    return out


def colour_bar(vmin: float, vmax: float, colormap: int, height: int, title: str,
               unit: DisplayUnit = METRES, clipped_top: bool = True) -> np.ndarray:
    """A vertical colour bar (top = `vmax`) with round ticks labelled in `unit`, under `title`.

    `vmin`, `vmax` are metres; the labels are in the display unit. With `clipped_top` the top
    label reads ">= v": values beyond the range share the top colour.
    """
    ticks = colour_bar_ticks(vmin, vmax, height, unit, clipped_top)
    width = BAR_WIDTH + 14 + max([text_width(label) for _, _, label in ticks] + [text_width(title) - BAR_WIDTH])
    canvas = np.full((height, width + 8, 3), BACKGROUND_BGR, np.uint8)
    put_text(canvas, title, (4, 14))
    top, bottom = _bar_span(height)
    ramp = np.linspace(255, 0, bottom - top).astype(np.uint8).reshape(-1, 1)
    canvas[top:bottom, 4 : 4 + BAR_WIDTH] = cv2.applyColorMap(np.repeat(ramp, BAR_WIDTH, axis=1), colormap)
    for row, _, label in ticks:
        cv2.line(canvas, (4 + BAR_WIDTH, row), (8 + BAR_WIDTH, row), TEXT_BGR, 1)
        put_text(canvas, label, (11 + BAR_WIDTH, row + 5))
    return canvas


def swatch_legend(entries: list[tuple[tuple[int, int, int], str]], width: int, height: int) -> np.ndarray:
    """A legend tile: one coloured square and its meaning per line."""
    canvas = np.full((height, width, 3), BACKGROUND_BGR, np.uint8)
    for i, (colour, text) in enumerate(entries):
        y = 12 + 22 * i
        cv2.rectangle(canvas, (6, y), (20, y + 14), colour, -1)
        cv2.rectangle(canvas, (6, y), (20, y + 14), TEXT_BGR, 1)
        put_text(canvas, text, (28, y + 12))
    return canvas


def text_tile(lines: list[str], width: int, height: int) -> np.ndarray:
    """A tile of left-aligned text lines."""
    canvas = np.full((height, width, 3), BACKGROUND_BGR, np.uint8)
    for i, line in enumerate(lines):
        put_text(canvas, line, (8, 20 + 20 * i))
    return canvas


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """`image` under a white strip carrying `title` (shortened to fit the width)."""
    while title and text_width(title) > image.shape[1] - 8:
        title = title[:-2] + "~"
    strip = np.full((TITLE_HEIGHT, image.shape[1], 3), BACKGROUND_BGR, np.uint8)
    put_text(strip, title, (4, 15))
    return np.concatenate([strip, image], axis=0)


def write_png(path: str | Path, image_bgr: np.ndarray) -> Path:
    """Write a BGR uint8 image as PNG (whatever the name's extension), creating parent folders;
    raises OSError on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", image_bgr)
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    path.write_bytes(encoded.tobytes())
    return path
