"""Every flag of every `depth-sr` sub-command: `--help` shows its default, and a hostile value is a
clean run or one line and exit 2, never a traceback (issue 23 item 3, issue 24 item 5).

The hostile-value walk is property-based (hypothesis): one flag of one sub-command at a time
gets an empty string, NaN, inf, a negative or huge number, a path that does not exist or cannot
be written, odd unicode or random text, on top of arguments that run. Runs are in-process
(`depth_sr_ros.cli.main`) and kept short: replay stops after one frame (`--max-frames 1`), and
the commands whose work is long (demo, train, export-onnx, bench) stop where their work would
start, after every flag has been checked, so what is tested is how each value is refused or taken.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from depth_sr_ros.cli import COMMANDS, HelpFormatter, command_parser, main
from depth_sr_ros.optional import has_torch
from depth_sr_ros.replay import sample_bag

TORCH_COMMANDS = {"train", "export-onnx"}  # their modules import torch


class WorkStarted(BaseException):
    """Raised where a long command's work would start: every flag was taken (BaseException, so that
    no `except Exception` of the command mistakes it for a failure)."""


@dataclass
class Command:
    argv: list[str]  # arguments that run; "{bag}", "{data}" filled per run
    stops: tuple[str, ...] = ()  # "module:attribute"s patched to raise WorkStarted
    examples: int = 40
    positionals: dict[str, int] = field(default_factory=dict)  # positional dest -> its index in argv


COMMAND_RUNS: dict[str, Command] = {
    "replay": Command(["{bag}", "--out", "out", "--backbone", "bicubic", "--max-frames", "1", "--no-previews",
                       "--no-progress"], positionals={"bag": 0}),
    "demo": Command(["--out", "demo", "--no-progress"], stops=("depth_sr_ros.replay.sample_bag:build_sample_bag",)),
    "evaluate": Command(["--data", "{data}", "--scale", "4", "--backbone", "bicubic", "--json", "e.json",
                         "--no-progress"]),
    "confidence": Command(["--data", "{data}", "--scale", "4", "--backbone", "bicubic", "--json", "c.json", "--png",
                           "c.png", "--no-progress"], examples=25),
    "models": Command([], examples=25),
    "train": Command(["--config", "{train_config}", "--out", "train_out"],
                     stops=("depth_sr_ros.train.loop:train",)),
    "export-onnx": Command(["--backbone", "lite", "--scale", "4", "--height", "32", "--width", "32", "--out", "m.onnx",
                            "--untrained"], stops=("depth_sr_ros.tools.export_onnx:build_model",)),
    "build-engine": Command(["--backbone", "lite", "--scale", "4", "--height", "32", "--width", "32"], examples=25),
    "calibrate": Command(["{bag}", "--rgb-topic", "/camera/color/image_raw", "--depth-topic", "/camera/depth/image_raw",
                          "--out", "snippet.py", "--frames", "3", "--no-progress"], examples=25,
                         positionals={"bag": 0}),
    "bench": Command(["--backbones", "bicubic", "--height", "32", "--width", "32", "--frames", "1", "--warmup", "0",
                      "--no-progress"], stops=("depth_sr_ros.tools.bench:run_bench",
                                                 "depth_sr_ros.tools.bench:run_soak")),
}


def unwritable_folder() -> str:
    """A folder that cannot be written, even by root (whom file modes do not stop): /proc, else /."""
    return "/proc" if Path("/proc/self").is_dir() else "/"


# Paths that cannot exist or be made, even for root: under a file, under /proc. Nothing generated is
# absolute or climbs out of the run's folder, so that no run writes outside the test's tmp_path.
NOT_A_FOLDER = f"{Path(__file__).resolve()}/depth_sr_x"
HOSTILE = ["", " ", "nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e309", "99999999999999999999", "1.5", "0x10",
           NOT_A_FOLDER, f"{unwritable_folder()}/depth_sr_x", unwritable_folder(), "é", "\u202e",
           "😀", "\udcff", "a" * 300, "-", "..", "~no_such_user_depth_sr/x", "'; rm -rf", "%s%n", "\t\n"]
# argv holds no NUL, and no surrogate but those of undecodable bytes (\udc80-\udcff, "\udcff" above)
VALUES = st.one_of(st.sampled_from(HOSTILE), st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                                                     max_size=12).filter(lambda s: not s.startswith(("/", "~"))
                                                                         and ".." not in s))


def skip_without_torch(command: str) -> None:
    if command in TORCH_COMMANDS and not has_torch():
        pytest.skip("the command needs the optional torch extra: pip install -e '.[torch]'")


def value_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Flags and positionals that take a value (no switches, no --help)."""
    return [a for a in parser._actions if a.nargs != 0 and a.help != argparse.SUPPRESS and a.dest != "help"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_shows_every_flags_default(command: str, capsys: pytest.CaptureFixture) -> None:
    skip_without_torch(command)
    parser, _ = command_parser(command)
    formatter = HelpFormatter(parser.prog)
    lacking = [a.option_strings[-1] for a in value_actions(parser) if a.option_strings and not a.required
               and not any(word in (formatter._get_help_string(a) or "").lower() for word in ("default", "required"))]
    assert not lacking, f"depth-sr {command} --help shows no default for {lacking}"
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in value_actions(parser):  # what argparse adds is printed, with the value itself
        if action.option_strings and action.default not in (None, argparse.SUPPRESS) and "default" not in (
                action.help or "").lower() and not action.required:
            assert f"(default: {action.default})" in text, (action.option_strings, action.default)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli_inputs")
    bag = sample_bag.build_sample_bag(root / "bag").path
    data = root / "data"
    rng = np.random.default_rng(0)
    for sub in ("rgb", "depth"):
        (data / sub).mkdir(parents=True)
    for name in ("00", "01"):
        Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(data / "rgb" / f"{name}.png")
        Image.fromarray(rng.integers(500, 4000, (32, 40), dtype=np.uint16)).save(data / "depth" / f"{name}.png")
    config = root / "train.yaml"  # a tiny run on that folder (stopped before it trains)
    config.write_text(f"backbone: lite\nscale: 4\nmodel: {{width: 8, dilations: [1], fine_width: 4}}\n"
                      f"train:\n  - {{root: {data}, split: all}}\nval:\n  - {{root: {data}, split: all}}\n"
                      "degradations: {bicubic: 1.0}\npatch: 16\nbatch: 2\nsteps: 1\nout: runs/tiny\n")
    return {"bag": str(bag), "data": str(data), "train_config": str(config)}


def hostile_argv(run: Command, action: argparse.Action, value: str, inputs: dict[str, str]) -> list[str]:
    """`run.argv` with `action` given `value` (every value of a multi-value flag)."""
    argv = [a.format(**inputs) for a in run.argv]
    if not action.option_strings:
        argv[run.positionals[action.dest]] = value
        return argv
    count = action.nargs if isinstance(action.nargs, int) else 1
    flag = action.option_strings[-1]
    for option in action.option_strings:
        if option in argv:  # replace the value(s) given in the base arguments
            start = argv.index(option) + 1
            end = start
            while end < len(argv) and not argv[end].startswith("--"):
                end += 1
            return argv[:start] + [value] * count + argv[end:]
    return [*argv, flag, *[value] * count]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_hostile_value_of_any_flag_is_one_line_and_exit_2_never_a_traceback(
        command: str, inputs: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    skip_without_torch(command)
    assert command in COMMAND_RUNS, f"give depth-sr {command} arguments that run in COMMAND_RUNS"
    run = COMMAND_RUNS[command]
    parser, _ = command_parser(command)
    actions = value_actions(parser)
    def stop(*args: object, **kwargs: object) -> None:
        raise WorkStarted

    for target in run.stops:  # bench --soak N writes an N-frame bag first: stopped there too
        module_name, attribute = target.split(":")
        monkeypatch.setattr(__import__(module_name, fromlist=[attribute]), attribute, stop)
    counter = iter(range(10**6))

    @settings(max_examples=run.examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(action=st.sampled_from(actions), value=VALUES)
    def check(action: argparse.Action, value: str) -> None:
        work = tmp_path / f"run{next(counter)}"
        work.mkdir()
        monkeypatch.chdir(work)  # relative outputs land here, never in the checkout
        argv = [command, *hostile_argv(run, action, value, inputs)]
        try:
            code = main(argv)
        except WorkStarted:
            code = 0
        except SystemExit as exit_:  # --help / --version only
            code = exit_.code
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv, err)
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            lines = [line for line in err.splitlines() if ": error: " in line]
            assert len(lines) == 1 and lines[0].startswith(f"depth-sr {command}"), (argv, err)

    check()
