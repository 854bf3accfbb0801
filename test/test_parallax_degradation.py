"""`--degrade parallax` (train/parallax.py): a sensor beside the camera whose depth is labelled registered."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the sensor models run on the optional torch extra: pip install -e '.[torch]'")

from depth_sr_ros.cli import main
from depth_sr_ros.core.reprojection import register_residual
from depth_sr_ros.train.parallax import PARALLAX_SENSORS, Parallax, RegisteredParallax, parallax_degradation
from depth_sr_ros.train.sensor_presets import get_degradation


def _scene() -> np.ndarray:
    depth = np.full((96, 128), 3.0, np.float32)
    depth[30:60, 40:70] = 1.0
    return depth


def test_parallax_moves_near_edges_more_than_far_ones_and_leaves_no_hole() -> None:
    step = Parallax(baseline_m=(0.05, 0.0, 0.0))
    seen = step.render(_scene())
    assert np.isfinite(seen).all()  # disocclusions filled, as a phone pipeline does
    box = np.nonzero(seen[45] == 1.0)[0]
    shift = step.camera(96, 128).fx * 0.05 / 1.0
    assert abs(box.mean() - (54.5 - shift)) < 1.0  # the sensor to the right sees the box further left
    # Registering with the sensor's pose undoes it, away from the disoccluded band.
    back = register_residual(seen, step.camera(96, 128), step.pose(), supersample=1)
    assert np.allclose(back[35:55, 45:65], 1.0)


def test_the_preset_and_the_batch_path_agree() -> None:
    import torch

    from depth_sr_ros.train.degradations import Context

    degradation = get_degradation("parallax")
    assert degradation == parallax_degradation()
    gt = torch.from_numpy(np.stack([_scene(), _scene()[:, ::-1].copy()]))[:, None]
    lr = degradation.apply(gt, Context(4, torch.Generator().manual_seed(0)))
    assert lr.shape == (2, 1, 24, 32)
    single = degradation(_scene(), 4, np.random.default_rng(0))
    assert np.allclose(lr[0, 0].numpy(), single, atol=1e-6)


def _batch(count: int = 4):
    import torch

    scenes = [np.roll(_scene(), shift, axis=1) for shift in range(0, 8 * count, 8)]
    return torch.from_numpy(np.stack(scenes))[:, None]


def test_registered_parallax_without_an_offset_is_the_bicubic_input() -> None:
    import dataclasses

    import torch

    from depth_sr_ros.train.degradations import Context

    still = dataclasses.replace(RegisteredParallax(), baseline_range_m=(0.0, 0.0), forward_offset_m=0.0,
                                pose_error_m=0.0)
    gt = _batch()
    lr = still.apply(gt, Context(4, torch.Generator().manual_seed(0)))
    bicubic = get_degradation("bicubic").apply(gt, Context(4, torch.Generator().manual_seed(0)))
    assert torch.equal(lr, bicubic)


def test_registered_parallax_undoes_most_of_the_offset_and_draws_per_sample() -> None:
    import dataclasses

    import torch

    from depth_sr_ros.train.degradations import Context

    degradation = get_degradation("parallax_registered")
    assert isinstance(degradation, RegisteredParallax)
    gt = _batch()
    context = Context(4, torch.Generator().manual_seed(3))
    true, estimate, focal = degradation.draw_poses(len(gt), context)
    length = np.hypot(true[:, 0], true[:, 1])
    assert ((length >= 0.01) & (length <= 0.05)).all() and len(np.unique(np.round(length, 6))) == len(gt)
    assert (np.abs(estimate - true)[:, :3] <= degradation.pose_error_m + 1e-12).all()
    assert ((focal >= 400) & (focal <= 560)).all()

    lr = degradation.apply(gt, Context(4, torch.Generator().manual_seed(3)))
    again = degradation.apply(gt, Context(4, torch.Generator().manual_seed(3)))
    assert torch.equal(torch.nan_to_num(lr, 99.0), torch.nan_to_num(again, 99.0))  # the generator decides
    bicubic = get_degradation("bicubic").apply(gt, Context(4, torch.Generator().manual_seed(0)))
    inner = (..., slice(3, -3), slice(3, -3))  # away from the border band no sensor pixel reaches
    registered_error = (lr - bicubic)[inner].abs().nanmean()
    # Registered with the true pose, the input is at least as close as with the drawn estimate.
    exact_pose = dataclasses.replace(degradation, pose_error_m=0.0)
    exact = exact_pose.apply(gt, Context(4, torch.Generator().manual_seed(3)))
    assert (exact - bicubic)[inner].abs().nanmean() <= registered_error + 1e-3
    # The same sensors' inputs left unregistered are much further off.
    seen = torch.from_numpy(np.stack([
        degradation.downsample(Parallax(baseline_m=tuple(p[:3]), horizontal_fov_deg=_fov(f, 128)).render(g[0].numpy()),
                                4, np.random.default_rng(0))
        for g, p, f in zip(gt, true, focal, strict=True)]))[:, None]
    assert registered_error < 0.5 * (seen - bicubic)[inner].abs().nanmean()


@pytest.mark.parametrize(("name", "shape"), [("parallax_registered_tof", (24, 32)),
                                             ("parallax_registered_phone_tof", (36, 48))])
def test_registered_tof_sensors_come_at_their_own_resolution(name: str, shape: tuple[int, int]) -> None:
    import torch

    from depth_sr_ros.train.degradations import Context

    gt = _batch()
    lr = get_degradation(name).apply(gt, Context(4, torch.Generator().manual_seed(1)))
    assert lr.shape == (len(gt), 1, *shape)  # the phone ToF: pitch 2/3 of a model-grid pixel (callers resample)
    assert torch.isfinite(lr).float().mean() > 0.8 and not torch.equal(lr[0], lr[1])
    near = lr[:, 0, shape[0] // 2 - 1 : shape[0] // 2 + 2, :].nanmedian()  # rows through the box
    assert 0.9 < float(near) < 3.1


def _fov(focal_px: float, width: int) -> float:
    """The horizontal field of view (degrees) of a `width`-pixel image with this focal length."""
    return float(np.degrees(2.0 * np.arctan(0.5 * width / focal_px)))


@pytest.mark.parametrize("flags", [["--baseline", "0.03", "0", "0"], ["--registration", "tf"],
                                   ["--degrade", "parallax", "--baseline", "3", "0", "0"],
                                   ["--degrade", "real_tof", "--baseline", "0.03", "0", "0"],
                                   ["--degrade", "real_tof", "--registration", "tf"]])
def test_evaluate_flag_mistakes_are_one_line(flags: list[str], shared_data, capsys) -> None:
    code = main(["evaluate", "--data", str(shared_data / "nyu_test"), "--scale", "4", *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--baseline" in err or "--registration" in err)
    if "--degrade" not in flags or "real_tof" in flags:  # the sensors that take a pose, every one named
        assert all(name in err for name in PARALLAX_SENSORS), err


def _evaluate(shared_data, tmp_path, name: str, *flags: str) -> dict:
    """`depth-sr evaluate` (bicubic, x4) of 10 held-out rgbdd_dev frames spread over the day."""
    import json

    names = sorted(p.stem for p in (shared_data / "rgbdd_dev" / "depth").glob("20200605*.png"))
    scenes = ",".join(names[int(i)] for i in np.linspace(0, len(names) - 1, 10).round())
    out = tmp_path / f"{name}.json"
    assert main(["evaluate", "--data", str(shared_data / "rgbdd_dev"), "--scale", "4", "--backbone", "bicubic",
                 "--scenes", scenes, "--json", str(out), "--no-progress", *flags]) == 0
    return json.loads(out.read_text())


def test_evaluate_registers_by_default_and_leaves_registered_inputs_alone(shared_data, tmp_path) -> None:
    unregistered = _evaluate(shared_data, tmp_path, "none", "--degrade", "parallax", "--registration", "none")
    default = _evaluate(shared_data, tmp_path, "default", "--degrade", "parallax")
    assert default["degrade"] == "parallax+registration_auto", default["registration"]
    assert default["registration"].endswith("; applied")
    assert default["methods"]["bicubic"]["rmse"] < 0.4 * unregistered["methods"]["bicubic"]["rmse"]
    plain, as_made = _evaluate(shared_data, tmp_path, "plain"), _evaluate(shared_data, tmp_path, "as_made",
                                                                          "--registration", "none")
    assert plain["degrade"] == as_made["degrade"] == "bicubic" and "not applied" in plain["registration"]
    assert plain["methods"]["bicubic"]["rmse"] == as_made["methods"]["bicubic"]["rmse"]


def test_evaluate_registers_the_phone_tof_beside_the_camera_with_its_pose(shared_data, tmp_path) -> None:
    unregistered = _evaluate(shared_data, tmp_path, "none", "--degrade", "parallax_phone_tof", "--registration", "none")
    given = _evaluate(shared_data, tmp_path, "tf", "--degrade", "parallax_phone_tof", "--registration", "tf")
    assert given["degrade"] == "parallax_phone_tof+registration_tf"
    assert given["methods"]["bicubic"]["rmse"] < 0.7 * unregistered["methods"]["bicubic"]["rmse"]
