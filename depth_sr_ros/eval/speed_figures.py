"""`auto`'s speed figure in the model cards, from a `depth-sr bench --json` file.

    OMP_NUM_THREADS=1 depth-sr bench --backbones lite --backends onnxruntime --scale 4 8 16 \\
        --frames 20 --warmup 3 --repeats 3 --json runs/bench/auto_fps.json
    depth-sr models --record-fps runs/bench/auto_fps.json

Every bench record of a network that ran shipped (not `--untrained`) weights through ONNX Runtime
on the CPU with one thread, at 640x480 output and fp32, puts its frames per second (the whole
per-frame path: decode, network, encode, messages) into the card beside its weights as
`zoo.SPEED_METRIC`, with a notes line naming the bench command, the machine, its load and the
times. Records of other settings are passed over with the reason, and so is a whole bench that
did not have a core to itself: a 1-minute load average above the usable cores less one before it
(other work already filling the core the bench needs) or above the usable cores after it. Its
thread then shared a core, so its FPS measures the neighbours as much as the network: on the shared
2-core development machine `lite` x4 measured 9.8 FPS at load 2.1-2.4 and 5.4 at 8.2-9.2, against
16.9 at load 0.3.
`zoo.auto_choice` reads the figure: a network under `zoo.MIN_AUTO_FPS` is never `auto`'s pick.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from depth_sr_ros.models.card import card_path, read_card
from depth_sr_ros.models.zoo import SPEED_METRIC

WIDTH, HEIGHT = 640, 480


def _contended(machine: dict[str, Any]) -> str:
    """Why the bench's CPU was too busy for a speed figure, or "" when it was not."""
    cores = machine.get("usable_cores") or 1
    before, after = (machine.get(key) for key in ("load_average_1min", "load_average_1min_after"))
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return "the bench recorded no load average"
    if before > cores - 1 or after > cores:
        return (f"the machine was busy (load average {before:g} before, {after:g} after, on {cores} usable cores: "
                f"at most {cores - 1} before and {cores} after leave the bench a core): rerun it when it is quiet")
    return ""


def _unfit(record: dict[str, Any], threads: Any) -> str:
    """Why a bench record is not `auto`'s speed figure, or "" when it is."""
    checks = (
        (record.get("backend") == "onnxruntime", f"backend {record.get('backend')}, not onnxruntime"),
        (record.get("device") == "cpu", f"device {record.get('device')}, not cpu"),
        ((record.get("width"), record.get("height")) == (WIDTH, HEIGHT),
         f"{record.get('width')}x{record.get('height')}, not {WIDTH}x{HEIGHT}"),
        (record.get("precision") == "fp32", f"precision {record.get('precision')}, not fp32"),
        (not record.get("untrained"), "untrained weights"),
        (threads == 1, f"{threads} ONNX Runtime threads, not 1 (run the bench with OMP_NUM_THREADS=1)"),
        (bool(record.get("weights")) and isinstance(record.get("fps"), (int, float)), "no weights file or no FPS"),
    )
    return next((why for ok, why in checks if not ok), "")


def record_fps(bench_json: Path) -> tuple[list[str], list[str]]:
    """Write the FPS of every fitting record of `bench_json` into its weights' card.

    Returns (one line per card written, one line per record passed over). Raises ValueError for a
    file that is not a bench result and WeightsError (a UsageError) for a record whose weights have no card."""
    try:
        payload = json.loads(bench_json.read_text(encoding="utf-8"))
        records, machine, command = payload["records"], payload["machine"], payload["command"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{bench_json} is not a `depth-sr bench --json` result ({err})") from None
    written, passed = [], []
    busy = _contended(machine)
    for record in records:
        if record.get("backend") == "numpy":  # a classic method: nothing to record
            continue
        label = f"{record.get('backbone')} x{record.get('scale')} {record.get('backend')}"
        why = _unfit(record, machine.get("backend_cpu_threads")) or busy
        if why:
            passed.append(f"{label}: {why}")
            continue
        weights = Path(record["weights"])
        card = read_card(weights)
        line = (f"[{SPEED_METRIC}] {command} | {record.get('machine', '')}, onnxruntime {machine.get('onnxruntime')}, "
                f"load average {machine.get('load_average_1min')} -> {machine.get('load_average_1min_after')}: "
                f"{record['fps']:.1f} FPS (network {record['network_ms']:.1f} ms + overhead "
                f"{record['overhead_ms']:.1f} ms per frame, median of {record['runs']} runs of {record['frames']} frames)")
        card = dataclasses.replace(card, metrics={**card.metrics, SPEED_METRIC: float(record["fps"])},
                                   notes="\n".join(n for n in (card.notes, line) if n))
        card_path(weights).write_text(card.to_json(), encoding="utf-8")
        written.append(f"{card_path(weights)}: {SPEED_METRIC} = {record['fps']:.1f}")
    return written, passed
