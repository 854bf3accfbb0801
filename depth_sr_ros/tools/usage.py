"""Flag types and checks shared by the `depth-sr` sub-commands.

A bad flag value is refused before any work starts, with one line that names the flag: argparse
`type=` functions here raise `argparse.ArgumentTypeError` (argparse adds the flag's name), and
checks after parsing raise `UsageError` (`depth_sr_ros.core.errors`), which `depth_sr_ros.cli`
prints and turns into exit status 2.

Flags that set a node parameter (`--scale`, `--slop`, `--queue-size`, `--backbone`, ...) are
made from the node's parameter table (`depth_sr_ros.ros.parameters.PARAMETERS`): parsed like
the launch argument `name:=TEXT` and checked against the same choices and ranges, so a value
the node refuses is refused offline too, NaN and inf included.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.ros.parameters import PARAMETER_BY_NAME, ParameterRejected, parse_launch_value

__all__ = [
    "UsageError",
    "add_no_progress",
    "add_table_argument",
    "bounded",
    "check_backbone",
    "existing_dir",
    "existing_file",
    "output_dir",
    "output_file",
    "table_type",
    "user_path",
]


def table_type(name: str) -> Callable[[str], Any]:
    """argparse `type` for the node parameter `name`: parsed and checked as the node does."""

    def convert(text: str) -> Any:
        try:
            return parse_launch_value(name, text)
        except ParameterRejected as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = PARAMETER_BY_NAME[name].type.__name__
    return convert


def add_table_argument(parser: argparse.ArgumentParser, flag: str, name: str, help_text: str,
                       default: Any = None) -> None:
    """Add `flag` for the node parameter `name`; default and constraint from the table."""
    spec = PARAMETER_BY_NAME[name]
    value = spec.default if default is None else default
    constraint = spec.constraints_text()
    parser.add_argument(flag, type=table_type(name), default=value,
                        help=f"{help_text} ({constraint + '; ' if constraint else ''}default {value})")


def add_second_pass_argument(parser: argparse.ArgumentParser) -> None:
    """`--no-second-pass`: the node's `registration_second_pass` set false (core/sensor_view.py)."""
    parser.add_argument("--no-second-pass", action="store_true",
                        help="where a residual pose applies, keep a network's output reprojected from the depth "
                        "sensor's view, without its second pass in the colour camera (the node's "
                        "registration_second_pass: false)")


def add_second_pass_weights_argument(parser: argparse.ArgumentParser) -> None:
    """`--second-pass-weights`: `SRConfig.second_pass_weights`, the network of that second pass."""
    parser.add_argument("--second-pass-weights", default="auto", metavar="auto|same|FILE",
                        help="the network of the second pass in the colour camera: auto = the shipped weights made "
                        "for the network's second pass when there are, else the network itself; same = the network "
                        "itself; or a *.safetensors file (default: auto)")


def bounded(kind: type, low: float | None = None, high: float | None = None) -> Callable[[str], Any]:
    """argparse `type` for an int or a finite float within [low, high] (None = unbounded)."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"from {low} to {high}" if low is not None and high is not None else (
                f"at least {low}" if low is not None else f"at most {high}")
            raise argparse.ArgumentTypeError(f"{text} is out of range; expected {span}")
        return value

    convert.__name__ = kind.__name__
    return convert


def user_path(flag: str, path: str | Path) -> Path:
    """`path` with a leading ~ or ~user expanded; UsageError naming `flag` when that user has no home."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory"
        raise UsageError(f"{flag} {path}: cannot expand {str(path).split('/')[0]} (no such user or home "
                         "directory); give the path in full") from None


def existing_file(flag: str, path: str | Path, what: str = "file") -> Path:
    """`path` as a Path; UsageError naming `flag` when it is not an existing file."""
    return _existing(flag, path, what, directory=False)


def existing_dir(flag: str, path: str | Path, what: str = "directory") -> Path:
    """`path` as a Path; UsageError naming `flag` when it is not an existing directory."""
    return _existing(flag, path, what, directory=True)


def _existing(flag: str, path: str | Path, what: str, directory: bool) -> Path:
    path = user_path(flag, path)
    if not path.exists():
        raise UsageError(f"{flag} {path}: no such {what}")
    if path.is_dir() != directory:
        raise UsageError(f"{flag} {path} is a {'file' if directory else 'directory'}; give a {what}")
    return path


def output_dir(flag: str, path: str | Path) -> Path:
    """An output directory (made later if missing); UsageError when a file is in the way or the
    nearest existing folder cannot be written."""
    if not str(path).strip():
        raise UsageError(f"{flag} '': give a directory (created if missing)")
    path = user_path(flag, path)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise UsageError(f"{flag} {path}: {part} is a file; give a directory (created if missing)")
            if not writable(part):
                raise UsageError(f"{flag} {path}: {part} is not writable; give a {flag} you can write to")
            break
    return path


def writable(folder: Path) -> bool:
    """Whether a file can be made in `folder`, tried with a temporary file that is removed at once
    (permission bits alone miss read-only mounts and folders such as /proc, where root cannot write)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".depth_sr_write_check_", dir=folder)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def output_file(flag: str, path: str | Path) -> Path:
    """An output file (its folder made later if missing); UsageError when it is a directory."""
    if not str(path).strip():
        raise UsageError(f"{flag} '': give a file name")
    path = user_path(flag, path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} is not writable; give a {flag} you can write to")
    output_dir(flag, path.parent)
    return path


def check_backbone(flag: str, name: str, kind: str | None = None) -> None:
    """UsageError unless `name` is a registered backbone (of `kind`, "network" or "classic")."""
    from depth_sr_ros.core.backbones import load_backbones

    registry = load_backbones()
    names = [n for n in registry.names() if kind is None or registry.get(n).kind == kind]
    if name not in names:
        what = f"{kind} backbone" if kind else "backbone"
        hint = f"; {name} is a classic backbone: it has no network" if kind == "network" and name in registry else ""
        raise UsageError(f"{flag} {name}: not a {what}{hint}; choose one of {', '.join(names)}")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """The `--no-progress` switch every long-running sub-command has."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs and summary only)")
