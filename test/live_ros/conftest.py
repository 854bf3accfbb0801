"""Live ROS 2 tests: the package built with colcon, launched with `ros2 launch`, driven over real DDS.

Session fixtures:
- `ros_domain`: a ROS_DOMAIN_ID of its own for this test session, held with a lock file so that two
  sessions on one machine never share one (range `DEPTH_SR_TEST_DOMAINS`, e.g. "11-19"; default
  70-101), set in os.environ before rclpy starts.
- `installed`: the repository copied into a temporary colcon workspace, `colcon build`, and the
  environment `. install/setup.bash` gives: what every `ros2 launch` here runs in, as on a robot.
- `probe`: an rclpy node in this process (live_probe.Probe).
- `sample_bag`, `frame`: the bundled TUM frames as a bag, and frame 00 as rclpy messages.

Every test here is marked `ros`. They skip only where rclpy cannot be imported, and not even
there with `DEPTH_SR_REQUIRE_ROS=1` (.ci/run's part with ROS): then a skipped ROS test is a
failure. The terminal summary says how many ROS tests ran. No `ros2` daemon is used; launched process groups are killed in teardown.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "DEPTH_SR_REQUIRE_ROS"
DOMAINS_ENV = "DEPTH_SR_TEST_DOMAINS"
DEFAULT_DOMAINS = "70-101"
ROS_MARK = "ros"
# without git (a source archive): the repository minus caches, builds and venvs
COPY_IGNORE = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "install", "log", "out", "runs")

HERE = Path(__file__).resolve().parent
_RANK = {"passed": 0, "skipped": 1, "failed": 2}
_outcomes: dict[str, str] = {}  # ROS test id -> its worst phase outcome
_modules_skipped: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{ROS_MARK}: needs a ROS 2 runtime (rclpy); never skipped under CI")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(ROS_MARK)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker(ROS_MARK) is None:
        return
    if report.skipped and os.environ.get(REQUIRE_ENV):
        report.outcome = "failed"
        report.longrepr = f"ROS test skipped with {REQUIRE_ENV}=1, which requires it to run: {report.longrepr}"
    previous = _outcomes.get(item.nodeid, "passed")
    _outcomes[item.nodeid] = max(previous, report.outcome, key=_RANK.__getitem__)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped and Path(str(report.fspath)).resolve().parent == HERE:
        _modules_skipped.append(Path(str(report.fspath)).name)


def pytest_terminal_summary(terminalreporter) -> None:
    counts = Counter(_outcomes.values())
    ran = counts["passed"] + counts["failed"]
    line = f"ROS tests: {ran} ran ({counts['passed']} passed, {counts['failed']} failed), {counts['skipped']} skipped"
    if _modules_skipped:
        line += f"; modules skipped without ROS: {', '.join(_modules_skipped)}"
    terminalreporter.write_line(line)


def _domain_range() -> range:
    text = os.environ.get(DOMAINS_ENV, DEFAULT_DOMAINS)
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


@pytest.fixture(scope="session")
def ros_domain():
    """A ROS_DOMAIN_ID no other test session on this machine holds, for the whole session."""
    lock_dir = Path(tempfile.gettempdir())
    for domain in _domain_range():
        handle = open(lock_dir / f"depth_sr_ros_test_domain_{domain}.lock", "w")  # noqa: SIM115 - held all session
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        previous = os.environ.get("ROS_DOMAIN_ID")
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        yield domain
        if previous is None:
            os.environ.pop("ROS_DOMAIN_ID", None)
        else:
            os.environ["ROS_DOMAIN_ID"] = previous
        handle.close()
        return
    pytest.fail(f"every ROS_DOMAIN_ID in {DOMAINS_ENV}={os.environ.get(DOMAINS_ENV, DEFAULT_DOMAINS)} is taken")


@pytest.fixture(scope="session")
def installed(ros_domain, tmp_path_factory) -> dict[str, str]:
    """Build the repository with colcon into a temporary workspace; the sourced environment."""
    workspace = tmp_path_factory.mktemp("colcon_ws")
    _copy_repository(workspace / "src" / "depth_sr_ros")
    build = subprocess.run(
        ["colcon", "build", "--packages-select", "depth_sr_ros"],
        cwd=workspace, capture_output=True, text=True, timeout=600, check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"colcon build failed:\n{build.stdout}\n{build.stderr}", pytrace=False)
    sourced = subprocess.run(
        ["bash", "-c", ". install/setup.bash && env -0"],
        cwd=workspace, capture_output=True, text=True, timeout=60, check=True,
    )
    env = dict(item.split("=", 1) for item in sourced.stdout.split("\0") if "=" in item)
    env["ROS_DOMAIN_ID"] = str(ros_domain)
    env["PYTHONUNBUFFERED"] = "1"
    env["DEPTH_SR_COLCON_WS"] = str(workspace)
    return env


def _copy_repository(target: Path) -> None:
    """The files a clone of the repository has (git's tracked and not-ignored ones), as a robot's
    workspace gets them; without git, the tree minus caches, builds and venvs."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=False,
    )
    if listed.returncode != 0:
        shutil.copytree(REPO, target, ignore=COPY_IGNORE)
        return
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO / name
        if source.is_file():  # not a file deleted in the working tree
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="session")
def sample_bag(tmp_path_factory) -> Path:
    """The bundled TUM frames as a bag (`replay.sample_bag`): the bytes `depth-sr replay` reads."""
    from depth_sr_ros.replay.sample_bag import build_sample_bag

    path = tmp_path_factory.mktemp("sample") / "sample_bag"
    build_sample_bag(path)
    return path


@pytest.fixture(scope="session")
def frame(sample_bag):
    """TUM frame 00 as rclpy messages: 640x480 rgb8, 160x120 16UC1 millimetres, both CameraInfo."""
    from depth_sr_ros.ros.live_probe import bag_frames

    return bag_frames(sample_bag)[0]


@pytest.fixture(scope="session")
def probe(ros_domain):
    from depth_sr_ros.ros.live_probe import Probe

    with Probe() as node:
        yield node
