"""The live benchmark (`python -m depth_sr_ros.ros.live_bench`, BENCHMARKS.md "Live node") runs end
to end against the installed package: a short run that checks the tool, not the figures."""

from __future__ import annotations

import json
import subprocess
import sys

from . import harness

harness.require_ros()


def test_the_live_bench_measures_each_rate_with_and_without_a_cloud_reader(installed, tmp_path):
    out = tmp_path / "live.json"
    command = [sys.executable, "-m", "depth_sr_ros.ros.live_bench", "--rates", "10", "--seconds", "3",
               "--warmup", "1", "--launch-arg", "backbone:=guided_filter", "--json", str(out)]
    result = subprocess.run(command, env=installed, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "launch exit code: 0" in result.stdout
    report = json.loads(out.read_text())
    assert "backbone guided_filter x4" in report["node"]
    records = report["records"]
    assert [(r["rate_in_hz"], r["cloud"]) for r in records] == [(10.0, False), (10.0, True)]
    for record in records:
        assert record["sent"] >= 25 and 0 < record["received"] <= record["sent"] + 2
        assert record["processing_ms"] > 0 and record["publish_ms"] > 0 and record["latency_publish_mean_ms"] > 0
