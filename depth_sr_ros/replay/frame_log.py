"""The per-pair rows of replay's `frames.csv`, spooled to disk as they come.

A replay of a long bag must not keep a row per frame in memory (10,000 frames of rows grow the
process by ~17 MB): each finished row is appended as one JSON line to a hidden spool file beside
the CSV, and only the union of the column names, running sums of the stage times (`*_ms`) and
the ground-truth outcome counts stay in memory. `finish` writes the CSV from the spool (adding
columns known only at the end, such as the stamp gap against the observed frame period);
`rows` reads the rows back (for the HTML report, once, at the end); `discard` removes the spool.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class FrameLog:
    """Rows of `csv_path`, one per attempted pair, in the order they were added."""

    def __init__(self, csv_path: Path) -> None:
        self.csv_path = Path(csv_path)
        self.spool_path = spool_path(self.csv_path)
        self._spool = open(self.spool_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by finish()
        self.count = 0
        self.columns: dict[str, None] = {}  # ordered set
        self._timing_sums: dict[str, list[float]] = {}  # stage -> [sum ms, frames]
        self.gt_outcomes: Counter[str] = Counter()  # processed pairs by their ground-truth outcome

    def add(self, row: dict[str, Any]) -> None:
        """Append a finished row (JSON-serialisable values)."""
        self._spool.write(json.dumps(row) + "\n")
        self.count += 1
        self.columns.update(dict.fromkeys(row))
        for key, value in row.items():
            if key.endswith("_ms"):
                total = self._timing_sums.setdefault(key.removesuffix("_ms"), [0.0, 0])
                total[0] += float(value)
                total[1] += 1
        if row.get("status") == "ok":
            self.gt_outcomes[str(row.get("gt", "none"))] += 1

    def mean_timings_ms(self) -> dict[str, float]:
        return {stage: round(total / n, 3) for stage, (total, n) in self._timing_sums.items() if n}

    def finish(self, extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
               extra_columns: tuple[str, ...] = ()) -> Path:
        """Write the CSV, each row updated once with `extra(row)` (whose keys are `extra_columns`);
        return the CSV path."""
        self._spool.close()
        with open(self.spool_path, encoding="utf-8") as spool, open(self.csv_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*self.columns, *extra_columns])
            writer.writeheader()
            for line in spool:
                row = json.loads(line)
                writer.writerow({**row, **(extra(row) if extra else {})})
        return self.csv_path

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows as added (values keep their types), read back from the spool after `finish`."""
        with open(self.spool_path, encoding="utf-8") as spool:
            for line in spool:
                yield json.loads(line)

    def discard(self) -> None:
        """Remove the spool (after `finish` and any `rows`)."""
        self._spool.close()
        self.spool_path.unlink(missing_ok=True)


def spool_path(csv_path: Path) -> Path:
    """The hidden spool file beside `csv_path` that holds its rows until `finish`."""
    return csv_path.with_name(f".{csv_path.name}.jsonl")
