"""Replay and demo remove only what an earlier run recorded as its own (issue 23, "only delete what you wrote").

Every case here lost or overwrote the user's files before the manifest (`replay/out_dir.py`):
`depth-sr replay OUT/sr_bag --out OUT` deleted its own input, and a `previews` link inside
`--out` made the stale-preview cleanup delete files in the folder it pointed to.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from depth_sr_ros.cli import main
from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.replay import sample_bag
from depth_sr_ros.replay.out_dir import MANIFEST, OutputDir


def replay(bag: Path, out: Path, *extra: str) -> int:
    return main(["replay", str(bag), "--out", str(out), "--backbone", "bicubic", "--no-progress", *extra])


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_bag.build_sample_bag(tmp_path_factory.mktemp("input") / "bag").path


def error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_replaying_an_earlier_output_bag_into_its_own_folder_is_refused_and_the_bag_kept(
        bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert replay(bag, out) == 0
    before = tree(out / "sr_bag")
    assert replay(out / "sr_bag", out, "--rgb-topic", "/depth_sr/image") == 2
    line = error_line(capsys)
    assert "--out" in line and "holds the input" in line
    assert tree(out / "sr_bag") == before


def test_an_out_inside_the_input_bag_is_refused(bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "bag"
    copy.mkdir()
    for part in bag.iterdir():
        (copy / part.name).write_bytes(part.read_bytes())
    assert replay(copy, copy / "out") == 2
    assert "lies inside the input" in error_line(capsys)
    assert not (copy / "out").exists()


def test_a_previews_link_in_out_never_leads_to_deleting_where_it_points(
        bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim"
    assert replay(bag, out, "--preview-every", "1") == 0
    names = sorted(p.name for p in (out / "previews").iterdir())
    assert names
    victim.mkdir()
    for name in names:  # the very names the earlier run recorded
        (victim / name).write_bytes(b"the user's file")
    for name in names:
        (out / "previews" / name).unlink()
    (out / "previews").rmdir()
    (out / "previews").symlink_to(victim, target_is_directory=True)
    assert replay(bag, out, "--preview-every", "1") == 2
    line = error_line(capsys)
    assert "previews" in line and "symbolic link" in line and "--out" in line
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == {n: b"the user's file" for n in names}


def test_a_rerun_replaces_its_own_outputs_with_a_line_saying_so_and_keeps_the_users_files(
        bag: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert replay(bag, out, "--preview-every", "1") == 0
    with caplog.at_level(logging.WARNING):
        assert replay(bag, out, "--preview-every", "1", "--max-frames", "1") == 0
    assert any("replacing an earlier replay run's outputs" in r.getMessage() for r in caplog.records)
    assert (out / "notes.txt").read_text() == "mine"
    assert len(list((out / "previews").glob("frame_*.png"))) == 1  # only this run's preview is left
    assert json.loads((out / "metrics.json").read_text())["pairs_processed"] == 1
    # a file the user put among the previews: its folder is left as it is, and the run says so
    (out / "previews" / "my_figure.png").write_bytes(b"mine too")
    assert replay(bag, out, "--preview-every", "1") == 2
    line = error_line(capsys)
    assert "previews" in line and "my_figure.png" in line
    assert (out / "previews" / "my_figure.png").read_bytes() == b"mine too"


def test_an_output_name_taken_by_a_users_file_is_refused_not_overwritten(
        bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("my report")
    assert replay(bag, out) == 2
    line = error_line(capsys)
    assert "report.html" in line and "--out" in line
    assert (out / "report.html").read_text() == "my report"


def test_a_manifest_naming_paths_outside_the_folder_removes_nothing(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "precious.txt"
    out.mkdir()
    outside.write_text("keep")
    (out / "inner").mkdir()
    (out / "inner" / "file.txt").write_text("keep")
    (out / "link").symlink_to(out / "inner", target_is_directory=True)
    (out / MANIFEST).write_text(json.dumps({"format": 1, "owners": {"replay": [
        "../precious.txt", str(outside), "link/file.txt", "link/"]}}))
    OutputDir(out, "replay").prepare(["sr_bag/"])
    assert outside.read_text() == "keep" and (out / "inner" / "file.txt").read_text() == "keep"
    (out / MANIFEST).write_text("{not json")
    OutputDir(out, "replay").prepare(["sr_bag/"])  # a damaged manifest: nothing removed, a warning
    assert (out / "inner" / "file.txt").exists()


def test_a_link_in_place_of_the_manifest_is_refused_and_not_written_through(tmp_path: Path) -> None:
    out, target = tmp_path / "out", tmp_path / "target.txt"
    out.mkdir()
    target.write_text("keep")
    (out / MANIFEST).symlink_to(target)
    with pytest.raises(UsageError, match=MANIFEST):
        OutputDir(out, "replay").prepare(["sr_bag/"])
    assert target.read_text() == "keep"


@pytest.fixture
def unwritable(tmp_path: Path):
    """A folder this process cannot write: a read-only folder, or /proc for root (which file modes do not stop)."""
    if os.name != "posix":
        pytest.skip("needs POSIX file modes")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        yield locked
        locked.chmod(0o700)
    elif Path("/proc/self").is_dir():
        yield Path("/proc")
    else:
        pytest.skip("root without /proc: no folder it cannot write")


def test_an_out_under_an_unwritable_folder_is_one_line_and_exit_2(
        bag: Path, unwritable: Path, capsys: pytest.CaptureFixture) -> None:
    assert replay(bag, unwritable / "depth_sr_out") == 2
    assert "--out" in error_line(capsys)
    assert replay(bag, unwritable) == 2  # the folder exists but cannot be written
    assert "--out" in error_line(capsys)


def test_the_demo_replaces_its_sample_bag_and_leaves_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for _ in range(2):
        assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "sample_bag" / "metadata.yaml").exists() and (out / "sr_bag" / "metadata.yaml").exists()
    owners = json.loads((out / MANIFEST).read_text())["owners"]
    assert "sample_bag/metadata.yaml" in owners["demo"] and "sr_bag/metadata.yaml" in owners["replay"]


def test_a_replay_that_processes_nothing_exits_2_with_its_hint(bag: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    # the sample's depth is stamped 2.5-5.5 ms after its colour image: a 1 ms slop pairs nothing
    assert replay(bag, tmp_path / "out", "--slop", "0.001") == 2
    line = error_line(capsys)
    assert "no frame processed" in line and "nothing paired" in line and "raise --slop" in line
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["pairs_processed"] == 0  # outputs kept
