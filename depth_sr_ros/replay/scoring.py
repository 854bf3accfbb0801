"""Per processed frame: the scale check, scoring against ground truth (beside the baseline), the
sparsification curve of the model's confidence (its running mean over the replay), and the preview offer. A mixin of `ReplayRunner`, which provides `_run` (a pair through a
`FrameProcessor`) and `_warn` (rate-limited warnings); depths are metres.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from depth_sr_ros.core.errors import FrameError
from depth_sr_ros.core.frame_processor import FrameOutput, FrameProcessor
from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image
from depth_sr_ros.core.metrics import depth_metrics
from depth_sr_ros.core.preview_figure import PreviewFrame
from depth_sr_ros.core.sparsification import CurveMean, sparsification
from depth_sr_ros.core.sync import Pair
from depth_sr_ros.replay.config import BASELINE, PREVIEW_FOLDER, ReplayConfig
from depth_sr_ros.replay.previews import PreviewEntry, PreviewPlan
from depth_sr_ros.replay.report import ErrorHistogram

CONFIDENCE_CUT = 0.1  # the fraction removed for "RMSE left after removing the least-confident 10 %"


class FrameScoring:
    """Scores and previews processed frames; state lives on the `ReplayRunner` it is mixed into."""

    config: ReplayConfig
    backbone: str
    baseline: FrameProcessor | None
    frame_metrics: dict[str, list[dict[str, float]]]  # method -> per-frame metrics
    histogram: ErrorHistogram
    confidence_curves: CurveMean  # the model's per-frame sparsification curves, averaged
    previews: PreviewPlan
    notices: Counter[str]
    full_resolution: str  # the log line when depth near the colour resolution is processed at scale 1
    _run: Callable[..., FrameOutput]
    _warn: Callable[[str, str], None]

    def _check_scale(self, pair: Pair, row: dict[str, Any]) -> None:
        """Count and warn when the RGB/depth width ratio is not `scale` (depth image input only)."""
        if self.config.lidar_topic or self.config.unaligned_depth:
            return  # another camera or a cloud: its size says nothing about the scale
        rgb_width = int(getattr(pair.rgb.payload, "width", 0) or 0)  # CompressedImage: no size before decoding
        depth_width = int(getattr(pair.depth.payload, "width", 0) or 0)
        if rgb_width <= 0 or depth_width <= 0:
            return  # compressed, or a broken image (the decoder says why)
        ratio, scale = rgb_width / depth_width, self.config.sr.scale
        row["width_ratio"] = round(ratio, 3)
        if abs(ratio - scale) <= 0.05 * scale:
            return
        self.notices["scale_ratio_mismatch"] += 1
        effect = (f"the depth is reduced to 1/{(scale / ratio) ** 2:.0f} of its samples first" if scale > ratio
                  else "the depth is resampled up before the network")
        self._warn("scale_ratio_mismatch", f"RGB {rgb_width} px wide over depth {depth_width} px is a x{ratio:.3g} "
                   f"ratio but the scale is x{scale}: {effect}; use --scale {round(ratio)} if that is a shipped "
                   "scale")

    def _score(self, pair: Pair, rgb_info: Any, depth_info: Any, gt: Any, out: FrameOutput, row: dict[str, Any],
               gt_problem: FrameError | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Score the frame (and the baseline on it) against ground truth: (ground truth, baseline
        depth), both metres, None when the frame has no usable ground truth."""
        if gt_problem is not None:
            row["gt"] = gt_problem.reason
            self._warn(gt_problem.reason, f"frame at {pair.rgb.stamp_ns} not scored: {gt_problem}")
            return None, None
        if gt is None:
            row["gt"] = "none"
            return None, None
        try:
            gt_depth = depth_from_image(gt[1])
            if gt_depth.shape != out.depth.shape:
                raise FrameError("size_mismatch", f"ground truth {gt_depth.shape[::-1]} differs from the output "
                                 f"{out.depth.shape[::-1]} (width, height)")
        except FrameError as err:
            row["gt"] = err.reason
            self._warn(f"ground_truth_{err.reason}", f"frame at {pair.rgb.stamp_ns} not scored: {err}")
            return None, None
        row["gt"] = "ok"
        depths = {self.backbone: out.depth}
        if self.baseline is not None:
            depths[BASELINE] = self._run(self.baseline, pair, rgb_info, depth_info, want_points=False).depth
        for method, depth in depths.items():
            values = depth_metrics(depth, gt_depth)
            self.frame_metrics[method].append(values)
            self.histogram.add(method, depth, gt_depth)
            row.update({f"{method}_{name}": round(v, 6) for name, v in values.items()})
        self._score_confidence(out, gt_depth, row)
        return gt_depth, depths.get(BASELINE)

    def _score_confidence(self, out: FrameOutput, gt_depth: np.ndarray, row: dict[str, Any]) -> None:
        """The frame's sparsification curve of the model's confidence (core/sparsification.py), on
        the pixels its RMSE is scored on, into the replay's mean; its AUSE (metres) and relative
        RMSE cut at `CONFIDENCE_CUT` removed go into frames.csv."""
        if out.confidence is None:
            return
        try:
            curve = sparsification(out.depth, gt_depth, out.confidence)
        except ValueError:  # no pixel with both output and ground truth: the frame's RMSE is NaN too
            return
        self.confidence_curves.add(curve)
        row[f"{self.backbone}_ause"] = round(curve.ause, 6)
        row[f"{self.backbone}_rmse_cut_{round(CONFIDENCE_CUT * 100)}pct"] = round(curve.rmse_cut(CONFIDENCE_CUT), 6)

    def _offer_preview(self, index: int, pair: Pair, rgb_info: Any, depth_info: Any, out: FrameOutput,
                       gt_depth: np.ndarray | None, base_depth: np.ndarray | None, row: dict[str, Any]) -> None:
        rmse = {m: row[f"{m}_rmse"] for m in (self.backbone, BASELINE) if f"{m}_rmse" in row}
        name = f"frame_{row['frame']:04d}_{pair.rgb.stamp_ns}.png"
        entry = PreviewEntry(row["frame"], pair.rgb.stamp_ns, rmse, Path(PREVIEW_FOLDER) / name)

        def make() -> PreviewFrame:
            methods = {self.backbone: out.depth}
            if self.baseline is not None:
                methods[BASELINE] = base_depth if base_depth is not None else self._run(
                    self.baseline, pair, rgb_info, depth_info, want_points=False).depth
            depth_in = None if self.config.lidar_topic else depth_from_image(pair.depth.payload)
            title = f"frame {row['frame']}   {pair.rgb.stamp_ns / 1e9:.3f} s   {self.backbone} x{self.config.sr.scale}"
            if self.full_resolution:  # depth near the colour resolution (full_resolution.py)
                title += "   registered and refined at full resolution, not decimated"
            return PreviewFrame(rgb_from_image(pair.rgb.payload), methods, depth_in, gt_depth, rmse, title,
                                out.confidence)

        self.previews.offer(index, entry, rmse.get(self.backbone), make)
