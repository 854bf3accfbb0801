"""`depth-sr evaluate`: score a backbone beside `bicubic` and `guided_filter` on an RGB-D folder.

    depth-sr evaluate --data ../shared/data/rgbdd_dev --scale 4 --protocol gdsr \\
        [--backbone lite] [--weights models/lite_x4.safetensors] [--split heldout|train|all] \\
        [--degrade real_tof --misregistration 2] [--json out/eval_x4.json] [--csv out/eval_x4.csv] \\
        [--previews out/previews]

The folder's `dataset.json` says how to read and score it (train/datasets.py). Protocols are in
`depth_sr_ros.eval.protocol`. Every method sees the same inputs: the real `depth_lr/` when the
folder has one, else the `--degrade` sensor model (default: the gdsr protocol's PIL bicubic
downsampling), drawn with one seed per frame. A folder recognised as a known set
(`eval/splits.py`: `rgbdd_dev`, `middlebury`, by content) is scored on its held-out split unless
`--split` or `--scenes` says otherwise. Beside ours the table shows peers scored on the same frames
(`peer_reference/` beside the data folder: their mean over exactly these frames, and our ratio to
it) and, labelled as figures over other frames and without a ratio, the published ones, unless the
model's card says it was trained on test frames of that benchmark or does not say (eval/yardsticks.py).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from depth_sr_ros.core.backbones import get_backbone
from depth_sr_ros.core.metrics import mean_metrics
from depth_sr_ros.eval import splits, yardsticks
from depth_sr_ros.eval.protocol import Method, gdsr_frame, make_input, metric_frame, network_method
from depth_sr_ros.eval.registration import calibrated, describe, given, registered_input
from depth_sr_ros.optional import has_torch
from depth_sr_ros.tools.usage import (
    UsageError,
    add_no_progress,
    add_second_pass_argument,
    add_second_pass_weights_argument,
    bounded,
    check_backbone,
    existing_dir,
    existing_file,
    output_dir,
    output_file,
)
from depth_sr_ros.train.datasets import FolderDataset, Frame, describe_folder, parse_scenes

if TYPE_CHECKING:
    from depth_sr_ros.train.degradations import Degradation

LOG = logging.getLogger(__name__)
BASELINES = ("bicubic", "guided_filter")
# The set whose held-out gdsr figure (bicubic inputs) is a card's `val_rmse`, what `auto` ranks by:
# the ToF domain the package is for.
RANK_SET = "rgbdd_dev"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder (rgb/, depth/, dataset.json, optional depth_lr/)")
    parser.add_argument("--scale", type=int, required=True, choices=(2, 4, 8, 16))
    parser.add_argument("--backbone", help="backbone to evaluate (default: the shipped default for the scale)")
    parser.add_argument("--weights", help="weights for a network backbone (default: the shipped ones)")
    parser.add_argument("--protocol", choices=("gdsr", "metric"), default="gdsr")
    parser.add_argument("--degrade", metavar="NAME",
                        help="sensor model for the low-resolution input in place of the protocol's bicubic: a "
                        "preset of train/sensor_presets.py (real_tof, phone_tof, tof, misregistration, sensor_noise, "
                        "...; needs torch)")
    parser.add_argument("--misregistration", type=bounded(float, 0.0, 50.0), metavar="PX",
                        help="fix the sensor's misregistration at PX high-resolution pixels (with --degrade "
                        "real_tof, phone_tof or misregistration; default: their 0-3 px mix)")
    parser.add_argument("--baseline", type=float, nargs=3, metavar=("X", "Y", "Z"),
                        help="with --degrade parallax (or parallax_tof, parallax_phone_tof): the depth sensor's "
                        "position from the colour camera in metres (x right, y down, z forward; default 0.03 0.01 0)")
    parser.add_argument("--rotation", type=float, nargs=3, metavar=("RX", "RY", "RZ"),
                        help="with --degrade parallax (or parallax_tof, parallax_phone_tof): the depth sensor's "
                        "rotation vector in degrees (default 0 0 0)")
    parser.add_argument("--registration", choices=("none", "tf", "auto"), default="auto",
                        help="auto: estimate the depth sensor's residual extrinsic from colour and input depth over "
                        "30 frames (no ground truth) and apply it when significant, as the node does: a network in "
                        "the sensor's view, a classic upsampler on the registered input (registered inputs are left "
                        "as they are); none: the inputs as made; tf (with --degrade parallax, parallax_tof or "
                        "parallax_phone_tof): apply the simulated sensor's true pose (eval/registration.py)")
    add_second_pass_argument(parser)
    add_second_pass_weights_argument(parser)
    parser.add_argument("--split", choices=("heldout", "train", "all"),
                        help="frames of a recognised set to score (default: heldout for a recognised set "
                        "without --scenes, else all)")
    parser.add_argument("--scenes", help="frames to use, e.g. 15-20 or 1000,1002 (default: all)")
    parser.add_argument("--seed", type=bounded(int, 0), default=0, help="seed of the degradation's randomness")
    parser.add_argument("--json", help="write the results here (default: runs/evaluate/<set>_<split>_x<scale>_"
                        "<protocol>_<input>.json)")
    parser.add_argument("--csv", help="write one row per frame here (default: the --json path with .csv)")
    parser.add_argument("--previews", help="write one PNG per frame (inputs, predictions, error maps) here")
    parser.add_argument("--update-card", action="store_true",
                        help="record the numbers (and this command) in the model card of --weights")
    add_no_progress(parser)


def check_args(args: argparse.Namespace) -> Degradation | None:
    """Every flag checked before any network loads (UsageError naming the flag); the degradation."""
    folder = open_folder(args.data, args.scenes)
    if args.backbone is not None:
        check_backbone("--backbone", args.backbone)
    if args.weights is not None:
        existing_file("--weights", args.weights, "weights file")
    if args.json:
        output_file("--json", args.json)
    if args.csv:
        output_file("--csv", args.csv)
    if args.previews:
        output_dir("--previews", args.previews)
    if args.update_card and not args.weights:
        raise UsageError("--update-card needs --weights: the card to update is the one beside that file")
    if args.misregistration is not None and not args.degrade:
        raise UsageError("--misregistration needs --degrade (real_tof, phone_tof or misregistration)")
    posed = bool(args.baseline or args.rotation or args.registration == "tf")
    # the sensors of train/parallax.PARALLAX_SENSORS (named here: that module needs torch)
    needs_pose = ("--baseline, --rotation and --registration tf need --degrade parallax, parallax_tof or "
                  "parallax_phone_tof (the sensor's pose)")
    if posed and not args.degrade:
        raise UsageError(needs_pose)
    if max(map(abs, args.baseline or [0.0])) > 0.5 or max(map(abs, args.rotation or [0.0])) > 10.0:
        raise UsageError("--baseline is metres (at most 0.5 each) and --rotation degrees (at most 10 each)")
    if not args.degrade:
        return None
    if not has_torch():
        raise UsageError(f"--degrade {args.degrade}: the sensor models run on PyTorch, which is not installed")
    from depth_sr_ros.train.parallax import DEFAULT_BASELINE_M, PARALLAX_SENSORS, parallax_sensor
    from depth_sr_ros.train.sensor_presets import get_degradation

    if posed and args.degrade not in PARALLAX_SENSORS:
        raise UsageError(needs_pose)
    if args.degrade in PARALLAX_SENSORS:
        return parallax_sensor(args.degrade, args.baseline or DEFAULT_BASELINE_M, args.rotation or (0.0, 0.0, 0.0),
                               folder.intrinsics)
    try:
        return get_degradation(args.degrade, args.misregistration)
    except (KeyError, ValueError) as err:
        raise UsageError(f"--degrade {args.degrade}: {str(err).strip(chr(34) + chr(39))}") from None


def build_method(name: str, scale: int, weights: str | None) -> Method:
    """The method for a backbone name; networks load through models.weights (None = shipped)."""
    spec = get_backbone(name)
    if spec.kind == "classic":
        return spec.factory().upsample
    from depth_sr_ros.models.weights import load_network

    return network_method(load_network(name, scale, weights))


def second_pass_method(name: str, scale: int, weights: str | None, choice: str) -> tuple[Method | None, str | None]:
    """The second pass's own network for backbone `name` (`choice`: `--second-pass-weights`) and its
    weights file; (None, None) when the second pass runs the method itself (a classic backbone too)."""
    if get_backbone(name).kind != "network":
        return None, None
    from depth_sr_ros.models import zoo
    from depth_sr_ros.models.weights import load_network

    path = zoo.second_pass_choice(choice, name, scale, weights)
    return (None, None) if path is None else (network_method(load_network(name, scale, path)), str(path))


def _default_backbone(scale: int) -> tuple[str, str | None]:
    from depth_sr_ros.models.zoo import default_backbone

    name, path = default_backbone(scale)
    return name, str(path) if path else None


def open_folder(data: str, scenes: str | None) -> FolderDataset:
    """The dataset folder `data` (--data) restricted to `scenes` (--scenes); UsageError naming the
    flag when it is no dataset folder, its dataset.json is bad, or the scenes are no frame names."""
    path = existing_dir("--data", data, "dataset folder")
    try:
        names = parse_scenes(scenes)
    except ValueError as err:
        raise UsageError(f"--scenes {scenes!r}: expected frame names or ranges, e.g. 15-20 or 1000,1002 "
                         f"({err})") from None
    try:
        return FolderDataset(describe_folder(path, names))
    except FileNotFoundError as err:
        raise UsageError(f"--data {path}: {err} (a dataset folder holds rgb/ and depth/ with matching names)") from None
    except ValueError as err:  # a bad dataset.json
        raise UsageError(f"--data {path}: {err}") from None


def select_frames(data: str, scenes: str | None, split: str | None) -> tuple[FolderDataset, dict[str, Any]]:
    """The dataset restricted to the frames to score, and a description of the selection
    (`set`, `split`, `rule`, per-frame split) for the result."""
    dataset = open_folder(data, scenes)
    recognition = splits.recognise(dataset.depth_files(), dataset.config.gdsr_style)
    chosen = split or ("heldout" if recognition is not None and not scenes else "all")
    try:
        names = splits.select(dataset.names, recognition, chosen)
    except ValueError as err:
        raise UsageError(f"--split {chosen}: {err}") from None
    if not names:
        raise UsageError(f"--split {chosen}: no frame of that split among the {len(dataset.names)} selected in {data}")
    dataset = FolderDataset(dataclasses.replace(dataset.config, scenes=tuple(names)))
    split_of = {n: recognition.split_of.get(n, "unknown") for n in names} if recognition else {}
    info: dict[str, Any] = {"set": recognition.known.name if recognition else Path(data).resolve().name,
                            "recognised": recognition is not None, "split": chosen, "frames": len(names),
                            "rule": recognition.known.rule if recognition else "", "split_of": split_of}
    if recognition is not None:
        LOG.info("%s is the known set %s (%d of its frames matched by content); scoring the %s split: %d frames "
                 "(%s)", data, recognition.known.name, len(recognition.split_of), chosen, len(names),
                 recognition.known.rule)
    else:
        LOG.info("%s is no known set: scoring %d frames (%s)", data, len(names), "--scenes" if scenes else "all")
    return dataset, info


def degradation_label(name: str | None, misregistration: float | None) -> str | None:
    if name is None:
        return None
    return name if misregistration is None else f"{name}@{misregistration:g}px"


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    degradation = check_args(args)
    dataset, selection = select_frames(args.data, args.scenes, args.split)
    backbone, weights = args.backbone, args.weights
    if backbone is None:
        backbone, default_weights = _default_backbone(args.scale)
        weights = weights or default_weights
    names = [backbone] + [b for b in BASELINES if b != backbone]
    methods = {name: build_method(name, args.scale, weights if name == backbone else None) for name in names}
    second_pass, second_pass_file = second_pass_method(backbone, args.scale, weights, args.second_pass_weights)

    frames: list[dict[str, Any]] = []
    seconds = {name: 0.0 for name in names}
    holes = 0
    def frame_input(index: int, frame: Frame | None) -> Any:
        return None if frame is None else make_input(frame, args.scale, degradation,
                                                      np.random.default_rng([args.seed, index]))

    registration = None
    if args.registration == "tf":
        registration = given(degradation.steps[0].pose())
    elif args.registration == "auto":
        registration = calibrated(lambda i: frame_input(i, read_frame(dataset, i, {})), len(dataset),
                                  dataset.intrinsics)
    unreadable: dict[str, str] = {}  # frame name -> why its files could not be read
    bar = tqdm(range(len(dataset)), desc=f"evaluate x{args.scale} {args.protocol}",
               disable=getattr(args, "no_progress", False))
    for index in bar:  # the seed stays the frame's index, so a skipped frame changes no other frame's input
        frame = read_frame(dataset, index, unreadable)
        if frame is None:
            continue
        inp = frame_input(index, frame)
        taken: dict[bool, tuple[Any, Any]] = {}  # network or not -> (the methods' input, ToColour or None)
        holes += inp.gt_holes
        record: dict[str, Any] = {"name": frame.name, "split": selection["split_of"].get(frame.name, ""),
                                  "source": inp.source, "methods": {}}
        predictions = {}
        for name, method in methods.items():
            start = time.perf_counter()
            network = get_backbone(name).kind == "network"
            if network not in taken:
                taken[network] = (inp, None) if registration is None else registered_input(
                    registration, inp, dataset.intrinsics, args.scale, network, not args.no_second_pass)
            seen_by_methods, to_colour = taken[network]
            if to_colour is not None and to_colour.rgb is not None and name == backbone:
                to_colour = dataclasses.replace(to_colour, method=second_pass)
            if args.protocol == "gdsr":
                pred, rmse = gdsr_frame(method, frame, seen_by_methods, args.scale, to_colour)
                metrics = {"rmse": rmse}
            else:
                pred, metrics = metric_frame(method, seen_by_methods, args.scale, to_colour)
            seconds[name] += time.perf_counter() - start
            record["methods"][name] = metrics
            predictions[name] = pred
        frames.append(record)
        if args.previews:
            _write_preview(Path(args.previews), frame, inp, predictions, record["methods"], args)
    if holes:
        LOG.warning("%d of %d frames have ground-truth holes: filled for the input, left out of the score "
                    "(outside the published protocol)", holes, len(frames))

    summary: dict[str, dict[str, float]] = {}
    for name in names:
        per_frame = [f["methods"][name] for f in frames]
        if args.protocol == "gdsr":
            stats = {"rmse": float(np.mean([m["rmse"] for m in per_frame]))}
        else:
            stats = mean_metrics(per_frame)
            edges = [m["edge_rmse"] for m in per_frame if np.isfinite(m["edge_rmse"])]
            stats["edge_rmse"] = float(np.mean(edges)) if edges else float("nan")
        stats["ms_per_frame"] = 1000.0 * seconds[name] / max(len(frames), 1)
        summary[name] = stats
    source = frames[0]["source"] if frames else "bicubic"
    degrade = degradation_label(args.degrade, args.misregistration) or ("depth_lr" if source == "depth_lr" else "bicubic")
    if registration is not None and registration.applies:  # inputs left as made keep their label
        degrade += f"+registration_{args.registration}" + ("_one_pass" if args.no_second_pass else "")
        degrade += "_second_pass_same" if args.second_pass_weights == "same" and not args.no_second_pass else ""
    classic = get_backbone(backbone).kind == "classic"
    seen = yardsticks.seen_test_frames(backbone, args.scale, weights, classic)
    result = {
        "protocol": args.protocol,
        "scale": args.scale,
        "data": str(args.data),
        "set": selection["set"],
        "split": selection["split"],
        "split_rule": selection["rule"],
        "scenes": [f["name"] for f in frames],
        "degrade": degrade,
        "degradation": str(degradation) if degradation is not None else "",
        "seed": args.seed,
        "registration": describe(registration.last) if registration is not None else "none",
        "second_pass_weights": second_pass_file,
        "backbone": backbone,
        "weights": weights,
        "units": _units(args.protocol, dataset.config.gdsr_style),
        "gt_holes_frames": holes,
        "methods": summary,
        "frames": frames,
        "unreadable_frames": unreadable,
    }
    return {**result, **yardsticks.compare(result, selection, dataset.config.gdsr_style, seen, classic)}


def read_frame(dataset: FolderDataset, index: int, unreadable: dict[str, str]) -> Frame | None:
    """Frame `index`, or None when its files cannot be read (a damaged or truncated image, depth
    and colour of different sizes): a counted skip, entered in `unreadable` with the reason and
    logged, so that one bad file costs its frame and not the run. UsageError when no frame reads."""
    try:
        return dataset[index]
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        name = dataset.names[index]
        unreadable[name] = " ".join(str(err).split()) or type(err).__name__
        LOG.warning("skipping frame %s of %s (an image of it in rgb/, depth/ or depth_lr/): %s", name,
                    dataset.config.root, unreadable[name])
        if len(unreadable) == len(dataset):
            raise UsageError(f"--data {dataset.config.root}: no frame could be read (frame {name}: "
                             f"{unreadable[name]}); check the folder's images") from None
        return None


def _units(protocol: str, style: str) -> str:
    if protocol == "metric":
        return "metres (Middlebury: pseudo-metres = value x 0.01)" if style == "middlebury" else "metres"
    return {"middlebury": "0-255 disparity scale", "nyu": "centimetres (6 px border crop)",
            "rgbdd": "centimetres (no crop)"}[style]


def _write_preview(folder: Path, frame: Any, inp: Any, predictions: dict[str, np.ndarray],
                   scores: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """The comparison figure of one frame (core/preview_figure.py), in the unit its RMSE is scored in.

    frame: the dataset's `Frame`; inp: its `FrameInput`; scores: method -> the frame's metrics."""
    from depth_sr_ros.core.preview import DisplayUnit, depth_range, write_png
    from depth_sr_ros.core.preview_figure import FigureStyle, PreviewFrame, render_preview

    if args.protocol == "metric":
        unit = DisplayUnit("m", 1.0)
    elif frame.gdsr_style == "middlebury":
        unit = DisplayUnit("(0-255)", 1.0 / frame.depth_unit_m)
    else:
        unit = DisplayUnit("cm", 100.0)
    lo, hi = depth_range(inp.gt)
    rmse = {name: float(s["rmse"]) for name, s in scores.items()}
    lr = np.where(inp.valid_lr, inp.lr, np.nan)
    figure = render_preview(
        PreviewFrame(inp.rgb, predictions, lr, inp.gt, rmse, f"{frame.name}   x{args.scale} {args.protocol}"),
        FigureStyle(error_max_m=0.05 * (hi - lo), unit=unit))
    write_png(folder / f"{frame.name}_x{args.scale}.png", figure)


def print_table(result: dict[str, Any]) -> None:
    """One table: the backbone and the baselines measured in this run, then the peers on the same
    frames and the published figures (eval/yardsticks.py)."""
    names = list(result["methods"])
    columns = ["rmse"] if result["protocol"] == "gdsr" else ["rmse", "mae", "absrel", "delta1", "edge_rmse"]
    guided = result["methods"].get("guided_filter", {}).get("rmse")
    bicubic = result["methods"].get("bicubic", {}).get("rmse")
    split = f"{result['split']} split" if result["split"] != "all" else "all frames"
    print(f"\n{result['protocol']} x{result['scale']} on {result['data']}: {result['set']}, {split} "
          f"({len(result['frames'])} frames{'; ' + result['split_rule'] if result['split_rule'] else ''})")
    print(f"input: {result['degrade']}, units: {result['units']}")
    if result["unreadable_frames"]:
        skipped = result["unreadable_frames"]
        print(f"skipped {len(skipped)} unreadable frame(s), not scored: "
              + "; ".join(f"{name} ({reason})" for name, reason in sorted(skipped.items())))
    if result["registration"] != "none":
        print(f"registration: {result['registration']}")
    header = (f"{'method':<32}" + "".join(f"{c:>11}" for c in columns)
              + f"{'vs bicubic':>12}{'vs guided':>11}{'ms/frame':>10}")
    print(header)
    print("-" * len(header))
    for name in names:
        stats = result["methods"][name]
        print(f"{name:<32}" + "".join(f"{stats[c]:>11.4f}" for c in columns)
              + f"{_gain(stats['rmse'], bicubic):>12}{_gain(stats['rmse'], guided):>11}{stats['ms_per_frame']:>10.1f}")

    def row(label: str, rmse: float, bicubic: float | None, guided: float | None) -> None:
        gains = (f"{_gain(rmse, bicubic):>12}{_gain(rmse, guided):>11}" if bicubic is not None else " " * 23)
        print(f"{label:<32}{rmse:>11.4f}" + " " * 11 * (len(columns) - 1) + gains + f"{'':>10}")

    yardsticks.print_comparisons(result, row)


def _gain(value: float, reference: float | None) -> str:
    return f"{100 * (value / reference - 1):+.1f}%" if reference else "n/a"


def write_csv(result: dict[str, Any], path: Path) -> None:
    """One row per frame: name, split, input source, then `<method>_<metric>` for every method."""
    names = list(result["methods"])
    keys = sorted({key for f in result["frames"] for m in f["methods"].values() for key in m})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["frame", "split", "source"] + [f"{n}_{k}" for n in names for k in keys])
        for frame in result["frames"]:
            writer.writerow([frame["name"], frame["split"], frame["source"]]
                            + [f"{frame['methods'][n].get(k, float('nan')):.6g}" for n in names for k in keys])


def command_line(args: argparse.Namespace) -> str:
    """The `depth-sr evaluate` command that reproduces `args`."""
    parts = ["depth-sr evaluate"]
    for key, value in vars(args).items():
        if value is None or value is False:
            continue
        parts.append(f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}"))
    return " ".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def update_card(weights: str, result: dict[str, Any], command: str) -> dict[str, float]:
    """Merge `result` into the card beside `weights`: `<protocol>_<input>_<set>_<split>_<method>_<stat>`
    for every method; with a peer on every frame scored (peer_reference) also its figure on the same
    frames and our ratio to it (`<prefix>_peer_<peer>_rmse`, `<prefix>_<backbone>_to_<peer>_ratio`),
    and on the held-out split of `RANK_SET` also `val_rmse` (what `auto` ranks by). Published
    figures over other frames are not written into cards. Returns the metrics added."""
    from depth_sr_ros.models.weights import card_path, read_card

    card = read_card(weights)
    prefix = _slug(f"{result['protocol']}_{result['degrade']}_{result['set']}_{result['split']}")
    added = {f"{prefix}_{name}_{key}": float(value) for name, stats in result["methods"].items()
             for key, value in stats.items() if key != "ms_per_frame" and math.isfinite(value)}
    ours = result["methods"][result["backbone"]]["rmse"]
    added.update(yardsticks.peer_metrics(result, prefix))
    if (result["set"], result["split"], result["protocol"], result["degrade"]) == (RANK_SET, "heldout", "gdsr",
                                                                                  "bicubic"):
        added["val_rmse"] = float(ours)
    line = f"[{prefix}, {len(result['frames'])} frames] {command}"
    if result["degradation"]:
        line += f" | input degradation: {result['degradation']}"
    if result["peers"]:
        line += " | peers on the same frames: " + yardsticks.peer_sources(result)
    notes = "\n".join(n for n in (card.notes, line) if n)
    card = dataclasses.replace(card, metrics={**card.metrics, **added}, notes=notes)
    card_path(weights).write_text(card.to_json(), encoding="utf-8")
    return added


def default_json(result: dict[str, Any]) -> Path:
    """runs/evaluate/<set>_<split>_x<scale>_<protocol>_<input>.json (runs/ is git-ignored)."""
    name = _slug(f"{result['set']}_{result['split']}_x{result['scale']}_{result['protocol']}_{result['degrade']}")
    return Path("runs") / "evaluate" / f"{name}.json"


def run(args: argparse.Namespace) -> int:
    result = evaluate(args)
    if args.update_card:
        if result["unreadable_frames"]:
            raise UsageError(f"--update-card: {len(result['unreadable_frames'])} frame(s) of {args.data} could not be "
                             "read; a card's figure needs every frame of its split (card kept; without --update-card the "
                             "readable frames are scored)")
        if not result["weights"] or get_backbone(result["backbone"]).kind != "network":
            raise UsageError("--update-card needs a network --backbone and its --weights file")
        update_card(result["weights"], result, command_line(args))
    out = Path(args.json) if args.json else default_json(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table = Path(args.csv) if args.csv else out.with_suffix(".csv")
    write_csv(result, table)
    print_table(result)
    print(f"\nwrote {out}, {table}" + (f" and previews in {args.previews}" if args.previews else ""))
    return 0
