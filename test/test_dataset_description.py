"""dataset.json: how a folder (or a bag) is read and scored, whatever the folder is called."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

from depth_sr_ros.train.datasets import FolderDataset, describe_bag, describe_folder


def write_folder(root, depth, description=None):
    for sub in ("rgb", "depth"):
        (root / sub).mkdir(parents=True)
    Image.fromarray(np.zeros(depth.shape + (3,), np.uint8)).save(root / "rgb" / "a.png")
    Image.fromarray(depth).save(root / "depth" / "a.png")
    if description is not None:
        (root / "dataset.json").write_text(json.dumps(description))
    return root


def test_description_decides_unit_zeros_and_style_not_the_folder_name(tmp_path):
    depth = np.array([[0, 10], [100, 255]], np.uint8)
    # Named like a millimetre sensor folder, described as a 0-255 benchmark set.
    root = write_folder(tmp_path / "nyu_lookalike", depth,
                        {"depth_unit_m": 0.01, "zero_is_invalid": False, "gdsr_style": "middlebury"})
    config = describe_folder(root)
    assert (config.depth_unit_m, config.zero_is_invalid, config.gdsr_style) == (0.01, False, "middlebury")
    assert config.source.endswith("dataset.json")
    frame = FolderDataset(config)[0]
    np.testing.assert_allclose(frame.depth, depth * np.float32(0.01))  # the 0 is a value
    assert frame.gdsr_style == "middlebury"

    root = write_folder(tmp_path / "middlebury_sensor", np.array([[0, 1500]], np.uint16),
                        {"depth_unit_m": 0.001, "zero_is_invalid": True, "gdsr_style": "rgbdd"})
    frame = FolderDataset(describe_folder(root))[0]
    assert np.isnan(frame.depth[0, 0]) and frame.depth[0, 1] == pytest.approx(1.5)
    assert frame.gdsr_style == "rgbdd"


def test_without_a_description_the_folder_name_preset_applies_and_is_logged(tmp_path, caplog):
    root = write_folder(tmp_path / "tum_copy", np.array([[0, 5000]], np.uint16))
    with caplog.at_level(logging.INFO):
        config = describe_folder(root)
    assert config.depth_unit_m == pytest.approx(1 / 5000) and config.source == "preset tum"
    assert "folder-name preset 'tum'" in caplog.text
    plain = write_folder(tmp_path / "my_sensor", np.array([[0, 1500]], np.uint16))
    with caplog.at_level(logging.INFO):
        config = describe_folder(plain)
    assert (config.depth_unit_m, config.zero_is_invalid, config.gdsr_style) == (0.001, True, "nyu")
    assert "default description" in caplog.text


@pytest.mark.parametrize("description, message", [
    ({"depth_unit_m": 0.001, "zero_is_invalid": True}, "missing gdsr_style"),
    ({"depth_unit_m": "mm", "zero_is_invalid": True, "gdsr_style": "nyu"}, "depth_unit_m must be a number"),
    ({"depth_unit_m": -1, "zero_is_invalid": True, "gdsr_style": "nyu"}, "positive"),
    ({"depth_unit_m": 0.001, "zero_is_invalid": 0, "gdsr_style": "nyu"}, "true or false"),
    ({"depth_unit_m": 0.001, "zero_is_invalid": True, "gdsr_style": "kitti"}, "one of middlebury, nyu, rgbdd"),
    ([1, 2], "JSON object"),
])
def test_a_bad_description_is_a_clear_error(tmp_path, description, message):
    root = write_folder(tmp_path / "x", np.ones((2, 2), np.uint16), description)
    with pytest.raises(ValueError, match=message):
        describe_folder(root)


def test_every_shared_folder_has_a_description_that_matches_its_readme(shared_data):
    expected = {"middlebury": (0.01, False, "middlebury"), "nyu_test": (0.001, True, "nyu"),
                "tum_fr1": (0.0002, True, "nyu"), "rgbdd_dev": (0.001, True, "rgbdd")}
    for name, values in expected.items():
        config = describe_folder(shared_data / name)
        assert config.source.endswith("dataset.json"), name
        assert (config.depth_unit_m, config.zero_is_invalid, config.gdsr_style) == pytest.approx(values), name


def test_a_bag_is_described_by_the_dataset_json_in_its_folder(tmp_path):
    bag = tmp_path / "bag"
    bag.mkdir()
    assert describe_bag(bag).gdsr_style == "nyu"  # default: millimetres, NYU-style
    (bag / "dataset.json").write_text(json.dumps({"depth_unit_m": 0.001, "zero_is_invalid": True,
                                                  "gdsr_style": "rgbdd"}))
    assert describe_bag(bag).gdsr_style == "rgbdd"
    (bag / "dataset.json").write_text(json.dumps({"depth_unit_m": 0.001, "zero_is_invalid": False,
                                                  "gdsr_style": "rgbdd"}))
    with pytest.raises(ValueError, match="REP 118"):
        describe_bag(bag)
