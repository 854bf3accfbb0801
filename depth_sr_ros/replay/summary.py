"""What a replay reports: `ReplayReport` and the end-of-run table (`format_summary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depth_sr_ros.core.metrics import METRIC_NAMES
from depth_sr_ros.replay.ledger import MessageLedger
from depth_sr_ros.replay.writer import format_sizes

NOTICES = {  # warnings about data that was processed anyway, counted per pair
    "scale_ratio_mismatch": "the RGB/depth width ratio is not the scale",
    "stamp_gap_over_half_period": "the pair's stamps differ by more than half the RGB frame period",
    "metadata_count_mismatch": "topics whose metadata message count differs from what the bag holds (per topic)",
}



@dataclass
class ReplayReport:
    backbone: str
    scale: int
    pairs_processed: int
    pairs_skipped: dict[str, int]  # reason -> pairs that paired but could not be processed
    ledger: MessageLedger
    metrics: dict[str, dict[str, float]]  # method name -> mean metrics ({} without ground truth)
    frames_scored: int
    outputs: dict[str, Path]
    notices: dict[str, int] = field(default_factory=dict)  # warnings on processed data, by kind
    hints: list[str] = field(default_factory=list)  # what to change when a run went wrong
    storage_errors: list[str] = field(default_factory=list)
    frames_in_bag: int = 0
    sizes: dict[str, Any] = field(default_factory=dict)  # writer.output_sizes: bytes and MB per frame
    confidence: dict[str, Any] = field(default_factory=dict)  # metrics.json's "confidence" ({}: not scored)


def format_reasons(counts: dict[str, int]) -> str:
    """"reason n, reason n" in reason order, or "none"."""
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "none"


def format_confidence(figures: dict[str, Any]) -> str:
    """One line: the confidence's AUSE beside the RMSE, and the RMSE left after removing the
    least-confident pixels (metres, means over frames; `figures` as in metrics.json)."""
    return (f"confidence of {figures['method']} over {figures['frames']} frames: RMSE {figures['rmse_m']:.4f} m, "
            f"AUSE {figures['ause_m']:.4f} m ({figures['ause_relative']:.3f} of RMSE); removing the "
            f"{figures['removed_fraction']:.0%} least-confident pixels leaves RMSE "
            f"{figures['rmse_after_removing_m']:.4f} m (cut by {figures['rmse_cut']:.1%}; oracle "
            f"{figures['oracle_rmse_after_removing_m']:.4f} m)")


def format_summary(report: ReplayReport) -> str:
    """The end-of-run table: messages per topic, pairs, skips, metrics (backbone vs bicubic), outputs."""
    lines = ["", "messages                                      read  processed  skipped"]
    for topic, counts in report.ledger.as_dict().items():
        skipped = format_reasons(counts["skipped"]) if counts["skipped"] else "-"
        unreadable = f"  (+{counts['unreadable']} unreadable of {counts['in_bag']})" if counts["unreadable"] else ""
        unreadable += f"  (+{counts['not_read']} not read: --max-frames)" if counts["not_read"] else ""
        lines.append(f"  {topic:<42}{counts['read']:>5}{counts['processed']:>11}  {skipped}{unreadable}")
    lines.append(f"pairs processed: {report.pairs_processed}  (backbone {report.backbone}, x{report.scale})")
    lines.append("pairs skipped: " + format_reasons(report.pairs_skipped))
    lines.append("skipped messages by reason: " + format_reasons(report.ledger.skip_totals()))
    unread = sum(report.ledger.unreadable.values())
    if report.storage_errors or unread:
        lines.append(f"damaged storage: {len(report.storage_errors)} read error(s), {unread} message(s) "
                     "unreadable (read on after each damage where the storage allows)")
    if report.notices:
        lines.append("warnings: " + "; ".join(f"{kind} {n} ({NOTICES.get(kind, '')})"
                                              for kind, n in sorted(report.notices.items())))
    if report.metrics:
        lines.append(f"metrics over {report.frames_scored} frames (valid ground-truth pixels):")
        lines.append(f"  {'method':<16}{'RMSE m':>9}{'MAE m':>9}{'AbsRel':>9}{'d<1.25':>9}{'cover':>8}")
        for method, values in report.metrics.items():
            cells = "".join(f"{values[name]:>9.4f}" for name in METRIC_NAMES[:4])
            lines.append(f"  {method:<16}{cells}{values['coverage']:>8.3f}")
        if report.confidence:
            lines.append(format_confidence(report.confidence))
    else:
        lines.append("metrics: none (no ground-truth topic given or matched)")
    lines += [f"hint: {hint}" for hint in report.hints]
    lines.append("outputs: " + format_sizes(report.sizes, report.pairs_processed) if report.sizes else "outputs:")
    lines += [f"  {name:<13}{path}" for name, path in report.outputs.items()]
    return "\n".join(lines)
