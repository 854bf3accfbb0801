"""The comparison figure of one frame, for replay and evaluate previews.

Layout (BGR, white background):

    header: the frame's title and each method's RMSE
    row 1:  RGB (crop boxes numbered) | input | method 1 (the model) | method 2 (bicubic) ... | ground truth | depth bar
    row 2:  figures as text           | |input - gt| | |method 1 - gt| | ... | 1 - confidence | legend | error bar
    crops:  full-resolution windows around the strongest depth edges, every pixel shown
            (integer zoom, nearest): RGB | input | methods | ground truth | method errors

The overview rows are scaled to `panel_height`; the crops never shrink. Depth shares one colour
range (2nd-98th percentile of the ground truth, else of all maps); errors share 0..`error_max_m`.
Without ground truth the error maps and their bar are left out. The model's confidence, when
given, is drawn as `1 - confidence` in the error colours (black: trusted, yellow: distrusted), so
it reads beside the model's error map. Depths are metres (NaN invalid).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from depth_sr_ros.core.preview import (
    BACKGROUND_BGR,
    DEPTH_COLORMAP,
    ERROR_COLORMAP,
    METRES,
    MISSING_BGR,
    NO_DATA_BGR,
    TITLE_HEIGHT,
    DisplayUnit,
    colorize_depth,
    colorize_error,
    colour_bar,
    depth_range,
    put_text,
    swatch_legend,
    text_tile,
    titled,
)

EDGE_JUMP_REL = 0.03  # a neighbour step counts as a depth edge above 3% of the nearer depth
GAP = 8
CROP_BOX_BGR = (0, 0, 255)


@dataclass
class PreviewFrame:
    """What to draw for one frame.

    rgb: H x W x 3 uint8 RGB. methods: name -> H x W depth in metres, the model first, then its
    baselines. depth_in: the low-resolution input in metres (None: no input image, e.g. LiDAR).
    gt: H x W ground truth in metres, or None. rmse: name -> the frame's RMSE as scored, in the
    figure's display unit (names left out are not shown). title: the header line. confidence:
    H x W in [0, 1] beside the first method (the model), or None.
    """

    rgb: np.ndarray
    methods: dict[str, np.ndarray]
    depth_in: np.ndarray | None = None
    gt: np.ndarray | None = None
    rmse: dict[str, float] = field(default_factory=dict)
    title: str = ""
    confidence: np.ndarray | None = None


@dataclass(frozen=True)
class FigureStyle:
    """panel_height: overview rows (px). error_max_m: top of the error colour scale (metres).
    crops: how many edge windows; crop_px: their side at full resolution; crop_zoom: integer zoom."""

    panel_height: int = 240
    error_max_m: float = 0.10
    unit: DisplayUnit = METRES
    crops: int = 3
    crop_px: int = 96
    crop_zoom: int = 2


def edge_windows(depth: np.ndarray, count: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners (row, col) of up to `count` non-overlapping `size` x `size` windows holding
    the most depth-edge magnitude: the sum of neighbour steps (metres) larger than `EDGE_JUMP_REL`
    of the nearer depth. Fewer when the map has fewer edges; none when it has no edge."""
    d = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float64)
    size = min(size, *d.shape)
    jumps = np.zeros_like(d)
    for axis in (0, 1):
        a, b = (d[:-1], d[1:]) if axis == 0 else (d[:, :-1], d[:, 1:])
        step = np.abs(a - b)
        edge = np.nan_to_num(np.where(step > EDGE_JUMP_REL * np.fmin(a, b), step, 0.0))
        if axis == 0:
            jumps[:-1] += edge
        else:
            jumps[:, :-1] += edge
    ii = cv2.integral(jumps)
    score = ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]
    corners = []
    for _ in range(count):
        row, col = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[row, col] <= 0:
            break
        corners.append((int(row), int(col)))
        score[max(0, row - size + 1) : row + size, max(0, col - size + 1) : col + size] = -1.0
    return corners


def _fit(image: np.ndarray, height: int, smooth: bool) -> np.ndarray:
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if smooth else cv2.INTER_NEAREST)


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles side by side with gaps, top-aligned."""
    height = max(t.shape[0] for t in tiles)
    cells = []
    for tile in tiles:
        cell = np.full((height, tile.shape[1], 3), BACKGROUND_BGR, np.uint8)
        cell[: tile.shape[0]] = tile
        cells += [cell, np.full((height, GAP, 3), BACKGROUND_BGR, np.uint8)]
    return np.concatenate(cells[:-1], axis=1)


def _stack(blocks: list[np.ndarray]) -> np.ndarray:
    width = max(b.shape[1] for b in blocks)
    padded = []
    for block in blocks:
        pad = np.full((block.shape[0], width - block.shape[1], 3), BACKGROUND_BGR, np.uint8)
        padded += [np.concatenate([block, pad], axis=1), np.full((GAP, width, 3), BACKGROUND_BGR, np.uint8)]
    return np.concatenate(padded[:-1], axis=0)


def _value(value: float, unit: DisplayUnit) -> str:
    return f"{value:.4g} {unit.label}"


def render_preview(frame: PreviewFrame, style: FigureStyle = FigureStyle()) -> np.ndarray:
    """The figure described in the module docstring, as H x W x 3 uint8 BGR."""
    shape = frame.rgb.shape[:2]
    for name, depth in [*frame.methods.items(), ("ground truth", frame.gt), ("confidence", frame.confidence)]:
        if depth is not None and depth.shape != shape:
            raise ValueError(f"{name} is {depth.shape[::-1]} (width, height), the RGB image {shape[::-1]}")
    columns, errors = _maps(frame, style)
    reference = frame.gt if frame.gt is not None else next(iter(frame.methods.values()))
    corners = edge_windows(reference, style.crops, style.crop_px)
    overview = [_fit(image, style.panel_height, smooth=(i == 0)) for i, (_, image) in enumerate(columns)]
    _draw_crop_boxes(overview[0], corners, min(style.crop_px, *shape), style.panel_height / shape[0])
    col_width = overview[0].shape[1]
    bar_height = style.panel_height + TITLE_HEIGHT
    lo, hi = _depth_range(frame)
    depth_bar = colour_bar(lo, hi, DEPTH_COLORMAP, bar_height, f"depth {style.unit.label}", style.unit,
                           clipped_top=False)
    blocks = [_header(frame, style.unit, col_width),
              _row([titled(t, title) for t, (title, _) in zip(overview, columns)] + [depth_bar]),
              _lower_row(frame, style, errors, col_width)]
    return _stack(blocks + _crop_rows(columns + errors, corners, style, min(style.crop_px, *shape)))


def _depth_range(frame: PreviewFrame) -> tuple[float, float]:
    if frame.gt is not None and np.isfinite(frame.gt).any():
        return depth_range(frame.gt)
    return depth_range(*frame.methods.values())


def _maps(frame: PreviewFrame, style: FigureStyle) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """Full-resolution BGR maps with their titles: (RGB, input, methods, ground truth), (errors)."""
    lo, hi = _depth_range(frame)
    shape = frame.rgb.shape[:2]
    columns = [("rgb", cv2.cvtColor(np.ascontiguousarray(frame.rgb), cv2.COLOR_RGB2BGR))]
    upsampled = None
    if frame.depth_in is not None:
        upsampled = cv2.resize(frame.depth_in.astype(np.float32), shape[::-1], interpolation=cv2.INTER_NEAREST)
        title = f"input {frame.depth_in.shape[1]}x{frame.depth_in.shape[0]}"
        columns.append((title, colorize_depth(upsampled, lo, hi)))
    columns += [(name, colorize_depth(depth, lo, hi)) for name, depth in frame.methods.items()]
    errors = []
    if frame.gt is not None:
        columns.append(("ground truth", colorize_depth(frame.gt, lo, hi)))
        if upsampled is not None:
            errors.append(("|input - gt|", colorize_error(upsampled, frame.gt, style.error_max_m)))
        for name, depth in frame.methods.items():
            score = f"  RMSE {_value(frame.rmse[name], style.unit)}" if name in frame.rmse else ""
            errors.append((f"|{name} - gt|{score}", colorize_error(depth, frame.gt, style.error_max_m)))
    if frame.confidence is not None:
        model = next(iter(frame.methods))
        errors.append((f"1 - confidence ({model})", _colorize_distrust(frame.confidence, frame.methods[model])))
    return columns, errors


def _colorize_distrust(confidence: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """`1 - confidence` in the error colours (inferno, 0..1); grey where `depth` has no value."""
    distrust = 1.0 - np.clip(np.nan_to_num(confidence.astype(np.float32)), 0.0, 1.0)
    image = cv2.applyColorMap(np.rint(distrust * 255).astype(np.uint8), ERROR_COLORMAP)
    image[~np.isfinite(depth)] = NO_DATA_BGR
    return image


def _draw_crop_boxes(image: np.ndarray, corners: list[tuple[int, int]], size: int, zoom: float) -> None:
    for k, (row, col) in enumerate(corners, start=1):
        top_left = (int(col * zoom), int(row * zoom))
        cv2.rectangle(image, top_left, (int((col + size) * zoom), int((row + size) * zoom)), CROP_BOX_BGR, 1)
        put_text(image, str(k), (top_left[0] + 2, top_left[1] + 12), color=CROP_BOX_BGR)


def _lower_row(frame: PreviewFrame, style: FigureStyle, errors: list[tuple[str, np.ndarray]],
               col_width: int) -> np.ndarray:
    """The frame's figures as text, the error maps and the legend, and the error bar."""
    shape = frame.rgb.shape[:2]
    size = f"{shape[1]}x{shape[0]}"
    if frame.depth_in is not None:
        size = f"{frame.depth_in.shape[1]}x{frame.depth_in.shape[0]} -> {size}"
    stats = [size] + [f"RMSE {name}: {_value(v, style.unit)}" for name, v in frame.rmse.items()]
    legend = [(NO_DATA_BGR, "no depth / no ground truth")]
    if frame.gt is not None:
        legend.append((MISSING_BGR, "ground truth, no output"))
    legend.append((CROP_BOX_BGR, "crop (full resolution)"))
    height = style.panel_height if errors else 24 + 22 * max(len(legend), len(stats))
    tiles = [titled(text_tile(stats, col_width, height), "figures")]
    tiles += [titled(_fit(image, style.panel_height, smooth=False), title) for title, image in errors]
    tiles.append(titled(swatch_legend(legend, col_width if errors else 2 * col_width, height), "legend"))
    if frame.gt is not None:
        tiles.append(colour_bar(0.0, style.error_max_m, ERROR_COLORMAP, style.panel_height + TITLE_HEIGHT,
                                f"|error| {style.unit.label}", style.unit))
    return _row(tiles)


def _crop_rows(maps: list[tuple[str, np.ndarray]], corners: list[tuple[int, int]], style: FigureStyle,
               size: int) -> list[np.ndarray]:
    """One row per edge window: every map cut at full resolution, zoomed by an integer (nearest)."""
    rows = []
    for k, (row, col) in enumerate(corners, start=1):
        tiles = [cv2.resize(image[row : row + size, col : col + size], None, fx=style.crop_zoom, fy=style.crop_zoom,
                            interpolation=cv2.INTER_NEAREST) for _, image in maps]
        put_text(tiles[0], str(k), (4, 16), scale=0.6, color=CROP_BOX_BGR, thickness=2)
        if k == 1:
            tiles = [titled(tile, title.split("  ")[0]) for tile, (title, _) in zip(tiles, maps)]
        rows.append(_row(tiles))
    return rows


def header_text(frame: PreviewFrame, unit: DisplayUnit = METRES) -> str:
    """The figure's header line: the frame's title and each method's RMSE."""
    scores = "   ".join(f"{name} RMSE {_value(v, unit)}" for name, v in frame.rmse.items())
    return "   |   ".join(t for t in (frame.title, scores) if t)


def _header(frame: PreviewFrame, unit: DisplayUnit, min_width: int) -> np.ndarray:
    text = header_text(frame, unit)
    width = max(min_width, cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)[0][0] + 16)
    strip = np.full((30, width, 3), BACKGROUND_BGR, np.uint8)
    put_text(strip, text, (8, 21), scale=0.6, thickness=1)
    return strip
