"""Fuzzed message quadruples through the FrameProcessor, in a subprocess under a memory ceiling
(issue 23): no crash, no allocation for a size a header merely claims, every message accounted for.

The run itself is `test/fuzz_frames.py` (hypothesis, derandomized so CI sees the same examples).
Under its address-space cap (what the process uses after start-up plus 1 GiB), decoding the
30000x30000 JPEG or 20000x20000 PNG it builds would fail inside OpenCV; the run records such a
failure, and a Python MemoryError would end it as a crash.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 600  # about 10 s on the 2-core CI machine


def test_fuzzed_messages_are_counted_skips_or_outputs_within_the_memory_bound():
    run = subprocess.run([sys.executable, str(ROOT / "test" / "fuzz_frames.py"), str(EXAMPLES)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["crashes"] == [], "\n".join(result["crashes"])
    assert result["failed_allocations"] == []  # nothing was decoded at a size beyond the limit
    outcomes = result["outcomes"]
    assert sum(outcomes.values()) == result["examples"] == EXAMPLES  # one outcome per quadruple
    assert outcomes.get("ok", 0) > 0 and outcomes.get("oversize", 0) > EXAMPLES // 10  # both paths were reached
    assert set(outcomes) <= {"ok", "oversize", "size_changed", "size_mismatch", "missing_camera_info",
                             "bad_camera_info", "corrupt_compressed", "unsupported_encoding", "empty_image",
                             "bad_step", "truncated_data", "all_invalid_depth", "unregistered_depth",
                             "aspect_mismatch"}, outcomes
    assert result["rss_growth_kb"] < 256 * 1024  # peak RSS over the whole run: no decoded hostile image
