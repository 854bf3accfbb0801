"""Which replayed frames get a preview figure, and writing them.

A preview goes to every `every`-th processed frame (the first included), and to the `worst`
frames by the model's RMSE, which are only known at the end: the figures' inputs of the current
worst few are held in memory (about 5 MB each at 640x480) and drawn by `finish()`. A frame that
is both is drawn once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from depth_sr_ros.core.preview import write_png
from depth_sr_ros.core.preview_figure import FigureStyle, PreviewFrame, render_preview


@dataclass(frozen=True)
class PreviewEntry:
    """A frame with a preview: its frames.csv number, RGB stamp, RMSE per method (metres) and its
    file, relative to the output folder."""

    frame: int
    stamp_ns: int
    rmse: dict[str, float]
    path: Path


class PreviewPlan:
    """every: a preview per `every` processed frames (0 = none). worst: previews of the `worst`
    frames with the highest model RMSE (0 = none; frames without a score never count)."""

    def __init__(self, out_dir: Path, every: int, worst: int, style: FigureStyle | None = None) -> None:
        if every < 0 or worst < 0:
            raise ValueError(f"preview counts must be >= 0, got every={every}, worst={worst}")
        self.out_dir = Path(out_dir)
        self.every = every
        self.worst = worst
        self.style = style or FigureStyle()
        self.written: set[int] = set()  # frame numbers drawn
        self.sampled: list[PreviewEntry] = []  # the every-`every` previews, in frame order
        self._heap: list[tuple[float, int, PreviewEntry, PreviewFrame | None]] = []

    def offer(self, index: int, entry: PreviewEntry, score: float | None, make: Callable[[], PreviewFrame]) -> None:
        """Processed frame `index` (0-based): draw it now if due; keep it if among the worst by `score`.

        `make` builds the figure's inputs; it is called only when the frame is drawn or kept.
        """
        frame = None
        if self.every and index % self.every == 0:
            frame = make()
            self._draw(entry, frame)
            self.sampled.append(entry)
        if not self.worst or score is None or not math.isfinite(score):
            return
        if len(self._heap) == self.worst and score <= self._heap[0][0]:
            return
        kept = None if entry.frame in self.written else (frame or make())
        item = (score, entry.frame, entry, kept)
        if len(self._heap) < self.worst:
            heapq.heappush(self._heap, item)
        else:
            heapq.heapreplace(self._heap, item)

    def finish(self) -> list[PreviewEntry]:
        """Draw the worst frames not drawn yet; return them, worst first."""
        worst = sorted(self._heap, key=lambda item: (-item[0], item[1]))
        for _, _, entry, frame in worst:
            if frame is not None:
                self._draw(entry, frame)
        self._heap.clear()
        return [entry for _, _, entry, _ in worst]

    def _draw(self, entry: PreviewEntry, frame: PreviewFrame) -> None:
        write_png(self.out_dir / entry.path, render_preview(frame, self.style))
        self.written.add(entry.frame)
