"""The fixed splits: recognised by content, the rule holds for every frame, held-out frames never train."""

import shutil

import numpy as np
import pytest
from PIL import Image

from depth_sr_ros.eval import splits
from depth_sr_ros.train.datasets import FolderDataset, describe_folder


def test_the_shipped_splits_follow_their_rules():
    known = splits.known_sets()
    rgbdd = known["rgbdd_dev"]
    assert len(rgbdd.names("heldout")) == 56 and len(rgbdd.names("train")) == 157
    assert all(n.startswith("20200605") for n in rgbdd.names("heldout"))
    assert not any(n.startswith("20200605") for n in rgbdd.names("train"))
    middlebury = known["middlebury"]
    assert middlebury.names("heldout") == ["15", "16", "17", "18", "19", "20"]
    assert middlebury.names("train") == [f"{i:02d}" for i in range(1, 15)]
    dctnet = next(p for p in rgbdd.published if p.method.startswith("DCTNet"))
    assert dctnet.rmse == {4: 1.08, 8: 1.74, 16: 3.05}


def test_shared_folders_are_recognised_frame_by_frame(shared_data):
    for name, total in (("rgbdd_dev", 213), ("middlebury", 20)):
        dataset = FolderDataset(describe_folder(shared_data / name))
        recognition = splits.recognise(dataset.depth_files(), dataset.config.gdsr_style)
        assert recognition is not None and recognition.known.name == name
        assert len(recognition.split_of) == total and not recognition.unmatched
    nyu = FolderDataset(describe_folder(shared_data / "nyu_test"))
    assert splits.recognise(nyu.depth_files(), nyu.config.gdsr_style) is None


def test_a_partial_copy_is_recognised_and_a_lookalike_is_not(shared_data, tmp_path):
    source = shared_data / "middlebury"
    copy = tmp_path / "anywhere"
    for sub in ("rgb", "depth"):
        (copy / sub).mkdir(parents=True)
    for name in ("03", "16"):
        shutil.copy(source / "rgb" / f"{name}.png", copy / "rgb" / f"{name}.png")
        shutil.copy(source / "depth" / f"{name}.png", copy / "depth" / f"{name}.png")
    shutil.copy(source / "dataset.json", copy / "dataset.json")
    dataset = FolderDataset(describe_folder(copy))
    recognition = splits.recognise(dataset.depth_files(), "middlebury")
    assert recognition is not None and recognition.split_of == {"03": "train", "16": "heldout"}
    assert splits.select(dataset.names, recognition, "train") == ["03"]
    # The same names with other content (another benchmark numbered 01, 02, ...) are no known set.
    depth = np.asarray(Image.open(copy / "depth" / "16.png")).copy()
    depth[0, 0] ^= 1
    Image.fromarray(depth).save(copy / "depth" / "16.png")
    recognition = splits.recognise(dataset.depth_files(), "middlebury")
    assert recognition.split_of == {"03": "train"} and recognition.unmatched == ("16",)
    with pytest.raises(ValueError, match="use --split all"):
        splits.select(["01"], None, "heldout")
