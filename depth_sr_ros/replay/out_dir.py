"""An output folder that a run shares with the user: only what a depth-sr run wrote is ever removed.

Each run records, in a manifest in the folder (`MANIFEST`), the paths it is about to write and,
when it ends, the files it wrote under its folders (`sr_bag/`, `previews/`). The next run into
the same folder removes exactly those recorded files (and the folders they were in, once empty),
says so in one line, and refuses to write where anything it did not record is in the way. So:

- a file or folder the user put in `--out` is never deleted, and never overwritten: a run whose
  output name is taken by something unrecorded stops with one line naming it and the flag;
- cleaning never follows a symbolic link: a recorded path reached through a link (a `previews`
  link to another folder) is left alone, and a link where an output goes is refused;
- an `--out` that holds an input (the bag being replayed), or lies inside it, is refused, unless
  that input is one a depth-sr run recorded in the folder under another owner (the demo's sample
  bag, replayed by the demo into the same folder);
- a manifest that is damaged or names paths outside the folder removes nothing.

Owners ("replay", "demo") keep separate records, so one never removes the other's files.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from depth_sr_ros.core.errors import UsageError
from depth_sr_ros.tools.usage import user_path

LOG = logging.getLogger(__name__)

MANIFEST = ".depth_sr_outputs.json"
FORMAT = 1


class OutputDir:
    """`path` as the output folder of one `owner`; `flag` names the option that chose it."""

    def __init__(self, path: Path, owner: str, flag: str = "--out") -> None:
        self.path = user_path(flag, path)
        self.owner = owner
        self.flag = flag

    # -- before writing ------------------------------------------------------------------------
    def check_inputs(self, inputs: Iterable[Path]) -> None:
        """UsageError when the folder holds an input or lies inside one (so that the run could
        overwrite or remove what it reads), unless another owner recorded that input as its own."""
        out = _resolved(self.path)
        others = {entry for owner, entries in self._records().items() if owner != self.owner for entry in entries}
        for given in inputs:
            source = _resolved(user_path("the input", given))
            if _within(out, source):
                raise UsageError(f"{self.flag} {self.path} lies inside the input {given}: the outputs would be "
                                 f"written into what is being read; give an {self.flag} outside it")
            if _within(source, out) and source.relative_to(out).as_posix().split("/")[0] + "/" not in others:
                raise UsageError(f"{self.flag} {self.path} holds the input {given}: a run into it could replace "
                                 f"what it reads; give an {self.flag} that does not contain the input")

    def prepare(self, names: Iterable[str]) -> None:
        """Make the folder, remove this owner's earlier outputs (one line saying so), and record
        `names` (relative paths; a trailing "/" marks a folder) as this run's before it writes them.

        UsageError naming the flag when the folder cannot be made or written, or when something
        this owner did not record is where one of `names` goes."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"{self.flag} {self.path}: cannot create the folder ({err.strerror or err}); "
                             f"give an {self.flag} you can write to") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise UsageError(f"{self.flag} {self.path}: the folder is not writable; give an {self.flag} you can "
                             "write to")
        removed, kept = self._remove_recorded()
        if removed:
            LOG.warning("%s %s: replacing an earlier %s run's outputs there (%d file(s) removed)", self.flag,
                        self.path, self.owner, removed)
        if kept:
            LOG.warning("%s %s: left %d recorded path(s) alone because they are reached through a symbolic link "
                        "or are no longer plain files: %s", self.flag, self.path, len(kept), ", ".join(kept[:5]))
        names = [str(name) for name in names]
        for name in names:
            target = self.path / name.rstrip("/")
            if os.path.lexists(target):
                what = ("a symbolic link" if target.is_symlink() else
                        f"a folder with files no depth-sr run recorded ({_some_names(target)})" if target.is_dir()
                        else "which no depth-sr run recorded")
                raise UsageError(f"{self.flag} {self.path} already holds {name.rstrip('/')}, {what}; it is left "
                                 f"as it is: move it, or give another {self.flag}")
        self._write_records(names)

    # -- after writing -------------------------------------------------------------------------
    def record_files(self, folder: str) -> None:
        """Record the plain files now under `folder` (relative; no links followed) as this run's."""
        root = self.path / folder
        if root.is_symlink() or not root.is_dir():
            return
        found = []
        for directory, dirnames, filenames in os.walk(root):  # os.walk does not follow links by default
            base = Path(directory).relative_to(self.path)
            found += [f"{(base / d).as_posix()}/" for d in dirnames if not (Path(directory) / d).is_symlink()]
            found += [(base / f).as_posix() for f in filenames if _is_plain_file(Path(directory) / f)]
        records = self._records().get(self.owner, [])
        self._write_records([*records, *(f for f in found if f not in records)])

    # -- the manifest --------------------------------------------------------------------------
    def _records(self) -> dict[str, list[str]]:
        """owner -> recorded relative paths; {} when there is no manifest or it cannot be trusted."""
        manifest = self.path / MANIFEST
        if not _is_plain_file(manifest):
            return {}
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            owners = data["owners"]
            return {str(owner): [p for p in entries if isinstance(p, str) and _safe_relative(p)]
                    for owner, entries in owners.items() if isinstance(entries, list)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            LOG.warning("%s %s: ignoring the damaged record of earlier outputs %s (%s); nothing is removed",
                        self.flag, self.path, MANIFEST, err)
            return {}

    def _write_records(self, entries: list[str]) -> None:
        records = self._records()
        records[self.owner] = entries
        manifest = self.path / MANIFEST
        if os.path.lexists(manifest) and not _is_plain_file(manifest):
            raise UsageError(f"{self.flag} {self.path}: {MANIFEST} is not a plain file; remove it or give another "
                             f"{self.flag}")
        temporary = manifest.with_name(f"{MANIFEST}.tmp")
        text = json.dumps({"format": FORMAT, "owners": records}, indent=1) + "\n"
        try:  # O_NOFOLLOW: a link in the temporary file's place is refused, never written through
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, manifest)
        except OSError as err:
            raise UsageError(f"{self.flag} {self.path}: cannot write there ({err.strerror or err}); give an "
                             f"{self.flag} you can write to") from None

    def _remove_recorded(self) -> tuple[int, list[str]]:
        """Remove this owner's recorded files, then its recorded folders that are empty; return
        (files removed, recorded paths left alone because a link or a non-file is in the way)."""
        entries = self._records().get(self.owner, [])
        removed, kept = 0, []
        for entry in (e for e in entries if not e.endswith("/")):
            target = self.path / entry
            if not os.path.lexists(target):
                continue
            if _through_link(self.path, entry) or not _is_plain_file(target):
                kept.append(entry)
                continue
            target.unlink()
            removed += 1
        folders = sorted((e.rstrip("/") for e in entries if e.endswith("/")), key=lambda e: -e.count("/"))
        for entry in folders:
            target = self.path / entry
            if _through_link(self.path, entry) or target.is_symlink() or not target.is_dir():
                continue
            if not any(target.iterdir()):
                target.rmdir()
        self._write_records([])
        return removed, kept


def _is_plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _some_names(folder: Path, most: int = 3) -> str:
    names = sorted(p.name for p in folder.iterdir())
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _through_link(root: Path, relative: str) -> bool:
    """Whether a folder between `root` and `root/relative` (the last part excluded) is a symbolic link."""
    parts = PurePosixPath(relative).parts[:-1]
    return any((root.joinpath(*parts[: i + 1])).is_symlink() for i in range(len(parts)))


def _safe_relative(entry: str) -> bool:
    path = PurePosixPath(entry.rstrip("/"))
    return bool(entry.strip("/")) and not path.is_absolute() and ".." not in path.parts and "\\" not in entry


def _resolved(path: Path) -> Path:
    return path.resolve(strict=False)


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents
