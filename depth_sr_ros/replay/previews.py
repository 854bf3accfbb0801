"""Which replayed frames get a preview figure, and writing them.

A preview goes to every `every`-th processed frame (the first included), and to the `worst`
frames by the model's RMSE, at least `min_gap` processed frames apart (one bad second of a 30 Hz
bag is one worst frame, not six of the same view). The worst are only known at the end: the
figures' inputs of the current worst few are held in memory (about 6 MB each at 640x480 with the
confidence) and drawn by `finish()`. A frame that is both is drawn once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from depth_sr_ros.core.preview import write_png
from depth_sr_ros.core.preview_figure import FigureStyle, PreviewFrame, render_preview

WORST_MIN_GAP = 30  # processed frames between two worst frames: 1 s at 30 Hz


@dataclass(frozen=True)
class PreviewEntry:
    """A frame with a preview: its frames.csv number, RGB stamp, RMSE per method (metres) and its
    file, relative to the output folder."""

    frame: int
    stamp_ns: int
    rmse: dict[str, float]
    path: Path


@dataclass(eq=False)  # compared by identity: the frames hold arrays
class _Kept:
    score: float
    index: int
    entry: PreviewEntry
    frame: PreviewFrame | None  # None once drawn


class PreviewPlan:
    """every: a preview per `every` processed frames (0 = none). worst: previews of the `worst`
    frames with the highest model RMSE, `min_gap` processed frames apart or more (0 = none;
    frames without a score never count; of equal scores the earlier frame stays)."""

    def __init__(self, out_dir: Path, every: int, worst: int, style: FigureStyle | None = None,
                 min_gap: int = WORST_MIN_GAP) -> None:
        if every < 0 or worst < 0 or min_gap < 1:
            raise ValueError(f"preview counts must be >= 0 and min_gap >= 1, got every={every}, worst={worst}, "
                             f"min_gap={min_gap}")
        self.out_dir = Path(out_dir)
        self.every = every
        self.worst = worst
        self.min_gap = min_gap
        self.style = style or FigureStyle()
        self.written: set[int] = set()  # frame numbers drawn
        self.sampled: list[PreviewEntry] = []  # the every-`every` previews, in frame order
        self._kept: list[_Kept] = []

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
        close = [k for k in self._kept if index - k.index < self.min_gap]  # frames come in order
        if any(k.score >= score for k in close):
            return
        if not close and len(self._kept) == self.worst:
            weakest = min(self._kept, key=lambda k: (k.score, -k.index))
            if score <= weakest.score:
                return
            close = [weakest]
        self._kept = [k for k in self._kept if k not in close]
        self._kept.append(_Kept(score, index, entry, None if entry.frame in self.written else (frame or make())))

    def finish(self) -> list[PreviewEntry]:
        """Draw the worst frames not drawn yet; return them, worst first."""
        worst = sorted(self._kept, key=lambda k: (-k.score, k.index))
        for kept in worst:
            if kept.frame is not None:
                self._draw(kept.entry, kept.frame)
        self._kept = []
        return [kept.entry for kept in worst]

    def _draw(self, entry: PreviewEntry, frame: PreviewFrame) -> None:
        write_png(self.out_dir / entry.path, render_preview(frame, self.style))
        self.written.add(entry.frame)
