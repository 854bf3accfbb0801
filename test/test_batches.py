"""Training batches on the device: crops line up with the protocol's inputs on the whole frame,
every sample gets its source's degradations, and a step's batch depends only on (seed, rank, world,
step): the processes of a distributed run make the slices of one process's batch."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional torch extra: pip install -e '.[torch]'")

import torch

from depth_sr_ros.eval.protocol import protocol_bicubic_downsample
from depth_sr_ros.train.batches import BatchMaker, TrainFrame
from depth_sr_ros.train.config import GIVEN_INPUT
from depth_sr_ros.train.synthetic import SyntheticConfig, make_scene


def scenes(count=3, source=0, height=96, width=120):
    out = []
    for seed in range(count):
        frame = make_scene(SyntheticConfig(height=height, width=width), seed + 10 * source)
        out.append(TrainFrame(f"{source}-{seed}", frame.rgb, frame.depth, source, 1.0))
    return out


def dihedral(a: np.ndarray, code: int) -> np.ndarray:
    """The sample transform of BatchMaker._gather for an array whose first two axes are rows, cols."""
    n = a.shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rows, cols = (j, i) if code & 4 else (i, j)
    rows = n - 1 - rows if code & 1 else rows
    cols = n - 1 - cols if code & 2 else cols
    return a[rows, cols]


@pytest.mark.parametrize("scale", [4, 8])
def test_bicubic_crops_equal_the_protocol_input_of_the_whole_frame(scale):
    frames = scenes()
    maker = BatchMaker(frames, [{"bicubic": 1.0}], scale, patch=4 * scale, batch=6, seed=3)
    batch = maker.batch(7)
    plan = maker.plan(7)
    assert set(plan["dihedral"]) != {0}  # the check below covers flips and transposes
    m, p = maker.margin, maker.patch
    for k in range(6):
        frame = frames[plan["frame"][k]]
        lo, hi = np.nanmin(frame.gt), np.nanmax(frame.gt)
        h, w = (np.array(frame.gt.shape) // scale) * scale
        lr_frame = protocol_bicubic_downsample(frame.gt[:h, :w], scale)
        y, x = (plan["origin"][k] + m) // scale
        expected_lr = dihedral(lr_frame[y : y + p // scale, x : x + p // scale], plan["dihedral"][k])
        got_lr = batch.depth[k, 0].numpy() * (hi - lo) + lo
        np.testing.assert_allclose(got_lr, expected_lr, atol=2e-5 * (hi - lo))
        y, x = plan["origin"][k] + m
        expected_gt = dihedral(frame.gt[y : y + p, x : x + p], plan["dihedral"][k])
        np.testing.assert_allclose(batch.gt[k, 0].numpy() * (hi - lo) + lo, expected_gt, atol=1e-5)
        expected_rgb = dihedral(frame.rgb[y : y + p, x : x + p], plan["dihedral"][k])
        np.testing.assert_array_equal((batch.rgb[k].permute(1, 2, 0).numpy() * 255).round(), expected_rgb)


@pytest.mark.parametrize("scale", [4, 8])
def test_given_inputs_are_cropped_and_flipped_with_their_frame(scale):
    rng = np.random.default_rng(5)
    frames = [TrainFrame(f.name, f.rgb, f.gt, 0, 1.0, rng.uniform(1.0, 3.0, (-(-f.gt.shape[0] // scale),
                                                                         -(-f.gt.shape[1] // scale))).astype(np.float32))
              for f in scenes()]
    maker = BatchMaker(frames, [{GIVEN_INPUT: 1.0}], scale, patch=4 * scale, batch=6, seed=3)
    batch, plan = maker.batch(7), maker.plan(7)
    assert set(plan["dihedral"]) != {0}
    p = maker.patch // scale
    for k in range(6):
        frame = frames[plan["frame"][k]]
        lo, hi = np.nanmin(frame.gt), np.nanmax(frame.gt)
        y, x = (plan["origin"][k] + maker.margin) // scale
        expected = dihedral(frame.given_lr[y : y + p, x : x + p], plan["dihedral"][k])
        np.testing.assert_allclose(batch.depth[k, 0].numpy() * (hi - lo) + lo, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="no given input"):
        BatchMaker(scenes(), [{GIVEN_INPUT: 1.0}], scale, patch=4 * scale, batch=6)
    frames[0].given_lr = frames[0].given_lr[:-1]
    with pytest.raises(ValueError, match="not the model grid"):
        BatchMaker(frames, [{GIVEN_INPUT: 1.0}], scale, patch=4 * scale, batch=6)


def test_each_source_gets_its_own_mix_and_steps_are_reproducible():
    frames = scenes(2, source=0) + scenes(2, source=1)
    mixes = [{"bicubic": 1.0}, {"real_tof": 1.0}]
    maker = BatchMaker(frames, mixes, 4, patch=32, batch=32, seed=1, range_jitter=0.1)
    plan = maker.plan(5)
    names = [maker.degradations[d].name for d in plan["degradation"]]
    sources = maker.sources[plan["frame"]]
    assert {n for n, s in zip(names, sources) if s == 0} == {"bicubic"}
    assert {n for n, s in zip(names, sources) if s == 1} == {"real_tof"}
    a, b = maker.batch(5), maker.batch(5)
    for name in ("rgb", "depth", "mask", "gt", "gt_valid"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(maker.batch(6).depth, a.depth)
    halves = [BatchMaker(frames, mixes, 4, patch=32, batch=32, seed=1, rank=r, world=2, range_jitter=0.1)
              for r in (0, 1)]
    for key, value in plan.items():  # two processes draw the two halves of one process's batch
        np.testing.assert_array_equal(np.concatenate([h.plan(5)[key] for h in halves]), value)
    assert torch.equal(halves[0].batch(5).gt, a.gt[:16]) and torch.equal(halves[1].batch(5).gt, a.gt[16:])
    with pytest.raises(ValueError, match="split evenly"):
        BatchMaker(frames, mixes, 4, patch=32, batch=5, world=2)
    assert torch.isfinite(a.depth).all() and a.mask.shape == (32, 1, 8, 8)


def test_the_8_3_sensor_comes_to_the_model_grid_and_bad_settings_are_refused():
    frames = scenes(2, height=128, width=160)
    maker = BatchMaker(frames, [{"phone_tof": 1.0}], 4, patch=48, batch=4)
    batch = maker.batch(0)
    assert batch.depth.shape == (4, 1, 12, 12) and torch.isfinite(batch.depth).all()
    with pytest.raises(ValueError, match="multiple of scale"):
        BatchMaker(frames, [{"bicubic": 1.0}], 4, patch=30, batch=2)
    with pytest.raises(ValueError, match="smaller than"):
        BatchMaker(frames, [{"bicubic": 1.0}], 16, patch=128, batch=2)
    with pytest.raises(KeyError, match="unknown degradation"):
        BatchMaker(frames, [{"nope": 1.0}], 4, patch=32, batch=2)
