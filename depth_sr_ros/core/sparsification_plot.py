"""The sparsification curve as a PNG: RMSE left against the fraction of pixels removed, by
confidence and by the oracle, the area between them (AUSE) shaded. Drawn with OpenCV and the
preview building blocks (`core/preview.py`), so it needs nothing beyond the package's own
dependencies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from depth_sr_ros.core.preview import (
    BACKGROUND_BGR,
    TEXT_BGR,
    DisplayUnit,
    format_tick,
    nice_ticks,
    put_text,
    text_width,
    write_png,
)

CONFIDENCE_BGR = (180, 90, 20)  # blue
ORACLE_BGR = (40, 150, 40)  # green
GAP_BGR = (235, 215, 190)  # light blue: the area that is the AUSE
GRID_BGR = (225, 225, 225)
CENTIMETRES = DisplayUnit("cm", 100.0)
SIZE = (640, 420)  # width, height
MARGIN = (70, 40, 20, 50)  # left, top, right, bottom


class Curve(Protocol):
    """What is plotted: a `SparsificationCurve` or `SparsificationSummary` (core/sparsification)."""

    fractions: np.ndarray
    rmse: np.ndarray
    oracle: np.ndarray


def sparsification_image(curve: Curve, title: str, ause: float | None = None,
                         unit: DisplayUnit = CENTIMETRES) -> np.ndarray:
    """The plot as a BGR uint8 image: x the fraction removed (0-1), y the RMSE left in `unit`
    from 0 to the largest value; `ause` (metres), when given, is printed in the legend."""
    width, height = SIZE
    left, top, right, bottom = MARGIN
    canvas = np.full((height, width, 3), BACKGROUND_BGR, np.uint8)
    x_max = 1.0
    y_max = float(max(np.max(curve.rmse), np.max(curve.oracle))) * unit.per_metre
    y_ticks = nice_ticks(0.0, y_max if y_max > 0 else 1.0)
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else y_ticks[0] or 1.0
    if y_ticks[-1] < y_max:  # one more round tick above the largest value: the axis ends there
        y_ticks.append(round(y_ticks[-1] + y_step, 12))
    y_top = y_ticks[-1]

    def point(fraction: float, value_m: float) -> tuple[int, int]:
        x = left + fraction / x_max * (width - left - right)
        y = height - bottom - value_m * unit.per_metre / y_top * (height - top - bottom)
        return round(x), round(y)

    for tick in nice_ticks(0.0, x_max):
        x, _ = point(tick, 0.0)
        cv2.line(canvas, (x, top), (x, height - bottom), GRID_BGR, 1)
        label = format_tick(tick, 0.2)
        put_text(canvas, label, (x - text_width(label) // 2, height - bottom + 18))
    for tick in y_ticks:
        _, y = point(0.0, tick / unit.per_metre)
        cv2.line(canvas, (left, y), (width - right, y), GRID_BGR, 1)
        label = format_tick(tick, y_step)
        put_text(canvas, label, (left - 8 - text_width(label), y + 5))
    cv2.rectangle(canvas, (left, top), (width - right, height - bottom), TEXT_BGR, 1)

    upper = [point(f, v) for f, v in zip(curve.fractions, curve.rmse)]
    lower = [point(f, v) for f, v in zip(curve.fractions, curve.oracle)]
    cv2.fillPoly(canvas, [np.array(upper + lower[::-1], np.int32)], GAP_BGR, cv2.LINE_AA)
    cv2.polylines(canvas, [np.array(lower, np.int32)], False, ORACLE_BGR, 2, cv2.LINE_AA)
    cv2.polylines(canvas, [np.array(upper, np.int32)], False, CONFIDENCE_BGR, 2, cv2.LINE_AA)

    put_text(canvas, title, (left, 24), scale=0.5)
    put_text(canvas, "fraction of pixels removed (least confident first)", (left + 90, height - 12))
    axis = f"RMSE left ({unit.label})"
    axis_tile = np.full((20, text_width(axis) + 8, 3), BACKGROUND_BGR, np.uint8)
    put_text(axis_tile, axis, (4, 15))
    rotated = cv2.rotate(axis_tile, cv2.ROTATE_90_COUNTERCLOCKWISE)
    y0 = max(top, (height - rotated.shape[0]) // 2)
    canvas[y0 : y0 + rotated.shape[0], 4 : 4 + rotated.shape[1]] = rotated[: height - y0]
    legend = [(CONFIDENCE_BGR, "by confidence"), (ORACLE_BGR, "oracle (by true error)")]
    if ause is not None:
        legend.append((GAP_BGR, f"AUSE {ause * unit.per_metre:.3g} {unit.label}"))
    for i, (colour, text) in enumerate(legend):
        y = top + 14 + 20 * i
        x = width - right - 210
        cv2.rectangle(canvas, (x, y - 10), (x + 14, y + 2), colour, -1)
        put_text(canvas, text, (x + 20, y))
    return canvas


def write_sparsification_png(path: str | Path, curve: Curve, title: str, ause: float | None = None,
                             unit: DisplayUnit = CENTIMETRES) -> Path:
    """Write `sparsification_image(curve, title, ause, unit)` as a PNG (parent folders made)."""
    return write_png(path, sparsification_image(curve, title, ause, unit))
