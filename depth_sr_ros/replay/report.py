"""`report.html` of a replay: mean metrics, RMSE over time, the per-pixel error histogram, the
confidence's sparsification curve (`sparsification.png` beside the page), time per frame, the worst frames and the sampled frames with their previews, and the skipped messages.

Self-contained: CSS and charts (SVG) are inline, nothing is fetched from a network or needs a
server. The previews are the PNG files beside the page (`previews/...`, relative links), so the
page opens from disk as long as the output folder stays together; a few lines of inline script
put a notice on the page when a preview does not load, and record on `<body>` how many loaded
(`data-images-loaded`, `data-images-broken`), which the tests read in a headless browser.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from depth_sr_ros.core.metrics import METRIC_NAMES
from depth_sr_ros.core.preview import format_tick, nice_ticks
from depth_sr_ros.replay.previews import PreviewEntry
from depth_sr_ros.replay.summary import format_confidence

HIST_EDGES_M = np.round(np.linspace(0.0, 0.20, 41), 6)  # 5 mm bins; larger errors are counted apart
WITHIN_M = (0.01, 0.05)  # the report states the share of pixels within these errors
CHART_W, CHART_H = 760, 260
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 70, 36, 30, 46
SERIES_CLASSES = ("s0", "s1", "s2", "s3")  # model, baseline, ...: colours in the style sheet


class ErrorHistogram:
    """Per-pixel |error| counts per method over every scored frame: `HIST_EDGES_M` bins (metres)
    and an overflow count beyond the last edge. Pixels are those with ground truth and output."""

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {}
        self.overflow: dict[str, int] = {}

    def add(self, method: str, pred: np.ndarray, gt: np.ndarray) -> None:
        valid = np.isfinite(pred) & np.isfinite(gt) & (gt > 0)
        err = np.abs(pred[valid].astype(np.float64) - gt[valid])
        inside = err[err <= HIST_EDGES_M[-1]]
        counts = np.histogram(inside, bins=HIST_EDGES_M)[0]
        self.counts[method] = self.counts.get(method, np.zeros_like(counts)) + counts
        self.overflow[method] = self.overflow.get(method, 0) + int(err.size - inside.size)

    def total(self, method: str) -> int:
        return int(self.counts[method].sum()) + self.overflow[method]

    def share_within(self, method: str, limit_m: float) -> float:
        """Share of pixels with |error| below `limit_m` (a bin edge)."""
        edge = int(np.searchsorted(HIST_EDGES_M, limit_m - 1e-9))
        return float(self.counts[method][:edge].sum()) / max(self.total(method), 1)


@dataclass
class ReportInputs:
    """What the page shows. rows: the frames.csv rows (stamps, status, `<method>_rmse`, `total_ms`).
    methods: the scored methods, the model first. metrics: method -> mean metrics."""

    bag: str
    backbone: str
    scale: int
    rows: list[dict[str, Any]]
    methods: list[str]
    metrics: dict[str, dict[str, float]]
    histogram: ErrorHistogram
    worst: list[PreviewEntry]
    sampled: list[PreviewEntry]
    sample_every: int
    skipped: dict[str, int]
    facts: list[str] = field(default_factory=list)  # extra lines under the title
    confidence: dict[str, Any] = field(default_factory=dict)  # metrics.json's "confidence" ({}: not scored)
    confidence_png: str = ""  # its sparsification curve, relative to the page


@dataclass(frozen=True)
class _Axis:
    lo: float
    hi: float
    label: str
    log: bool = False

    def place(self, value: float, start: float, length: float) -> float:
        if self.log:
            lo, hi, value = math.log10(self.lo), math.log10(self.hi), math.log10(max(value, self.lo))
        else:
            lo, hi = self.lo, self.hi
        return start + (value - lo) / max(hi - lo, 1e-12) * length

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            powers = range(math.ceil(math.log10(self.lo) - 1e-9), math.floor(math.log10(self.hi) + 1e-9) + 1)
            return [(10.0**p, f"{100 * 10.0**p:g}%") for p in powers]
        ticks = nice_ticks(self.lo, self.hi)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        return [(t, format_tick(t, step)) for t in ticks]


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _chart(chart_id: str, title: str, x: _Axis, y: _Axis, body: Callable[[Callable[[float], float],
           Callable[[float], float]], list[str]], legend: Sequence[str]) -> str:
    """An SVG chart: axes with labelled ticks, `body(sx, sy)` elements, a legend of series names."""
    plot_w, plot_h = CHART_W - MARGIN_L - MARGIN_R, CHART_H - MARGIN_T - MARGIN_B
    bottom = MARGIN_T + plot_h

    def sx(v: float) -> float:
        return round(x.place(v, MARGIN_L, plot_w), 1)

    def sy(v: float) -> float:
        return round(bottom - y.place(v, 0.0, plot_h), 1)

    parts = [(f'<svg id="{chart_id}" class="chart" viewBox="0 0 {CHART_W} {CHART_H}" role="img" '
              f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>'),
             f'<rect class="plot" x="{MARGIN_L}" y="{MARGIN_T}" width="{plot_w}" height="{plot_h}"/>']
    for value, label in y.ticks():
        parts.append(f'<line class="grid" x1="{MARGIN_L}" x2="{MARGIN_L + plot_w}" y1="{sy(value)}" y2="{sy(value)}"/>'
                     f'<text class="tick" x="{MARGIN_L - 6}" y="{sy(value) + 4}" text-anchor="end">{_e(label)}</text>')
    for value, label in x.ticks():
        parts.append(f'<line class="axis" x1="{sx(value)}" x2="{sx(value)}" y1="{bottom}" y2="{bottom + 5}"/>'
                     f'<text class="tick" x="{sx(value)}" y="{bottom + 18}" text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<text class="label" x="{MARGIN_L + plot_w / 2}" y="{CHART_H - 6}" text-anchor="middle">'
                 f'{_e(x.label)}</text>')
    parts.append(f'<text class="label" transform="translate(14 {MARGIN_T + plot_h / 2}) rotate(-90)" '
                 f'text-anchor="middle">{_e(y.label)}</text>')
    parts += body(sx, sy)
    for i, name in enumerate(legend):  # above the plot, clear of the data
        lx = MARGIN_L + 150 * i
        parts.append(f'<rect class="{SERIES_CLASSES[i % 4]} fill" x="{lx}" y="8" width="12" height="12"/>'
                     f'<text class="legend" x="{lx + 18}" y="18">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _seconds(rows: list[dict[str, Any]]) -> list[float]:
    first = rows[0]["rgb_stamp_ns"] if rows else 0
    return [(row["rgb_stamp_ns"] - first) / 1e9 for row in rows]


def _time_series(chart_id: str, title: str, rows: list[dict[str, Any]], columns: list[str], names: list[str],
                 y_label: str, marks: Sequence[PreviewEntry] = ()) -> str:
    """A line per column over the RGB stamp (seconds from the first frame); gaps where a frame has no value."""
    t = _seconds(rows)
    values = [v for row in rows for c in columns if isinstance(v := row.get(c), (int, float)) and math.isfinite(v)]
    if not values:
        return ""
    x = _Axis(0.0, max(t[-1], 1e-3), "time since the first frame (s)")
    y = _Axis(0.0, max(values) * 1.08 or 1.0, y_label)
    first_stamp = rows[0]["rgb_stamp_ns"]

    def body(sx: Callable[[float], float], sy: Callable[[float], float]) -> list[str]:
        out = []
        for i, column in enumerate(columns):
            segments: list[list[str]] = [[]]
            for seconds, row in zip(t, rows):
                v = row.get(column)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    segments[-1].append(f"{sx(seconds)},{sy(v)}")
                elif segments[-1]:
                    segments.append([])
            for points in segments:
                if len(points) == 1:
                    px, py = points[0].split(",")
                    out.append(f'<circle class="{SERIES_CLASSES[i % 4]} fill" cx="{px}" cy="{py}" r="2"/>')
                elif points:
                    out.append(f'<polyline class="{SERIES_CLASSES[i % 4]} line" points="{" ".join(points)}"/>')
        for rank, entry in enumerate(marks, start=1):
            v = entry.rmse.get(columns[0].removesuffix("_rmse"))
            if v is None:
                continue
            cx, cy = sx((entry.stamp_ns - first_stamp) / 1e9), sy(v)
            out.append(f'<a href="#frame-{entry.frame}"><circle class="mark" cx="{cx}" cy="{cy}" r="5"/>'
                       f'<text class="mark-label" x="{cx}" y="{cy - 8}" text-anchor="middle">#{rank}</text></a>')
        return out

    return _chart(chart_id, title, x, y, body, names)


def _histogram_chart(histogram: ErrorHistogram, methods: list[str]) -> str:
    shares = {m: histogram.counts[m] / max(histogram.total(m), 1) for m in methods if m in histogram.counts}
    if not shares or not any(histogram.total(m) for m in shares):
        return ""
    overflow = {m: histogram.overflow[m] / max(histogram.total(m), 1) for m in shares}
    smallest = min([s[s > 0].min() for s in shares.values() if (s > 0).any()] + [v for v in overflow.values() if v > 0])
    y = _Axis(10.0 ** math.floor(math.log10(smallest)), 1.0, "share of scored pixels (log scale)", log=True)
    top = HIST_EDGES_M[-1]
    bin_w = HIST_EDGES_M[1] - HIST_EDGES_M[0]
    x = _Axis(0.0, top + bin_w, f"|error| (m); the last bar: beyond {top:g} m")

    def body(sx: Callable[[float], float], sy: Callable[[float], float]) -> list[str]:
        out = []
        width = (sx(bin_w) - sx(0.0)) / len(shares)
        for i, (method, share) in enumerate(shares.items()):
            bars = list(zip(HIST_EDGES_M[:-1], share)) + [(top, overflow[method])]
            for left, value in bars:
                if value <= 0:
                    continue
                x0, y0 = sx(float(left)) + i * width, sy(float(value))
                out.append(f'<rect class="{SERIES_CLASSES[i % 4]} fill" x="{x0:.1f}" y="{y0}" width="{width:.1f}" '
                           f'height="{sy(y.lo) - y0:.1f}"><title>{_e(method)}: {100 * value:.3g}% of pixels at '
                           f'{left:.3f}+ m</title></rect>')
        return out

    return _chart("error-histogram-chart", "per-pixel |error| histogram", x, y, body, list(shares))


def _figure(entry: PreviewEntry, caption: str) -> str:
    src = _e(entry.path.as_posix())
    return (f'<figure class="frame" id="frame-{entry.frame}"><figcaption>{_e(caption)}</figcaption>'
            f'<a href="{src}"><img src="{src}" alt="preview of frame {entry.frame}"></a></figure>')


def _rmse_text(entry: PreviewEntry) -> str:
    return ", ".join(f"{m} RMSE {v:.4f} m" for m, v in entry.rmse.items())


def render_report(data: ReportInputs) -> str:
    """The page as one HTML string."""
    title = f"depth_sr replay: {data.backbone} x{data.scale}"
    sections = [f"<h1>{_e(title)}</h1>", f'<p class="meta">bag {_e(data.bag)}</p>']
    sections += [f'<p class="meta">{_e(line)}</p>' for line in data.facts]
    if data.metrics:
        head = "".join(f"<th>{_e(n)}</th>" for n in METRIC_NAMES)
        body = "".join(f"<tr><th>{_e(m)}</th>" + "".join(f"<td>{values.get(n, float('nan')):.4f}</td>"
                       for n in METRIC_NAMES) + "</tr>" for m, values in data.metrics.items())
        sections.append(f'<section id="summary"><h2>Mean metrics over the scored frames</h2>'
                        f'<table class="metrics"><tr><th>method</th>{head}</tr>{body}</table>'
                        '<p class="note">rmse, mae in metres; absrel, delta1 (delta &lt; 1.25) and coverage are '
                        'fractions; scored on the pixels where the ground truth is valid.</p></section>')
        rmse = _time_series("rmse-chart", "RMSE per frame", data.rows, [f"{m}_rmse" for m in data.methods],
                            data.methods, "RMSE (m)", marks=data.worst)
        sections.append(f'<section id="rmse-over-time"><h2>RMSE over time</h2>{rmse}'
                        '<p class="note">Circles: the worst frames, linked to their previews below.</p></section>')
        within = "".join(f"<li>{_e(m)}: " + ", ".join(
            f"{100 * data.histogram.share_within(m, limit):.1f}% within {100 * limit:g} cm" for limit in WITHIN_M)
            + "</li>" for m in data.methods if m in data.histogram.counts)
        sections.append(f'<section id="error-histogram"><h2>Per-pixel error</h2>'
                        f'{_histogram_chart(data.histogram, data.methods)}<ul>{within}</ul></section>')
        if data.confidence:
            src = _e(data.confidence_png)
            sections.append('<section id="confidence"><h2>Confidence: sparsification curve</h2>'
                            f'<p>{_e(format_confidence(data.confidence))}</p>'
                            f'<img src="{src}" alt="sparsification curve of the confidence"></section>')
    else:
        sections.append('<section id="summary"><h2>No ground truth</h2><p>No frame was scored: replay with '
                        '<code>--gt-topic</code> for RMSE over time and the error histogram.</p></section>')
    timing = _time_series("time-chart", "time per frame", data.rows, ["total_ms"], [data.backbone], "ms per frame")
    sections.append(f'<section id="timing"><h2>Processing time per frame</h2>{timing}</section>')
    if data.worst:
        figures = "".join(_figure(e, f"#{rank}: frame {e.frame} at {e.stamp_ns / 1e9:.3f} s, {_rmse_text(e)}")
                          for rank, e in enumerate(data.worst, start=1))
        sections.append(f'<section id="worst-frames"><h2>Worst frames (highest {_e(data.backbone)} RMSE)</h2>'
                        f"{figures}</section>")
    if data.sampled:
        figures = "".join(_figure(e, f"frame {e.frame} at {e.stamp_ns / 1e9:.3f} s" +
                                  (f", {_rmse_text(e)}" if e.rmse else "")) for e in data.sampled)
        sections.append(f'<section id="sampled-frames"><h2>One processed frame in {data.sample_every}</h2>'
                        f"{figures}</section>")
    skipped = "".join(f"<tr><td>{_e(r)}</td><td>{n}</td></tr>" for r, n in sorted(data.skipped.items()))
    sections.append('<section id="skips"><h2>Skipped messages</h2>' +
                    (f'<table><tr><th>reason</th><th>messages</th></tr>{skipped}</table>' if skipped else
                     "<p>None: every message was processed.</p>") + "</section>")
    return _PAGE.format(title=_e(title), style=_STYLE, body="\n".join(sections), script=_SCRIPT)


def write_report(path: Path, data: ReportInputs) -> Path:
    path = Path(path)
    path.write_text(render_report(data), encoding="utf-8")
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title><style>{style}</style></head>
<body data-images-loaded="" data-images-broken="">
<p id="image-notice" hidden></p>
{body}
<script>{script}</script>
</body></html>
"""

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1800px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.meta, .note { color: #555; margin: 2px 0; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border: 1px solid #ddd; text-align: right; }
.chart { width: 100%; max-width: 900px; height: auto; display: block; }
.chart .plot { fill: #fafafa; stroke: #ccc; } .chart .grid { stroke: #e4e4e4; } .chart .axis { stroke: #888; }
.chart text { font-size: 11px; fill: #333; } .chart .label { font-size: 12px; }
.line { fill: none; stroke-width: 1.5; }
.s0.line { stroke: #d6336c; } .s1.line { stroke: #6c757d; } .s2.line { stroke: #1c7ed6; } .s3.line { stroke: #37b24d; }
.s0.fill { fill: #d6336c; } .s1.fill { fill: #6c757d; } .s2.fill { fill: #1c7ed6; } .s3.fill { fill: #37b24d; }
.mark { fill: none; stroke: #000; stroke-width: 1.5; } .mark-label { font-weight: bold; }
figure.frame { margin: 16px 0; } figure.frame img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-weight: 600; margin-bottom: 4px; }
#image-notice { background: #fff3bf; padding: 8px; border: 1px solid #f08c00; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !img.complete || img.naturalWidth === 0; });
  document.body.dataset.imagesLoaded = String(images.length - broken.length);
  document.body.dataset.imagesBroken = String(broken.length);
  if (broken.length) {
    var notice = document.getElementById("image-notice");
    notice.textContent = broken.length + " preview image(s) did not load: keep report.html in its output " +
      "folder, beside previews/.";
    notice.hidden = false;
  }
});
"""
