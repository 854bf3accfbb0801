"""Decoded training frames kept on disk, so that a run's start (and every resume) reads arrays
instead of decoding JPEG/PNG files and dequantising them again.

`nyu_train`'s 1000 frames take about 20 ms each to decode and 170 ms more to dequantise
(train/dequantize.py) on one core: three minutes at every start of a run, against a few seconds
to read them back. A source's frames are stored under `$XDG_CACHE_HOME/depth_sr_ros/train_frames/
<key>/<name>.npz` (uncompressed: rgb uint8, depth float32 metres, depth_lr when the folder has
one), where the key is a digest of everything that decides them: the folder, each file's size
and modification time, the unit, whether 0 is invalid, and the dequantisation. A changed file
gives a new key, so a stale entry is never read; a damaged entry is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from depth_sr_ros.train.datasets import FolderDataset, Frame

LOG = logging.getLogger(__name__)
FORMAT = 1


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/depth_sr_ros/train_frames` (`~/.cache` when XDG_CACHE_HOME is unset or relative)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", "")).expanduser()
    if not root.is_absolute():
        root = Path.home() / ".cache"
    return root / "depth_sr_ros" / "train_frames"


def source_key(dataset: FolderDataset, recipe: dict) -> str:
    """A digest of the folder's frames (paths, sizes, modification times), how it is read, and
    `recipe` (what is done to the frames after reading, e.g. the dequantisation)."""
    root = Path(dataset.config.root).resolve()
    files = []
    for name in dataset.names:
        for path in (dataset.depth_files()[name], dataset.rgb_file(name), root / "depth_lr" / f"{name}.png"):
            if path.exists():
                stat = path.stat()
                files.append([str(path), stat.st_size, stat.st_mtime_ns])
    description = {"format": FORMAT, "root": str(root), "files": files, "unit": dataset.config.depth_unit_m,
                   "zero_is_invalid": dataset.config.zero_is_invalid, "recipe": recipe}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def cached_frames(dataset: FolderDataset, recipe: dict, prepare: Callable[[Frame], Frame],
                  progress: Callable | None = None) -> list[Frame]:
    """The dataset's frames with `prepare` applied, read from the cache where present, else read,
    prepared and stored. `progress` wraps the frame loop (a tqdm) when given."""
    folder = cache_root() / source_key(dataset, recipe)
    folder.mkdir(parents=True, exist_ok=True)
    frames, made = [], 0
    indices = range(len(dataset))
    for index in progress(indices) if progress else indices:
        name = dataset.names[index]
        path = folder / f"{name}.npz"
        frame = _read(path, dataset, name)
        if frame is None:
            frame = prepare(dataset[index])
            _write(path, frame)
            made += 1
        frames.append(frame)
    LOG.info("%s: %d frames from the frame cache %s, %d decoded", dataset.config.root, len(frames) - made, folder,
             made)
    return frames


def _read(path: Path, dataset: FolderDataset, name: str) -> Frame | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError) as err:
        LOG.warning("%s: damaged frame cache entry (%s): decoding the frame again", path, err)
        return None
    config = dataset.config
    return Frame(name, arrays["rgb"], arrays["depth"], config.depth_unit_m, config.gdsr_style,
                 arrays.get("depth_lr"), dataset.intrinsics)


def _write(path: Path, frame: Frame) -> None:
    arrays = {"rgb": frame.rgb, "depth": frame.depth}
    if frame.depth_lr is not None:
        arrays["depth_lr"] = frame.depth_lr
    partial = path.with_name(path.stem + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)
