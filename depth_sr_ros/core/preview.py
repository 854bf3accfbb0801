"""Colour-mapped PNG previews: depth (turbo), error maps (inferno), labelled side-by-side panels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_INVALID_BGR = (0, 0, 0)


def depth_range(*depths: np.ndarray) -> tuple[float, float]:
    """A shared colour range (metres) for several depth maps: 2nd to 98th percentile."""
    values = np.concatenate([d[np.isfinite(d) & (d > 0)].ravel() for d in depths])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [2, 98])
    return float(lo), float(max(hi, lo + 1e-3))


def colorize_depth(depth: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Depth in metres -> HxWx3 uint8 BGR (turbo, near = blue); invalid pixels black."""
    valid = np.isfinite(depth) & (depth > 0)
    scaled = np.clip((np.nan_to_num(depth) - vmin) / max(vmax - vmin, 1e-9), 0.0, 1.0)
    image = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    image[~valid] = _INVALID_BGR
    return image


def colorize_error(pred: np.ndarray, gt: np.ndarray, vmax: float) -> np.ndarray:
    """|pred - gt| in metres -> BGR (inferno, 0 .. vmax); pixels without both values black."""
    valid = np.isfinite(pred) & np.isfinite(gt) & (gt > 0)
    err = np.where(valid, np.abs(np.nan_to_num(pred) - np.nan_to_num(gt)), 0.0)
    scaled = np.clip(err / max(vmax, 1e-9), 0.0, 1.0)
    image = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
    image[~valid] = _INVALID_BGR
    return image


def side_by_side(panels: list[tuple[str, np.ndarray]], height: int = 240) -> np.ndarray:
    """Resize BGR (or RGB-as-given) panels to one height, label each, and join them left to right."""
    tiles = []
    for title, image in panels:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)
        cv2.putText(tile, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def write_png(path: str | Path, image_bgr: np.ndarray) -> Path:
    """Write a BGR uint8 image as PNG, creating parent folders; raises OSError on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image_bgr):
        raise OSError(f"could not write {path}")
    return path
