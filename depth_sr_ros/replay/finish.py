"""The end of a replay: frames.csv with stamp gaps, the hints for runs that went wrong, the
confidence's sparsification curve (sparsification.png), report.html, metrics.json and the
`ReplayReport`. A mixin of `ReplayRunner`, whose state it reads.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from depth_sr_ros.core.metrics import mean_metrics
from depth_sr_ros.core.sparsification import CurveMean
from depth_sr_ros.core.sparsification_plot import write_sparsification_png
from depth_sr_ros.core.sync import frame_period_ns, nearest_distances_ns
from depth_sr_ros.replay.config import (
    BASELINE,
    METRICS_JSON,
    PREVIEW_FOLDER,
    REPORT_HTML,
    SPARSIFICATION_PNG,
    ReplayConfig,
)
from depth_sr_ros.replay.frame_log import FrameLog
from depth_sr_ros.replay.ledger import MessageLedger
from depth_sr_ros.replay.previews import PreviewPlan
from depth_sr_ros.replay.report import ErrorHistogram, ReportInputs, write_report
from depth_sr_ros.replay.residual import Residual
from depth_sr_ros.replay.scoring import CONFIDENCE_CUT
from depth_sr_ros.replay.summary import ReplayReport, format_reasons
from depth_sr_ros.replay.writer import output_sizes

LOG = logging.getLogger(__name__)

PAIR_SKIP_FLAGS = {  # a pair skip reason -> the flag that fixes it, for runs that processed nothing
    "missing_camera_info": "--rgb-info-topic and --depth-info-topic name the CameraInfo topics (--depth-info-topic "
                           "'' for depth registered to the colour camera without its own)",
    "unregistered_depth": "--unaligned-depth registers depth from another camera (with --extrinsic or the bag's "
                          "/tf_static); --assume-registered if the depth is registered after all",
    "no_transform": "--extrinsic gives the depth sensor's transform where the bag's /tf_static and /tf have none",
    "no_points_in_view": "--extrinsic maps the sensor frame to the colour optical frame: check its direction",
    "oversize": "--max-image-pixels raises the pixel limit for larger images",
    "aspect_mismatch": "--depth-topic and --rgb-topic must be the same camera's views (or --unaligned-depth)",
}


class ReplayFinish:
    """Writes a replay's outputs once the bag is read; state lives on the `ReplayRunner` it is mixed into."""

    config: ReplayConfig
    backbone: str
    frame_log: FrameLog
    ledger: MessageLedger
    previews: PreviewPlan
    histogram: ErrorHistogram
    confidence_curves: CurveMean
    frame_metrics: dict[str, list[dict[str, float]]]
    pairs_processed: int
    pairs_skipped: Counter[str]
    notices: Counter[str]
    stamps: dict[str, list[int]]
    storage_errors: list[str]
    slop_ns: int
    residual: Residual  # --registration's decision (replay/residual.py)

    def _write_frames_csv(self) -> Path:
        """frames.csv, with each pair's stamp gap; counts the pairs whose stamps differ by more than
        half the observed RGB frame period."""
        period = frame_period_ns(self.stamps["rgb"])
        if not period:
            return self.frame_log.finish()

        def stamp_gap(row: dict[str, Any]) -> dict[str, Any]:
            gap = abs(row["rgb_stamp_ns"] - row["depth_stamp_ns"])
            if gap > period / 2:
                self.notices["stamp_gap_over_half_period"] += 1
            return {"stamp_gap_ms": round(gap / 1e6, 3)}

        path = self.frame_log.finish(stamp_gap, ("stamp_gap_ms",))
        late = self.notices["stamp_gap_over_half_period"]
        if late:
            LOG.warning("%d pair(s) have stamps further apart than half the RGB frame period (%.1f ms): with a slop "
                        "of %.1f ms a depth frame can pair with a neighbouring RGB frame, e.g. after a dropped "
                        "frame; frames.csv has stamp_gap_ms per pair. A slop under %.1f ms prevents it",
                        late, period / 1e6, self.slop_ns / 1e6, period / 2e6)
        return path

    def _hints(self) -> list[str]:
        """What to change, for runs that paired or scored nothing."""
        hints = []
        rgb, depth = self.stamps["rgb"], self.stamps["depth"]
        if not self.frame_log.count and rgb and depth:
            gaps = nearest_distances_ns(depth, rgb)
            nearest, median = min(gaps) / 1e6, sorted(gaps)[len(gaps) // 2] / 1e6
            if self.config.exact_sync:
                hints.append(f"nothing paired: --exact-sync pairs equal stamps only, and the nearest RGB and "
                             f"depth stamps are {nearest:.3f} ms apart; use approximate sync (--slop)")
            else:
                hints.append(f"nothing paired: the nearest RGB and depth stamps are {nearest:.3f} ms apart (median "
                             f"{median:.3f} ms) but --slop is {self.config.slop_s * 1e3:.3f} ms; raise --slop above "
                             "the usual offset (keep it under half the frame period), or check that both topics "
                             "are stamped by the same clock")
        elif not self.frame_log.count:
            hints.append(f"nothing paired: {len(rgb)} RGB and {len(depth)} depth message(s) had usable stamps; "
                         "see the skip reasons above")
        elif not self.pairs_processed:  # paired, but every pair was refused: the flag for each reason
            hints += [f"nothing processed: {n} pair(s) skipped as {reason}; {PAIR_SKIP_FLAGS[reason]}"
                      for reason, n in sorted(self.pairs_skipped.items()) if reason in PAIR_SKIP_FLAGS]
        if self.config.gt_topic and self.pairs_processed and not self.frame_metrics:
            reasons = dict(self.frame_log.gt_outcomes)
            hints.append(f"no frame scored against {self.config.gt_topic} ({format_reasons(reasons)}): ground truth "
                         "needs the depth stamp (within --slop) and the RGB resolution")
        return hints

    def _confidence_figures(self, out_dir: Path, outputs: dict[str, Path]) -> dict[str, Any]:
        """Write sparsification.png (into `outputs`) and return the figures for metrics.json: the
        mean over scored frames of each frame's sparsification curve, AUSE and RMSE cut, as
        `depth-sr confidence` reports them; {} when no frame was scored with a confidence."""
        if not self.confidence_curves.frames:
            return {}
        mean = self.confidence_curves.summary()
        title = (f"{self.backbone} x{self.config.sr.scale} confidence, {mean.frames} frames of "
                 f"{Path(self.config.bag).name}")
        outputs["curve_png"] = write_sparsification_png(out_dir / SPARSIFICATION_PNG, mean, title, mean.ause)
        left, oracle_left = mean.left_at(CONFIDENCE_CUT)
        return {
            "method": self.backbone,
            "frames": mean.frames,
            "averaging": "per frame: each frame's curve, AUSE and cut over its scored pixels; here their means "
                         "(each frame weighs alike)",
            "min_confidence": self.config.output.min_confidence,  # above 0: pixels below it were invalid, unscored
            "rmse_m": _json_number(mean.rmse[0]),
            "ause_m": _json_number(mean.ause),
            "ause_relative": _json_number(mean.ause_relative),
            "removed_fraction": CONFIDENCE_CUT,  # the least-confident pixels removed for the next three
            "rmse_after_removing_m": _json_number(left),
            "rmse_cut": _json_number(mean.rmse_cut[CONFIDENCE_CUT]),
            "oracle_rmse_after_removing_m": _json_number(oracle_left),
            "curve": {name: [_json_number(v) for v in values] for name, values in mean.curve_dict().items()},
            "units": "rmse, ause: metres; ause_relative: AUSE over each frame's RMSE; rmse_cut: 1 - RMSE left / "
                     "RMSE; curve: RMSE left after removing each fraction, least confident (rmse_m) or largest "
                     "error (oracle_m) first",
        }

    def _finish(self, out_dir: Path, bag_out: Path, frames_in_bag: int) -> ReplayReport:
        frames_csv = self._write_frames_csv()
        hints = self._hints()
        for hint in hints:
            LOG.warning("%s", hint)
        metrics = {method: mean_metrics(values) for method, values in self.frame_metrics.items()}
        frames_scored = len(self.frame_metrics.get(self.backbone, []))
        outputs = {"bag": bag_out, "frames_csv": frames_csv, "report_html": out_dir / REPORT_HTML}
        if self.config.previews:
            outputs["previews"] = out_dir / PREVIEW_FOLDER
        worst = self.previews.finish()
        confidence = self._confidence_figures(out_dir, outputs)
        ok_rows = [row for row in self.frame_log.rows() if row.get("status") == "ok"]  # once, for the report
        self.frame_log.discard()
        write_report(outputs["report_html"], ReportInputs(
            bag=str(self.config.bag), backbone=self.backbone, scale=self.config.sr.scale, rows=ok_rows,
            methods=list(metrics), metrics=metrics, histogram=self.histogram, worst=worst,
            sampled=self.previews.sampled, sample_every=self.previews.every, skipped=self.ledger.skip_totals(),
            confidence=confidence, confidence_png=SPARSIFICATION_PNG if confidence else "",
            facts=[(f"{self.pairs_processed} frames processed, {frames_scored} scored, {frames_in_bag} in the "
                    "output bag" + (f" (one in {self.config.every})" if self.config.every > 1 else "")),
                   "pairs skipped: " + format_reasons(dict(self.pairs_skipped))]))
        sizes = output_sizes(outputs, self.pairs_processed)
        outputs["metrics_json"] = out_dir / METRICS_JSON
        summary = {
            "bag": str(self.config.bag),
            "backbone": self.backbone,
            "baseline": BASELINE,
            "scale": self.config.sr.scale,
            "pairs_processed": self.pairs_processed,
            "pairs_skipped": dict(self.pairs_skipped),
            "frames_scored": frames_scored,
            "frames_in_bag": frames_in_bag,
            "metrics": {m: {k: _json_number(v) for k, v in values.items()} for m, values in metrics.items()},
            "metric_units": "rmse, mae: metres; absrel, delta1 (delta < 1.25), coverage: fractions",
            "confidence": confidence,  # the model's confidence scored by sparsification ({} without ground truth)
            "mean_timings_ms": self.frame_log.mean_timings_ms(),
            "messages": self.ledger.as_dict(),
            "skipped_messages": self.ledger.skip_totals(),
            "unreadable_messages": sum(self.ledger.unreadable.values()),
            "not_read_messages": sum(self.ledger.not_read.values()),  # after max_frames
            "storage_errors": self.storage_errors,
            "notices": dict(self.notices),
            "hints": hints,
            "sync": {"policy": "exact" if self.config.exact_sync else "approximate",
                     "queue_size": self.config.queue_size, "slop_s": self.config.slop_s},
            "output": {"encoding": self.config.output.output_encoding, "points": self.config.points,
                       "every": self.config.every, "max_frames": self.config.max_frames,
                       "previews": len(self.previews.written),
                       "worst_frames": [entry.frame for entry in worst]},
            "output_sizes": {**sizes, "note": "every output but metrics.json"},
            "registration": self.residual.report,
        }
        outputs["metrics_json"].write_text(json.dumps(summary, indent=2) + "\n")
        if not (self.ledger.balanced() and self.ledger.complete()):  # a bug, not a bad input
            raise RuntimeError(f"message accounting does not balance: {self.ledger.as_dict()}")
        return ReplayReport(self.backbone, self.config.sr.scale, self.pairs_processed, dict(self.pairs_skipped),
                            self.ledger, metrics, frames_scored, outputs, dict(self.notices), hints,
                            self.storage_errors, frames_in_bag, sizes, confidence)



def _json_number(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)
