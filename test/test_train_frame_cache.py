"""The frame cache: a second read of a source gives the same frames without decoding; a changed file
or another dequantisation is a new entry; a damaged entry is decoded again."""

import os
import shutil

import numpy as np

from depth_sr_ros.train.datasets import FolderDataset, describe_folder
from depth_sr_ros.train.frame_cache import cache_root, cached_frames


def copy_frames(shared_data, tmp_path, names=("01", "02")):
    root = tmp_path / "middlebury_copy"
    for sub in ("rgb", "depth"):
        (root / sub).mkdir(parents=True)
        for name in names:
            source = next((shared_data / "middlebury" / sub).glob(f"{name}.*"))
            shutil.copy(source, root / sub / source.name)
    shutil.copy(shared_data / "middlebury" / "dataset.json", root / "dataset.json")
    return root


def test_frames_come_back_from_the_cache_equal_and_a_change_is_a_new_entry(shared_data, tmp_path):
    root = copy_frames(shared_data, tmp_path)
    calls = []

    def prepare(frame):
        calls.append(frame.name)
        return frame

    def read(recipe):
        return cached_frames(FolderDataset(describe_folder(root)), recipe, prepare)

    first = read({"dequantize": None})
    second = read({"dequantize": None})
    assert calls == ["01", "02"]  # decoded once
    direct = list(FolderDataset(describe_folder(root)))
    for a, b, c in zip(first, second, direct, strict=True):
        assert a.name == b.name == c.name and np.array_equal(b.rgb, c.rgb)
        assert np.array_equal(b.depth, c.depth, equal_nan=True) and b.depth.dtype == np.float32
    read({"dequantize": {"bins_per_m": 25.5}})
    assert calls == ["01", "02", "01", "02"]  # another recipe: another entry
    depth = root / "depth" / next((root / "depth").iterdir()).name
    os.utime(depth, ns=(1, 1))
    read({"dequantize": None})
    assert len(calls) == 6  # a changed file: the source is a new entry, never a stale one
    for entry in cache_root().rglob("02.npz"):
        entry.write_bytes(b"not an npz")
    again = read({"dequantize": None})
    assert calls[6:] == ["02"] and np.array_equal(again[1].rgb, direct[1].rgb)
