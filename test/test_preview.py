"""Preview figures: invalid pixels have colours of their own, colour bars carry labelled ticks at the
right colours, crops are full resolution around the strongest depth edges, every panel is present."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_sr_ros.core.preview import (
    DEPTH_COLORMAP,
    ERROR_COLORMAP,
    MISSING_BGR,
    NO_DATA_BGR,
    TEXT_BGR,
    DisplayUnit,
    colorize_depth,
    colorize_error,
    colour_bar,
    colour_bar_ticks,
    depth_range,
    nice_ticks,
)
from depth_sr_ros.core.preview_figure import (
    FigureStyle,
    PreviewFrame,
    edge_windows,
    header_text,
    render_preview,
)

H, W, S = 96, 128, 4


def lut(colormap: int) -> np.ndarray:
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), colormap).reshape(-1, 3).astype(int)


def contains(figure: np.ndarray, tile: np.ndarray) -> bool:
    """Whether `tile` appears in `figure` pixel for pixel."""
    scores = cv2.matchTemplate(figure, tile, cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(scores)  # the best match, then an exact comparison
    return bool((figure[y : y + tile.shape[0], x : x + tile.shape[1]] == tile).all())


def scene() -> PreviewFrame:
    """A box 1 m away in front of a 2.5 m wall, with a hole in the ground truth and in the output."""
    gt = np.full((H, W), 2.5, np.float32)
    gt[30:70, 40:90] = 1.0
    gt[5:15, 5:25] = np.nan  # no ground truth
    model = gt + np.float32(0.01)
    model[5:15, 5:25] = 2.5
    model[80:90, 100:120] = np.nan  # the model gave no depth where the ground truth has some
    bicubic = cv2.GaussianBlur(np.nan_to_num(gt, nan=2.5), (9, 9), 3)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[30:70, 40:90] = (200, 40, 40)
    return PreviewFrame(rgb, {"model": model, "bicubic": bicubic}, gt[1::S, 1::S].copy(), gt,
                        {"model": 0.0123, "bicubic": 0.0456}, "frame 7")


def test_invalid_pixels_have_colours_of_their_own() -> None:
    depth_lut, error_lut = lut(DEPTH_COLORMAP), lut(ERROR_COLORMAP)
    for colour in (NO_DATA_BGR, MISSING_BGR):
        assert np.sqrt(((error_lut - np.array(colour)) ** 2).sum(axis=1)).min() > 100
    assert np.sqrt(((depth_lut - np.array(NO_DATA_BGR)) ** 2).sum(axis=1)).min() > 100

    frame = scene()
    assert frame.gt is not None
    errors = colorize_error(frame.methods["model"], frame.gt, 0.1)
    assert (errors[5:15, 5:25] == NO_DATA_BGR).all()  # no ground truth: not scored
    assert (errors[80:90, 100:120] == MISSING_BGR).all()  # ground truth but no output: a coverage gap
    exact = colorize_error(frame.gt, frame.gt, 0.1)
    assert (exact[40, 60] == error_lut[0]).all() and (exact[40, 60] != NO_DATA_BGR).any()  # zero error != invalid
    depth = colorize_depth(frame.gt, 1.0, 2.5)
    assert (depth[5:15, 5:25] == NO_DATA_BGR).all() and (depth[40, 60] == depth_lut[0]).all()


def test_nice_ticks_are_round_and_inside_the_range() -> None:
    assert nice_ticks(0.93, 3.1) == [1.0, 1.5, 2.0, 2.5, 3.0]
    assert nice_ticks(0.0, 0.1) == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.1])
    assert nice_ticks(93.0, 310.0) == [100.0, 150.0, 200.0, 250.0, 300.0]


@pytest.mark.parametrize(("unit", "labels"), [(DisplayUnit(), ["1.0", "1.5", "2.0", "2.5", "3.0"]),
                                              (DisplayUnit("cm", 100.0), ["100", "150", "200", "250", "300"])])
def test_colour_bar_ticks_are_labelled_in_the_unit_at_their_colours(unit: DisplayUnit, labels: list[str]) -> None:
    vmin, vmax, height = 0.93, 3.1, 262
    bar = colour_bar(vmin, vmax, DEPTH_COLORMAP, height, f"depth {unit.label}", unit, clipped_top=False)
    ticks = colour_bar_ticks(vmin, vmax, height, unit, clipped_top=False)
    assert [label for _, _, label in ticks] == labels
    depth_lut = lut(DEPTH_COLORMAP)
    for row, metres, _ in ticks:
        expected = depth_lut[round((metres - vmin) / (vmax - vmin) * 255)]
        assert np.abs(bar[row, 4].astype(int) - expected).max() <= 12  # the ramp's colour at the tick's value
        assert (bar[row, 21] == TEXT_BGR).all()  # the tick mark
        label_box = bar[row - 6 : row + 3, 27:]
        assert (label_box.sum(axis=2) < 300).sum() > 10  # dark label text beside it


def test_error_bar_says_values_beyond_its_top_share_the_top_colour() -> None:
    ticks = colour_bar_ticks(0.0, 0.1, 262)
    assert ticks[0][2] == "0.00" and ticks[-1][2] == ">=0.10"


def test_edge_windows_find_the_largest_depth_edges() -> None:
    depth = np.full((H, W), 2.0, np.float32)
    depth[:, 100:] = 4.0  # a 2 m step at column 100 ...
    depth[10:20, 10:20] = 2.02  # ... and a 1% bump, below the edge threshold
    corners = edge_windows(depth, count=3, size=32)
    assert corners and all(c <= 99 < c + 32 for _, c in corners)  # every window straddles the step
    for i, (r1, c1) in enumerate(corners):  # and they do not overlap
        for r2, c2 in corners[i + 1 :]:
            assert abs(r1 - r2) >= 32 or abs(c1 - c2) >= 32
    assert edge_windows(np.full((H, W), 2.0, np.float32), count=3, size=32) == []


def test_figure_holds_every_panel_both_colour_bars_and_full_resolution_crops() -> None:
    frame = scene()
    assert frame.gt is not None
    style = FigureStyle(panel_height=96, crops=2, crop_px=24, crop_zoom=2)
    figure = render_preview(frame, style)
    lo, hi = depth_range(frame.gt)
    bar_height = style.panel_height + 22
    assert contains(figure, colour_bar(lo, hi, DEPTH_COLORMAP, bar_height, "depth m", clipped_top=False))
    assert contains(figure, colour_bar(0.0, style.error_max_m, ERROR_COLORMAP, bar_height, "|error| m"))
    for row, col in edge_windows(frame.gt, style.crops, style.crop_px):
        window = np.s_[row : row + style.crop_px, col : col + style.crop_px]
        for image in (colorize_depth(frame.methods["bicubic"], lo, hi)[window],
                      colorize_error(frame.methods["model"], frame.gt, style.error_max_m)[window]):
            zoomed = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            assert contains(figure, zoomed[3:-3, 3:-3])  # every source pixel, none averaged away
    assert (figure == MISSING_BGR).all(axis=2).sum() > 0 and (figure == NO_DATA_BGR).all(axis=2).sum() > 0


def test_the_frames_rmse_is_written_in_the_header() -> None:
    frame = scene()
    assert header_text(frame) == "frame 7   |   model RMSE 0.0123 m   bicubic RMSE 0.0456 m"
    assert header_text(frame, DisplayUnit("cm", 100.0)).endswith("bicubic RMSE 0.0456 cm")  # as scored, unconverted
    plain = render_preview(PreviewFrame(frame.rgb, frame.methods, frame.depth_in, frame.gt, {}, "frame 7"))
    scored = render_preview(frame)
    assert plain.shape == scored.shape and (plain[:30] != scored[:30]).any()


def test_figure_without_ground_truth_has_no_error_row() -> None:
    frame = scene()
    figure = render_preview(PreviewFrame(frame.rgb, frame.methods, frame.depth_in, None, {}, "no truth"))
    assert not (figure == MISSING_BGR).all(axis=2).any()
    assert figure.shape[0] < render_preview(frame).shape[0]


def test_mismatched_sizes_are_refused() -> None:
    frame = scene()
    with pytest.raises(ValueError, match="model"):
        render_preview(PreviewFrame(frame.rgb, {"model": np.ones((H, W + 1), np.float32)}))
