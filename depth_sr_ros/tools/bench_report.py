"""`depth-sr bench`'s reports: BENCHMARKS.md-style tables and the summary printed at the end."""

from __future__ import annotations

from typing import Any

from depth_sr_ros.tools.bench_machine import machine_label
from depth_sr_ros.tools.bench_record import OVERHEAD_STAGES


def markdown(records: list[dict[str, Any]], machine: dict[str, Any], command: str, skipped: list[str]) -> str:
    """Two tables (totals, then overhead stages against their copy baselines) naming the machine."""
    lines = [
        f"Machine: {machine_label(machine)} [{machine['cpu_detail']}]; {machine['backend_cpu_threads']} inference thread(s); torch {machine['torch']}, "
        f"onnxruntime {machine['onnxruntime']}, numpy {machine['numpy']}, OpenCV {machine['opencv']}"
        + (f", TensorRT {machine['tensorrt']}" if machine.get("tensorrt") else "")
        + f". Load average {machine['load_average_1min']} before, {machine['load_average_1min_after']} after.",
        "",
        f"Command: `{command}`",
        "",
        (
            "| backbone | backend (runs on) | output | scale | network ms (p90) | bicubic ms | overhead ms (p90) "
            "| copy baseline ms | overhead / copy | FPS | peak RSS MB |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['backbone']}{' (untrained)' if r['untrained'] else ''} | {r['backend']} ({r['backend_detail']}) "
            f"| {r['width']}x{r['height']} | x{r['scale']} | {r['network_ms']:.2f} ({r['network_p90_ms']:.2f}) "
            f"| {r['bicubic_baseline_ms']:.2f} | {r['overhead_ms']:.2f} ({r['overhead_p90_ms']:.2f}) "
            f"| {r['copy_baseline_ms']:.3f} | {r['overhead_vs_copy']:.1f} | {r['fps']:.1f} "
            f"| {r['memory']['rss_peak_mb']:.0f} |"
        )
    lines += [
        "",
        "Overhead stages, median ms (numpy copy of the stage's bytes read + written, ms):",
        "",
        "| backbone | backend | scale | " + " | ".join(OVERHEAD_STAGES) + " |",
        "|---|---|---|" + "---|" * len(OVERHEAD_STAGES),
    ]
    for r in records:
        cells = [f"{r['stages_ms'][s]:.2f} ({r['stage_copy_baseline_ms'][s]:.3f})" for s in OVERHEAD_STAGES]
        lines.append(f"| {r['backbone']} | {r['backend']} | x{r['scale']} | " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Not measured: " + "; ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


def summary(records: list[dict[str, Any]]) -> str:
    rows = [
        f"{r['backbone']:>16} {r['backend']:>12} x{r['scale']:<2} network {r['network_ms']:8.2f} ms  "
        f"overhead {r['overhead_ms']:6.2f} ms ({r['overhead_vs_copy']:.0f}x copy)  {r['fps']:6.1f} FPS"
        for r in records
    ]
    return "\n".join(rows)
