"""The folder reader and its presets, scene filters, and the rosbag2 reader."""


import numpy as np
import pytest
from PIL import Image

from depth_sr_ros.train.datasets import BagConfig, FolderDataset, describe_folder, parse_scenes, read_bag


def test_parse_scenes():
    assert parse_scenes("15-20") == ("15", "16", "17", "18", "19", "20")
    assert parse_scenes("01-03,7") == ("01", "02", "03", "7")
    assert parse_scenes(None) is None


def test_presets_convert_units(shared_data):
    mb = FolderDataset(describe_folder(shared_data / "middlebury", ["15"]))[0]
    raw = np.asarray(Image.open(shared_data / "middlebury" / "depth" / "15.png")).astype(np.float32)
    np.testing.assert_allclose(mb.native, raw, atol=1e-4)  # 0-255 scale back for the protocol
    assert mb.gdsr_style == "middlebury" and np.isfinite(mb.depth).all()  # 0 is a value there

    tum = FolderDataset(describe_folder(shared_data / "tum_fr1", ["00"]))[0]
    raw = np.asarray(Image.open(shared_data / "tum_fr1" / "depth" / "00.png")).astype(np.float64)
    assert np.isnan(tum.depth[raw == 0]).all()
    np.testing.assert_allclose(tum.depth[raw > 0], raw[raw > 0] / 5000, rtol=1e-6)
    assert tum.intrinsics is not None and tum.intrinsics.fx == pytest.approx(517.3)

    nyu = FolderDataset(describe_folder(shared_data / "nyu_test"))
    assert nyu.names == ["1000", "1001", "1002"]
    assert 0.5 < np.nanmedian(nyu[0].depth) < 10  # metres


def test_folder_reader_scene_filter_depth_lr_and_errors(tmp_path):
    for sub in ("rgb", "depth", "depth_lr"):
        (tmp_path / sub).mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / "rgb" / f"{name}.jpg")
        Image.fromarray(np.full((8, 12), 1500, np.uint16)).save(tmp_path / "depth" / f"{name}.png")
    Image.fromarray(np.array([[0, 2000, 2000]], np.uint16)).save(tmp_path / "depth_lr" / "b.png")
    ds = FolderDataset(describe_folder(tmp_path))
    assert ds.names == ["a", "b"] and ds[0].depth_lr is None
    frame = FolderDataset(describe_folder(tmp_path, ["b"]))[0]
    np.testing.assert_allclose(frame.depth, 1.5)
    assert np.isnan(frame.depth_lr[0, 0]) and frame.depth_lr[0, 1] == pytest.approx(2.0)
    with pytest.raises(FileNotFoundError, match="zz"):
        FolderDataset(describe_folder(tmp_path, ["zz"]))


def test_a_training_source_overrides_the_folder_unit(tmp_path):
    pytest.importorskip("torch", reason="the training loop needs the optional torch extra")
    from depth_sr_ros.train.loop import SourceConfig

    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / "rgb" / "a.jpg")
    Image.fromarray(np.full((8, 12), 1500, np.uint16)).save(tmp_path / "depth" / "a.png")
    source = SourceConfig(str(tmp_path), scenes="a", depth_unit_m=0.0001)
    np.testing.assert_allclose(source.frames()[0].depth, 0.15)


def test_rosbag_reader_pairs_ground_truth_with_rgb_and_sensor_depth(tmp_path):
    from depth_sr_ros.replay import sample_bag

    bag = sample_bag.build_sample_bag(tmp_path / "bag")
    frames = read_bag(BagConfig(str(bag.path), sample_bag.RGB_TOPIC, sample_bag.GT_TOPIC,
                                lr_topic=sample_bag.DEPTH_TOPIC))
    assert len(frames) == 3  # frame 03 has no depth
    for frame in frames:
        assert frame.rgb.shape == (480, 640, 3) and frame.depth.shape == (480, 640)
        assert frame.depth_lr is not None and frame.depth_lr.shape == (120, 160)
        assert 0.3 < np.nanmedian(frame.depth) < 6.0
    with pytest.raises(KeyError, match="/nope"):
        read_bag(BagConfig(str(bag.path), sample_bag.RGB_TOPIC, "/nope"))
