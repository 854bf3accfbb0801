"""Shared test fixtures: where the project's shared data folder is, and what to do without it.

The data folder lives beside the repository (`<repo root>/../shared`, as CI lays it out); the
environment variable `DEPTH_SR_SHARED` points elsewhere (e.g. `/work/shared` from a worktree).
Without it, tests that need it skip with a reason that names the folder, except under CI
(`DEPTH_SR_CI` set, see .ci/run), where a missing folder fails the test: CI always has it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ENV = "DEPTH_SR_SHARED"
CI_ENV = "DEPTH_SR_CI"


def shared_root() -> Path:
    """The shared folder: `$DEPTH_SR_SHARED` if set, else `<repo root>/../shared`."""
    override = os.environ.get(SHARED_ENV)
    return Path(override) if override else REPO.parent / "shared"


def require_shared(*parts: str) -> Path:
    """`shared_root()/parts...`; skips (fails under CI) when that path does not exist."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        reason = f"needs the shared data folder {path} (absent; set {SHARED_ENV} to use another copy)"
        if os.environ.get(CI_ENV):
            pytest.fail(f"{reason}; CI ({CI_ENV}) must have it", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data() -> Path:
    """The shared `data` folder (Middlebury, NYU, TUM, ... in `PROTOCOL.md` layout)."""
    return require_shared("data")


@pytest.fixture(autouse=True, scope="session")
def temporary_cache_home(tmp_path_factory: pytest.TempPathFactory):
    """Caches (exported ONNX graphs, engines) go to a temporary XDG_CACHE_HOME, never ~/.cache."""
    patch = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("xdg_cache")
    patch.setenv("XDG_CACHE_HOME", str(cache))
    yield cache
    patch.undo()


def require_program(*names: str, install: str) -> str:
    """The path of the first of `names` on PATH; skips (fails under CI, which installs it) when none is."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    reason = f"needs {' or '.join(names)} on PATH ({install})"
    if os.environ.get(CI_ENV):
        pytest.fail(f"{reason}; CI ({CI_ENV}) installs it in .ci/run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_browser() -> str:
    """Chromium for rendering HTML headless (replay's report.html); .ci/run installs Debian's."""
    return require_program("chromium", "chromium-browser", install="apt-get install chromium")
