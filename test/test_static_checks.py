"""The node module passes ruff and mypy on a machine without ROS (issue 3's acceptance).

Its ROS imports are lazy or guarded, and setup.cfg marks the ROS packages as optional for mypy,
so both checkers run here exactly as on a developer laptop.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULE = "depth_sr_ros/ros"


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", NODE_MODULE, "launch"],
        [sys.executable, "-m", "mypy", "--no-incremental", NODE_MODULE],
    ],
    ids=["ruff", "mypy"],
)
def test_node_module_passes_static_checks_without_ros(command):
    result = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
