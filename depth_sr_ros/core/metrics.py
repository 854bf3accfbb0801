"""Depth accuracy metrics in metres, on pixels where the ground truth is valid.

Pixels where the prediction is NaN (a hole the method left open) are excluded from the error
terms and reported through `coverage`, so a method cannot look better by refusing to answer
without that showing.
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("rmse", "mae", "absrel", "delta1", "coverage")


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """RMSE, MAE (metres), AbsRel, delta<1.25 and coverage of `pred` against `gt`.

    `valid` defaults to finite, positive `gt`. Returns NaN errors when no pixel can be scored.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    gt_valid = np.isfinite(gt) & (gt > 0) if valid is None else valid & np.isfinite(gt)
    scored = gt_valid & np.isfinite(pred)
    n_gt = int(gt_valid.sum())
    n = int(scored.sum())
    coverage = n / n_gt if n_gt else float("nan")
    if n == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "absrel": float("nan"),
                "delta1": float("nan"), "coverage": coverage}
    p = pred[scored].astype(np.float64)
    g = gt[scored].astype(np.float64)
    err = p - g
    ratio = np.maximum(p / g, g / np.maximum(p, 1e-9))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "absrel": float(np.mean(np.abs(err) / g)),
        "delta1": float(np.mean(ratio < 1.25)),
        "coverage": coverage,
    }


def mean_metrics(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over frames, ignoring frames where it is NaN."""
    out: dict[str, float] = {}
    for name in METRIC_NAMES:
        values = np.array([m[name] for m in per_frame if name in m], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[name] = float(values.mean()) if values.size else float("nan")
    return out
