"""Sparsification curves: how well a confidence map orders a depth map's errors.

Remove the least-confident fraction `f` of the scored pixels and take the RMSE of the rest; do
the same in the oracle order (largest true error first). A confidence that ranks errors well
gives a curve that falls fast and stays near the oracle's. Following Ilg et al. (ECCV 2018,
"Uncertainty estimates and multi-hypotheses networks for optical flow") and Poggi et al. (CVPR
2020, monocular depth):

- `rmse[i]`: RMSE (metres) of the pixels left after removing `fractions[i]` of them, least
  confident first (ties in confidence: the later pixel in raster order goes first);
- `oracle[i]`: the same, largest absolute error first;
- AUSE, the area under `rmse - oracle` over the removed fraction (trapezoids on `fractions`,
  metres); `ause_relative` divides it by the RMSE of all pixels, so frames of different error
  levels weigh alike.

Scored pixels are those where the prediction, the ground truth and the confidence are all finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_FRACTIONS = tuple(np.round(np.arange(0.0, 1.0, 0.02), 2))  # 0, 0.02, ..., 0.98


@dataclass
class SparsificationCurve:
    """RMSE left after removing fractions of the pixels (metres), by confidence and by oracle."""

    fractions: np.ndarray
    rmse: np.ndarray
    oracle: np.ndarray
    pixels: int

    @property
    def ause(self) -> float:
        """Area under `rmse - oracle` over the removed fraction, metres."""
        gap = self.rmse - self.oracle
        return float(np.sum((gap[1:] + gap[:-1]) * np.diff(self.fractions)) / 2)  # trapezoids

    @property
    def ause_relative(self) -> float:
        """AUSE divided by the RMSE of all scored pixels (0 when that RMSE is 0)."""
        return self.ause / self.rmse[0] if self.rmse[0] > 0 else 0.0

    def rmse_cut(self, fraction: float) -> float:
        """Relative RMSE reduction, `1 - rmse(fraction) / rmse(0)`, at one of `fractions`."""
        index = _index_of(self.fractions, fraction)
        return 1.0 - self.rmse[index] / self.rmse[0] if self.rmse[0] > 0 else 0.0


def sparsification(
    prediction: np.ndarray,
    ground_truth: np.ndarray,
    confidence: np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> SparsificationCurve:
    """The sparsification curve of one depth map (metres, NaN invalid) and its confidence.

    `fractions` must start at 0, increase, and stay below 1. Raises ValueError when no pixel can
    be scored or the shapes differ.
    """
    if not (prediction.shape == ground_truth.shape == confidence.shape):
        raise ValueError(
            f"prediction {prediction.shape}, ground truth {ground_truth.shape} and confidence "
            f"{confidence.shape} must have one shape"
        )
    steps = np.asarray(fractions, dtype=np.float64)
    if steps.ndim != 1 or steps.size == 0 or steps[0] != 0 or np.any(np.diff(steps) <= 0) or steps[-1] >= 1:
        raise ValueError("fractions must start at 0, increase and stay below 1")
    scored = np.isfinite(prediction) & np.isfinite(ground_truth) & np.isfinite(confidence)
    if not scored.any():
        raise ValueError("no pixel with a finite prediction, ground truth and confidence to score")
    error = (prediction[scored].astype(np.float64) - ground_truth[scored].astype(np.float64)) ** 2
    # Kept pixels: the most confident first, so the kept set after removing the k least confident
    # is a prefix of this order.
    by_confidence = np.argsort(-confidence[scored].astype(np.float64), kind="stable")
    by_error = np.argsort(error, kind="stable")
    return SparsificationCurve(
        fractions=steps,
        rmse=_rmse_of_prefixes(error[by_confidence], steps),
        oracle=_rmse_of_prefixes(error[by_error], steps),
        pixels=int(error.size),
    )


@dataclass
class SparsificationSummary:
    """Per-frame curves averaged over frames (each frame weighs alike), and their AUSE."""

    fractions: np.ndarray
    rmse: np.ndarray
    oracle: np.ndarray
    frames: int
    ause: float
    ause_relative: float
    rmse_cut: dict[float, float] = field(default_factory=dict)

    def left_at(self, fraction: float) -> tuple[float, float]:
        """The mean RMSE (metres) left after removing `fraction` (one of `fractions`) of the pixels:
        least confident first, and largest error first (the oracle)."""
        index = _index_of(self.fractions, fraction)
        return float(self.rmse[index]), float(self.oracle[index])

    def curve_dict(self) -> dict[str, list[float]]:
        """The mean curves for JSON: fractions removed, RMSE left by confidence and by oracle (metres)."""
        return {"fractions": self.fractions.tolist(), "rmse_m": self.rmse.tolist(), "oracle_m": self.oracle.tolist()}


class CurveMean:
    """Running mean of per-frame curves in constant memory (a replay of any length): `add` each
    frame's curve, `summary()` the mean so far. `cut_fractions`: where the mean relative RMSE
    reduction is kept (each must be one of the curves' fractions)."""

    def __init__(self, cut_fractions: Sequence[float] = (0.1,)) -> None:
        self.cut_fractions = tuple(cut_fractions)
        self.frames = 0
        self._fractions: np.ndarray | None = None
        self._rmse_sum = np.zeros(0)
        self._oracle_sum = np.zeros(0)
        self._ause_sum = 0.0
        self._ause_relative_sum = 0.0
        self._cut_sums = dict.fromkeys(self.cut_fractions, 0.0)

    def add(self, curve: SparsificationCurve) -> None:
        """Count one frame's curve in; ValueError when its fractions differ from the first's."""
        if self._fractions is None:
            self._fractions = curve.fractions
            self._rmse_sum = np.zeros_like(curve.rmse)
            self._oracle_sum = np.zeros_like(curve.oracle)
        elif not np.array_equal(curve.fractions, self._fractions):
            raise ValueError("the curves must share their fractions")
        cuts = {f: curve.rmse_cut(f) for f in self.cut_fractions}  # checks them before anything is counted
        self._rmse_sum += curve.rmse
        self._oracle_sum += curve.oracle
        self._ause_sum += curve.ause
        self._ause_relative_sum += curve.ause_relative
        for fraction, cut in cuts.items():
            self._cut_sums[fraction] += cut
        self.frames += 1

    def summary(self) -> SparsificationSummary:
        """The mean curve and mean per-frame figures; ValueError before any curve was added."""
        if self._fractions is None:
            raise ValueError("no sparsification curve to summarise")
        n = self.frames
        return SparsificationSummary(
            fractions=self._fractions,
            rmse=self._rmse_sum / n,
            oracle=self._oracle_sum / n,
            frames=n,
            ause=self._ause_sum / n,
            ause_relative=self._ause_relative_sum / n,
            rmse_cut={f: total / n for f, total in self._cut_sums.items()},
        )


def summarise(curves: Sequence[SparsificationCurve], cut_fractions: Sequence[float] = (0.1,)) -> SparsificationSummary:
    """Mean curve and mean per-frame AUSE of `curves` (all on the same fractions); `rmse_cut` is
    the mean per-frame relative RMSE reduction at each of `cut_fractions`."""
    mean = CurveMean(cut_fractions)
    for curve in curves:
        mean.add(curve)
    return mean.summary()


def _rmse_of_prefixes(squared_errors: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """RMSE of the first `n - round(f * n)` values (at least one) for each fraction `f`."""
    total = squared_errors.size
    kept = np.maximum(total - np.rint(fractions * total).astype(np.int64), 1)
    sums = np.cumsum(squared_errors)
    return np.sqrt(sums[kept - 1] / kept)


def _index_of(fractions: np.ndarray, fraction: float) -> int:
    matches = np.flatnonzero(np.isclose(fractions, fraction))
    if matches.size == 0:
        raise ValueError(f"fraction {fraction} is not one of the curve's fractions")
    return int(matches[0])
