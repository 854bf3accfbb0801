"""RGB-D frames for training and evaluation: one folder reader, its description, and a rosbag2 reader.

A folder holds `rgb/<name>.png|jpg`, `depth/<name>.png`, optionally `depth_lr/<name>.png` (a
real low-resolution sensor image in the same unit), `intrinsics.json` (colour camera, pixels) and
`dataset.json`, which says how to read and score it (`describe_folder`):

    {"depth_unit_m": 0.001, "zero_is_invalid": true, "gdsr_style": "rgbdd"}

depth_unit_m converts the stored integers to metres; zero_is_invalid says whether a stored 0 means
"no measurement" or is a value (Middlebury's 0-255 scale); gdsr_style is how the benchmark protocol
scores the set (`middlebury`: the 0-255 values, all pixels; `nyu`: centimetres, 6 px border crop;
`rgbdd`: centimetres, no crop). Without the file, the folder-name presets (`PRESETS`) apply and the
log says which one was used. A scale like Middlebury's is no physical depth: it becomes
"pseudo-metres" (value x depth_unit_m), and `Frame.native` gives the stored values back for the
benchmark protocol.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from depth_sr_ros.core.camera_info import Intrinsics

LOG = logging.getLogger(__name__)
RGB_SUFFIXES = (".png", ".jpg", ".jpeg")


GDSR_STYLES = ("middlebury", "nyu", "rgbdd")
DESCRIPTION_FILE = "dataset.json"


@dataclass(frozen=True)
class FolderConfig:
    """How to read one dataset folder.

    depth_unit_m: metres per stored depth unit. zero_is_invalid: whether stored 0 means "no
    measurement" (sensor depth) or is a real value (Middlebury's filled disparity scale).
    gdsr_style: how the gdsr protocol scores this data (one of `GDSR_STYLES`, see the module
    docstring). scenes: names to keep (None = all). source: where the description came from
    (the dataset.json path, or the preset's name).
    """

    root: str
    depth_unit_m: float = 0.001
    zero_is_invalid: bool = True
    gdsr_style: str = "nyu"
    scenes: tuple[str, ...] | None = None
    source: str = "default"

    def __post_init__(self) -> None:
        if self.gdsr_style not in GDSR_STYLES:
            raise ValueError(f"{self.root}: gdsr_style {self.gdsr_style!r} is not one of {', '.join(GDSR_STYLES)}")
        if not (isinstance(self.depth_unit_m, (int, float)) and math.isfinite(self.depth_unit_m)
                and self.depth_unit_m > 0):
            raise ValueError(f"{self.root}: depth_unit_m must be a positive number of metres, got {self.depth_unit_m!r}")


# Fallback descriptions of folders without a dataset.json, chosen by the start of the folder name.
PRESETS: dict[str, FolderConfig] = {
    "middlebury": FolderConfig("", depth_unit_m=0.01, zero_is_invalid=False, gdsr_style="middlebury"),
    "nyu": FolderConfig("", depth_unit_m=0.001, zero_is_invalid=True, gdsr_style="nyu"),
    "tum": FolderConfig("", depth_unit_m=1 / 5000, zero_is_invalid=True, gdsr_style="nyu"),
    "rgbdd": FolderConfig("", depth_unit_m=0.001, zero_is_invalid=True, gdsr_style="rgbdd"),
}


def read_description(path: Path) -> dict:
    """The checked contents of a `dataset.json`: depth_unit_m, zero_is_invalid, gdsr_style.

    Missing keys or wrong types raise ValueError naming the file; unknown keys are logged and ignored.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable dataset description ({exc})") from None
    keys = ("depth_unit_m", "zero_is_invalid", "gdsr_style")
    if not isinstance(raw, dict) or any(key not in raw for key in keys):
        missing = [key for key in keys if key not in raw] if isinstance(raw, dict) else list(keys)
        raise ValueError(f"{path}: must hold a JSON object with {', '.join(keys)}; missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        LOG.warning("%s: ignoring unknown keys %s", path, unknown)
    unit, zero, style = raw["depth_unit_m"], raw["zero_is_invalid"], raw["gdsr_style"]
    problems = []
    if isinstance(unit, bool) or not isinstance(unit, (int, float)):
        problems.append(f"depth_unit_m must be a number (metres per stored unit), got {unit!r}")
    if not isinstance(zero, bool):
        problems.append(f"zero_is_invalid must be true or false, got {zero!r}")
    if style not in GDSR_STYLES:
        problems.append(f"gdsr_style must be one of {', '.join(GDSR_STYLES)}, got {style!r}")
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}")
    return {"depth_unit_m": float(unit), "zero_is_invalid": zero, "gdsr_style": style}


def describe_folder(root: str | Path, scenes: Sequence[str] | None = None) -> FolderConfig:
    """How to read the folder `root`: its `dataset.json`; without one, the preset whose name the
    folder name starts with (`middlebury`, `nyu`, `tum`, `rgbdd`), else millimetres with 0
    invalid, scored NYU-style. The log says which was used. `scenes` restricts the frames."""
    root = Path(root)
    keep = tuple(scenes) if scenes is not None else None
    path = root / DESCRIPTION_FILE
    if path.is_file():
        return FolderConfig(str(root), scenes=keep, source=str(path), **read_description(path))
    name = root.resolve().name.lower()
    key = next((key for key in PRESETS if name.startswith(key)), None)
    base = PRESETS[key] if key else FolderConfig("")
    config = replace(base, root=str(root), scenes=keep, source=f"preset {key}" if key else "default")
    LOG.info("%s has no %s: using the %s (depth_unit_m=%g, zero_is_invalid=%s, gdsr_style=%s)", root,
             DESCRIPTION_FILE, f"folder-name preset {key!r}" if key else "default description",
             config.depth_unit_m, config.zero_is_invalid, config.gdsr_style)
    return config


MAX_SCENE_RANGE = 1_000_000


def parse_scenes(spec: str | None) -> tuple[str, ...] | None:
    """'15-20' -> ('15', ..., '20') (zero-padded to the width of the first); '1000,1002' -> as
    given; None -> None."""
    if not spec:
        return None
    names: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            if int(hi) - int(lo) >= MAX_SCENE_RANGE:  # a typo, not a folder: never a list of a billion names
                raise ValueError(f"the range {part} spans more than {MAX_SCENE_RANGE} frames")
            names.extend(str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1))
        elif part:
            names.append(part)
    return tuple(names)


@dataclass
class Frame:
    """One RGB-D frame. depth: HxW float32 metres, NaN invalid, aligned with rgb (HxWx3 uint8).
    depth_lr: a real low-resolution sensor image (metres, NaN invalid) or None."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    depth_unit_m: float
    gdsr_style: str = "nyu"
    depth_lr: np.ndarray | None = None
    intrinsics: Intrinsics | None = None
    extra: dict = field(default_factory=dict)

    @property
    def native(self) -> np.ndarray:
        """Depth in the stored unit (Middlebury: the 0-255 scale), float32, NaN invalid."""
        return (self.depth / self.depth_unit_m).astype(np.float32)


def _read_depth(path: Path, unit_m: float, zero_is_invalid: bool) -> np.ndarray:
    raw = np.asarray(Image.open(path)).astype(np.float32)
    if raw.ndim != 2:
        raise ValueError(f"{path}: depth must be a single-channel image, got shape {raw.shape}")
    depth = raw * np.float32(unit_m)
    if zero_is_invalid:
        depth[raw == 0] = np.nan
    return depth


def _read_intrinsics(path: Path) -> Intrinsics | None:
    if not path.exists():
        return None
    k = json.loads(path.read_text())
    return Intrinsics(fx=float(k["fx"]), fy=float(k["fy"]), cx=float(k["cx"]), cy=float(k["cy"]),
                      width=int(k["width"]), height=int(k["height"]),
                      distortion_model="plumb_bob" if "distortion_plumb_bob" in k else "",
                      d=tuple(k.get("distortion_plumb_bob", ())))


class FolderDataset(Sequence[Frame]):
    """The frames of one folder (see module docstring), sorted by name, read lazily."""

    def __init__(self, config: FolderConfig) -> None:
        self.config = config
        root = Path(config.root)
        if not (root / "rgb").is_dir() or not (root / "depth").is_dir():
            raise FileNotFoundError(f"{root} needs rgb/ and depth/ folders")
        rgb_files = {p.stem: p for p in sorted((root / "rgb").iterdir()) if p.suffix.lower() in RGB_SUFFIXES}
        names = sorted(p.stem for p in (root / "depth").glob("*.png") if p.stem in rgb_files)
        if config.scenes is not None:
            missing = sorted(set(config.scenes) - set(names))
            if missing:
                raise FileNotFoundError(f"{root}: scenes not found: {', '.join(missing)}")
            names = [n for n in names if n in set(config.scenes)]
        if not names:
            raise FileNotFoundError(f"{root}: no frames with both rgb/ and depth/")
        self.names = names
        self._rgb_files = rgb_files
        self.intrinsics = _read_intrinsics(root / "intrinsics.json")

    def __len__(self) -> int:
        return len(self.names)

    def rgb_file(self, name: str) -> Path:
        """The colour image of frame `name`."""
        return self._rgb_files[name]

    def depth_files(self) -> dict[str, Path]:
        """Frame name -> its ground-truth depth PNG."""
        return {name: Path(self.config.root) / "depth" / f"{name}.png" for name in self.names}

    def __getitem__(self, index: int) -> Frame:  # type: ignore[override]
        cfg, name = self.config, self.names[index]
        root = Path(cfg.root)
        rgb = np.asarray(Image.open(self._rgb_files[name]).convert("RGB"))
        depth = _read_depth(root / "depth" / f"{name}.png", cfg.depth_unit_m, cfg.zero_is_invalid)
        if depth.shape != rgb.shape[:2]:
            raise ValueError(f"{name}: depth {depth.shape} and rgb {rgb.shape[:2]} differ in size")
        lr_path = root / "depth_lr" / f"{name}.png"
        depth_lr = _read_depth(lr_path, cfg.depth_unit_m, True) if lr_path.exists() else None
        return Frame(name, rgb, depth, cfg.depth_unit_m, cfg.gdsr_style, depth_lr, self.intrinsics)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self[i]


@dataclass(frozen=True)
class BagConfig:
    """A rosbag2 with an RGB topic and a ground-truth depth topic (sensor_msgs/Image), and
    optionally the sensor's own low-resolution depth topic (kept as `Frame.depth_lr`).

    Each ground-truth message is paired with the RGB message nearest in header stamp, within
    `max_dt_s`, and with the low-resolution message of the same stamp; `every` keeps one pair in
    so many; `limit` caps the count (0 = all).
    """

    path: str
    rgb_topic: str
    depth_topic: str
    lr_topic: str | None = None
    max_dt_s: float = 0.02
    every: int = 1
    limit: int = 0


def describe_bag(path: str | Path) -> FolderConfig:
    """How to score a bag's frames: the `dataset.json` in the bag's folder (or beside a bag file),
    else millimetres scored NYU-style (logged). Depth messages follow REP 118 (0 / NaN = no
    measurement), so a description with `zero_is_invalid: false` is refused."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    description = folder / DESCRIPTION_FILE
    if not description.is_file():
        LOG.info("%s has no %s: frames are scored as millimetres, NYU-style", path, DESCRIPTION_FILE)
        return FolderConfig(str(path), source="default")
    config = FolderConfig(str(path), source=str(description), **read_description(description))
    if not config.zero_is_invalid:
        raise ValueError(f"{description}: zero_is_invalid is false, but bag depth follows REP 118 (0 = invalid)")
    return config


def read_bag(config: BagConfig) -> list[Frame]:
    """RGB / ground-truth depth frames from a rosbag2 (read with `rosbags`' AnyReader); depth in
    metres per REP 118 (`16UC1` millimetres, `32FC1` metres); unit and scoring style for the
    benchmark protocol from `describe_bag`."""
    from rosbags.highlevel import AnyReader

    from depth_sr_ros.core.image_msg import depth_from_image, rgb_from_image

    def stamp(msg) -> int:
        return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

    topics = [t for t in (config.rgb_topic, config.depth_topic, config.lr_topic) if t]
    images: dict[str, list[tuple[int, np.ndarray]]] = {t: [] for t in topics}
    with AnyReader([Path(config.path)]) as reader:
        present = {c.topic for c in reader.connections}
        missing = [t for t in topics if t not in present]
        if missing:
            raise KeyError(f"{config.path}: no topic {', '.join(missing)}; has {sorted(present)}")
        wanted = [c for c in reader.connections if c.topic in topics]
        for conn, _, raw in reader.messages(connections=wanted):
            msg = reader.deserialize(raw, conn.msgtype)
            convert = rgb_from_image if conn.topic == config.rgb_topic else depth_from_image
            images[conn.topic].append((stamp(msg), convert(msg)))
    description = describe_bag(config.path)
    rgbs = images[config.rgb_topic]
    if not rgbs:
        raise ValueError(f"{config.path}: no RGB messages on {config.rgb_topic}")
    lrs = dict(images[config.lr_topic]) if config.lr_topic else {}
    rgb_stamps = np.array([t for t, _ in rgbs], dtype=np.int64)
    frames: list[Frame] = []
    skipped = 0
    for t, depth in images[config.depth_topic][:: max(config.every, 1)]:
        j = int(np.argmin(np.abs(rgb_stamps - t)))
        rgb = rgbs[j][1]
        if abs(int(rgb_stamps[j]) - t) > config.max_dt_s * 1e9 or rgb.shape[:2] != depth.shape:
            skipped += 1
            continue
        frames.append(Frame(f"{t}", rgb, depth, description.depth_unit_m, description.gdsr_style,
                            depth_lr=lrs.get(t)))
        if config.limit and len(frames) >= config.limit:
            break
    if skipped:
        LOG.info("%s: skipped %d depth messages without an RGB partner of the same size", config.path, skipped)
    return frames
