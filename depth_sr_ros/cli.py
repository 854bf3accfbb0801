"""`depth-sr`: one command line, one sub-command per offline tool.

Each sub-command lives in `depth_sr_ros.tools.<module>` and provides
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when their
sub-command runs, so `depth-sr --help` stays fast.

Every sub-command behaves alike:
- `-v/--verbose` (debug logging) before or after the sub-command; `depth-sr --version`;
- a user's mistake (a bad flag value, a missing file, a wrong format, an unknown name) prints
  one line that names the flag or file and what to do, and exits 2 (`UsageError`, see
  `depth_sr_ros.core.errors`; argparse's own errors take the same path), and so does a path the
  file system refuses (permission, read-only, name too long: `USER_PATH_ERRORS`);
- any other exception is a bug: its traceback is printed and the exit status is 1;
- `--help` shows every flag's default (`HelpFormatter`);
- log lines are routed around tqdm progress bars (`logging_redirect_tqdm`).
"""

from __future__ import annotations

import argparse
import copy
import errno
import importlib
import io
import logging
import re
import sys
import traceback
from types import ModuleType
from typing import Any, NoReturn

from depth_sr_ros import __version__
from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.optional import missing_torch

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "replay the bundled TUM sample bag through the default backbone"),
    "replay": ("replay", "run a rosbag2 bag through the node's pipeline and score it"),
    "evaluate": ("evaluate", "score a backbone on an RGB-D image dataset"),
    "train": ("train", "train or fine-tune a network from a YAML config"),
    "models": ("models_list", "list backbones, the shipped weights and what 'auto' picks per scale"),
    "export-onnx": ("export_onnx", "export a backbone to ONNX"),
    "build-engine": ("build_engine", "build a TensorRT engine offline"),
    "bench": ("bench", "time every pipeline stage per backend and backbone"),
    "calibrate": ("calibrate", "estimate the depth sensor's registration to the colour camera over a bag"),
    "confidence": ("confidence_eval", "score the confidence map's sparsification (AUSE) on an RGB-D dataset"),
}
EXIT_USAGE = 2
# errno of a path the user chose that cannot be written or read (ENOENT is not among them: a
# missing file of the user's is checked up front, and one of the package's own is a bug)
USER_PATH_ERRORS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
                              errno.EISDIR, errno.ENOTDIR, errno.ELOOP, errno.EEXIST})
EXIT_BUG = 1


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every flag's default: "(default: X)" after a help text that does not say its
    default (or that the flag is required) already; a default of None shows as "none", so a flag
    whose None means something else says so in its help. Switches (off unless given) get nothing."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and action.option_strings:  # argparse prints nothing for a flag without help
            action = copy.copy(action)
            action.help = self._get_help_string(action) or None
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.help == argparse.SUPPRESS or action.nargs == 0 or action.default is argparse.SUPPRESS:
            return action.help
        if action.required and not text:
            return "required"
        if action.required or re.search(r"default|required", text, re.IGNORECASE):
            return text
        if action.default is None:
            return f"{text} (default: none)".lstrip()
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a parse error raises `UsageError` (one line, exit 2) instead of exiting, and
    `--help` shows the defaults (`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _add_verbose(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="depth-sr", description=__doc__.splitlines()[0])
    _add_verbose(parser, False)
    parser.add_argument("--version", action="version", version=f"depth-sr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def command_parser(command: str) -> tuple[argparse.ArgumentParser, ModuleType]:
    """The full parser of one sub-command and its module."""
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(f"depth_sr_ros.tools.{module_name}")
    parser = ArgumentParser(prog=f"depth-sr {command}", description=help_text)
    _add_verbose(parser, argparse.SUPPRESS)  # -v after the sub-command too
    module.add_arguments(parser)
    return parser, module


def _one_line(error: BaseException) -> str:
    """The message on one line; a table after it (lines from the first one indented by two spaces,
    e.g. a recording's topics) follows as it is, one row a line. An undecodable byte of a path (a
    surrogate in argv) is shown escaped."""
    head, _, table = str(error).partition("\n  ")
    text = (" ".join(head.split()) or type(error).__name__) + (f"\n  {table}" if table else "")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def run_command(argv: list[str]) -> int:
    """Parse `argv` and run the sub-command; exceptions propagate (see `main`)."""
    top = build_parser()
    args, rest = top.parse_known_args(argv)
    parser, module = command_parser(args.command)
    command_args = parser.parse_args(rest)
    verbose = args.verbose or getattr(command_args, "verbose", False)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # no-op where a handler exists
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        return int(module.run(command_args) or 0)


def main(argv: list[str] | None = None) -> int:
    """`depth-sr ARGS`: 0 on success, 2 for a user's mistake (one line), 1 for a bug (traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    for stream in (sys.stdout, sys.stderr):  # a path with undecodable bytes prints escaped, never raises
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    command = next((a for a in argv if not a.startswith("-")), "")
    command = command if command in COMMANDS else ""
    prog = f"depth-sr {command}".strip()
    try:
        return run_command(argv)
    except UsageError as err:
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:  # torch is an optional extra: say what to install, no traceback
        if (err.name or "").split(".")[0] != "torch":
            raise
        message = str(err) if "pip install" in str(err) else str(missing_torch(prog))
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # the file system refused a path the user chose: say which, no traceback
        if err.errno not in USER_PATH_ERRORS or err.filename is None:
            raise
        print(f"{prog}: error: {err.filename}: {err.strerror}; check the path given on the command line",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - a bug: show everything so that it gets reported
        traceback.print_exc()
        print(f"{prog}: internal error (a bug, not a problem with your input): please report it with the "
              "traceback above", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
