"""RGB-D frames for training and evaluation: one folder reader, its presets, and a rosbag2 reader.

A folder holds `rgb/<name>.png|jpg`, `depth/<name>.png`, optionally `depth_lr/<name>.png` (a
real low-resolution sensor image in the same unit) and `intrinsics.json` (colour camera, pixels).
`FolderConfig.depth_unit_m` converts the stored integers to metres; the `middlebury`, `nyu` and
`tum` presets are configurations of the same reader. Middlebury's 0-255 disparity-like values
are no physical depth: they become "pseudo-metres" (value x 0.01), and `Frame.native` gives the
0-255 values back for the benchmark protocol.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from depth_sr_ros.core.camera_info import Intrinsics

LOG = logging.getLogger(__name__)
RGB_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class FolderConfig:
    """How to read one dataset folder.

    depth_unit_m: metres per stored depth unit. zero_is_invalid: whether stored 0 means "no
    measurement" (sensor depth) or is a real value (Middlebury's filled disparity scale).
    gdsr_style: how the gdsr protocol scores this data ("middlebury": 0-255 native values, clip,
    no crop; "nyu": centimetres, 6 px border crop). scenes: names to keep (None = all).
    """

    root: str
    depth_unit_m: float = 0.001
    zero_is_invalid: bool = True
    gdsr_style: str = "nyu"
    scenes: tuple[str, ...] | None = None


PRESETS: dict[str, FolderConfig] = {
    "middlebury": FolderConfig("", depth_unit_m=0.01, zero_is_invalid=False, gdsr_style="middlebury"),
    "nyu": FolderConfig("", depth_unit_m=0.001, zero_is_invalid=True, gdsr_style="nyu"),
    "tum": FolderConfig("", depth_unit_m=1 / 5000, zero_is_invalid=True, gdsr_style="nyu"),
}


def preset_for(root: str | Path, scenes: Sequence[str] | None = None) -> FolderConfig:
    """The preset whose name the folder name starts with (`middlebury`, `nyu_test`, `tum_fr1`),
    else millimetres with 0 invalid; `scenes` restricts the frames."""
    name = Path(root).resolve().name.lower()
    base = next((cfg for key, cfg in PRESETS.items() if name.startswith(key)), FolderConfig(""))
    return replace(base, root=str(root), scenes=tuple(scenes) if scenes is not None else None)


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


def read_bag(config: BagConfig) -> list[Frame]:
    """RGB / ground-truth depth frames from a rosbag2 (read with `rosbags`' AnyReader); depth in
    metres per REP 118 (`16UC1` millimetres, `32FC1` metres)."""
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
        frames.append(Frame(f"{t}", rgb, depth, 0.001, "nyu", depth_lr=lrs.get(t)))
        if config.limit and len(frames) >= config.limit:
            break
    if skipped:
        LOG.info("%s: skipped %d depth messages without an RGB partner of the same size", config.path, skipped)
    return frames
