"""Training configuration: the YAML keys of `depth-sr train --config` (docs/training.md, "Config keys").

`TrainConfig` is the whole run; `SourceConfig` one training source (a dataset folder or a rosbag2)
with its weight and degradation mix; `ValConfig` a validation set. `TrainConfig.from_yaml` reads a
file, following `extends`. Sources refuse frames of a recognised set's held-out split
(eval/splits.py).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from depth_sr_ros.eval import splits
from depth_sr_ros.train.datasets import (
    BagConfig,
    FolderConfig,
    FolderDataset,
    Frame,
    describe_folder,
    parse_scenes,
    read_bag,
)
from depth_sr_ros.train.dequantize import Dequantizer
from depth_sr_ros.train.frame_cache import cached_frames

DATA_ROOT_ENV = "DEPTH_SR_DATA"
DEFAULT_DATA_ROOT = "../shared/data"
# The degradation name that stands for a frame's own low-resolution input made beforehand
# (`batches.TrainFrame.given_lr`): the second pass's, `TrainConfig.second_pass_of`.
GIVEN_INPUT = "given"


def resolve_root(root: str, data_root: str) -> str:
    """A source path: absolute as given, else under `data_root`."""
    return root if Path(root).is_absolute() else str(Path(data_root) / root)


@dataclass
class SourceConfig:
    """One training source, its sampling weight and degradation mix.

    A dataset folder (`root`, under the config's `data_root` unless absolute; read by its
    dataset.json; `depth_unit_m` overrides the unit; `scenes` e.g. '01-14'; `split` "train" keeps
    only a recognised set's training frames), or a rosbag2 (`root` = the bag, with `rgb_topic` and
    `depth_topic`, the ground truth). `degradations` (name -> probability) overrides the config's
    mix for this source; `terms` (the data's licence) goes into the model card.
    `depth_bins_per_m`: the ground truth was stored in steps of 1 / this many metres (25.5 for NYU
    v2's 8-bit copies, `nyu_train`); its frames are dequantised within each step at load
    (train/dequantize.py).
    """

    root: str
    scenes: str | None = None
    split: str = "all"
    weight: float = 1.0
    degradations: dict[str, float] | None = None
    depth_unit_m: float | None = None
    rgb_topic: str | None = None
    depth_topic: str | None = None
    terms: str = ""
    depth_bins_per_m: float | None = None

    def frames(self, data_root: str = DEFAULT_DATA_ROOT, limit: int = 0, cache: bool = False) -> list[Frame]:
        """The source's frames (the first `limit`, 0 = all), decoded and dequantised, or read from
        the frame cache when `cache` (train/frame_cache.py); raises ValueError when one is in a
        known set's held-out split."""
        root = resolve_root(self.root, data_root)
        if self.rgb_topic or self.depth_topic:
            if not (self.rgb_topic and self.depth_topic):
                raise ValueError(f"{root}: a bag source needs both rgb_topic and depth_topic")
            return read_bag(BagConfig(root, self.rgb_topic, self.depth_topic))
        config, names = self.folder_frames(data_root)
        dataset = FolderDataset(replace(config, scenes=tuple(names[:limit] if limit else names)))
        dequantize = Dequantizer(self.depth_bins_per_m) if self.depth_bins_per_m else None

        def prepare(frame: Frame) -> Frame:
            return replace(frame, depth=dequantize(frame.depth)) if dequantize else frame

        def progress(items):
            return tqdm(items, desc=f"read {Path(root).name}", mininterval=5.0, leave=False)

        if cache:
            recipe = {"dequantize": dataclasses.asdict(dequantize) if dequantize else None}
            return cached_frames(dataset, recipe, prepare, progress)
        return [prepare(dataset[i]) for i in progress(range(len(dataset)))]

    def folder_frames(self, data_root: str) -> tuple[FolderConfig, list[str]]:
        """A folder source's description and the names of the frames it trains on; raises
        ValueError when one is in a known set's held-out split."""
        root = resolve_root(self.root, data_root)
        config, names, recognition = split_frames(root, self.scenes, self.split)
        if self.depth_unit_m is not None:
            config = replace(config, depth_unit_m=self.depth_unit_m)
        held_out = [n for n in names if recognition is not None and recognition.split_of.get(n) == "heldout"]
        if recognition is not None and held_out:
            raise ValueError(f"{root}: {len(held_out)} frames ({', '.join(held_out[:3])}, ...) are in the held-out split "
                             f"of {recognition.known.name} and are never trained on; use split: train")
        return config, names


def split_frames(root: str, scenes: str | None, split: str) -> tuple[FolderConfig, list[str], splits.Recognition | None]:
    """A folder's description, the names of its frames in `scenes` and `split` (of a recognised
    set; "all" otherwise), and the recognition; raises ValueError when none is left."""
    dataset = FolderDataset(describe_folder(root, parse_scenes(scenes)))
    recognition = splits.recognise(dataset.depth_files(), dataset.config.gdsr_style)
    names = splits.select(dataset.names, recognition, split)
    if not names:
        raise ValueError(f"{root}: no frames in split {split!r}")
    return dataset.config, names, recognition


@dataclass
class ValConfig:
    """A validation set scored with the gdsr protocol: a folder (`root` under `data_root`), its
    `split` of a recognised set ("heldout", "train" or "all") or `scenes`, at most `limit` frames
    (0 = all), with bicubic inputs or the degradation `degrade` (e.g. "real_tof@2px")."""

    root: str
    split: str = "heldout"
    scenes: str | None = None
    limit: int = 0
    degrade: str | None = None

    @property
    def label(self) -> str:
        """e.g. `rgbdd_dev_heldout_bicubic`, `middlebury_train_first4_real_tof_2px`."""
        first = f"_first{self.limit}" if self.limit else ""
        return f"{Path(self.root).name}_{self.split}{first}_{(self.degrade or 'bicubic').replace('@', '_')}"

    def frames(self, data_root: str) -> list[Frame]:
        config, names, _ = split_frames(resolve_root(self.root, data_root), self.scenes, self.split)
        return list(FolderDataset(replace(config, scenes=tuple(names[: self.limit] if self.limit else names))))


@dataclass
class TrainConfig:
    backbone: str = "lite"
    scale: int = 4
    model: dict[str, Any] = field(default_factory=dict)
    train: list[SourceConfig] = field(default_factory=list)
    synthetic_scenes: int = 0
    synthetic_size: tuple[int, int] = (256, 320)
    synthetic_weight: float = 1.0
    val: list[ValConfig] = field(default_factory=list)
    degradations: dict[str, float] = field(default_factory=lambda: {"bicubic": 1.0})
    range_jitter: float = 0.0
    patch: int = 96
    batch: int = 16
    steps: int = 10000
    time_budget_s: float = 0.0
    stop_at: float = 0.0  # seconds since the epoch: end training (and write the weights) by then; 0 = no
    stretch_s: float = 0.0  # train this many seconds in this invocation, then save for --resume; 0 = to the end
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    loss: str = "l1_sobel"
    loss_weight: float = 1.0
    val_every: int = 0
    select: str = "last"
    checkpoint_every_s: float = 60.0
    log_every: int = 50
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    amp: str = "off"
    channels_last: bool = False  # NHWC tensors for the network (faster convolutions on some CPUs)
    prefetch: bool = False  # make the next batch on a background thread (uses a second core)
    frame_cache: bool = True  # keep decoded training frames in $XDG_CACHE_HOME/depth_sr_ros/train_frames
    init_weights: str | None = None
    # The first network's weights when this one learns the second pass in the colour camera: sources
    # whose mix draws `given` train on that network's reprojected output (train/second_pass.py), made
    # for `second_pass_poses` simulated sensors per frame, each of a kind drawn from
    # `second_pass_sensors` (train/parallax.PARALLAX_SENSORS: parallax, parallax_tof, parallax_phone_tof).
    second_pass_of: str | None = None
    second_pass_poses: int = 2
    second_pass_sensors: list[str] = field(default_factory=lambda: ["parallax"])
    zero_init: list[str] = field(default_factory=list)  # parameter-name prefixes to zero at start
    data_root: str = ""  # "" = $DEPTH_SR_DATA, else ../shared/data
    out: str = "runs/train"
    card: dict[str, Any] = field(default_factory=dict)  # extra ModelCard fields, e.g. notes
    progress: bool = True  # tqdm bar (depth-sr train --no-progress turns it off)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a config; `extends: OTHER.yaml` or `extends: [A.yaml, B.yaml]` (relative to this
        file, a later one's keys replacing an earlier one's) supplies defaults that this file's keys
        replace; `overrides` that are not None replace all of them."""
        raw = _read_yaml(Path(path))
        raw.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        raw["train"] = [SourceConfig(**s) for s in raw.get("train", [])]
        raw["val"] = [ValConfig(**v) for v in raw.get("val", [])]
        if "synthetic_size" in raw:
            raw["synthetic_size"] = tuple(raw["synthetic_size"])
        config = cls(**raw)
        config.check(str(path))
        return config

    def check(self, source: str = "config") -> None:
        """Refuse settings that cannot run, with what to change."""
        if not self.train and not self.synthetic_scenes:
            raise ValueError(f"{source}: no training data (train: [...] or synthetic_scenes)")
        if self.steps <= 0 and self.time_budget_s <= 0 and self.stop_at <= 0:
            raise ValueError(f"{source}: set steps or time_budget_s (or both): the run needs an end")
        if self.select not in ("last", "best") or (self.select == "best" and not self.val):
            raise ValueError(f"{source}: select must be 'last', or 'best' with a val set")
        if self.amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"{source}: amp must be off, bf16 or fp16")
        if self.stretch_s < 0:
            raise ValueError(f"{source}: stretch_s must be >= 0 seconds (0: train to the end)")
        if self.patch % self.scale:
            raise ValueError(f"{source}: patch {self.patch} must be a multiple of scale {self.scale}")
        draws_given = any(GIVEN_INPUT in (s.degradations or self.degradations) for s in self.train)
        if draws_given and not self.second_pass_of:
            raise ValueError(f"{source}: the 'given' input is the second pass's: set second_pass_of to the first "
                             "network's weights")
        if self.second_pass_of:
            if self.second_pass_poses < 1:
                raise ValueError(f"{source}: second_pass_poses must be at least 1")
            from depth_sr_ros.train.second_pass import SecondPassSensors  # torch, which training needs anyway

            try:
                SecondPassSensors(kinds=tuple(self.second_pass_sensors))
            except ValueError as error:
                raise ValueError(f"{source}: {error}") from None

    @property
    def resolved_data_root(self) -> str:
        return self.data_root or os.environ.get(DATA_ROOT_ENV, "") or DEFAULT_DATA_ROOT


def _read_yaml(path: Path, depth: int = 0) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise TypeError(f"{path}: a training config is a mapping of keys, not a {type(raw).__name__}")
    parents = raw.pop("extends", None)
    if parents is None:
        return raw
    if depth > 4:
        raise ValueError(f"{path}: extends nests too deeply")
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged.update(_read_yaml(path.parent / parent, depth + 1))
    return {**merged, **raw}
