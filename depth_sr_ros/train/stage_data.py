"""Copy exactly the frames some training configs use into a folder that travels with the code
(e.g. `.gpu_data/` for a GPU machine without the shared data):

    python -m depth_sr_ros.train.stage_data --src ../shared/data --dst .gpu_data config/train/tof/*_x*.yaml

For every folder source of every config it copies the frames the source trains on (its `split`
and `scenes`, with the held-out guard of train/loop.py applied, so no held-out frame is copied),
with their `rgb/`, `depth/` and `depth_lr/` files, `dataset.json` and `intrinsics.json`, and
prints the total size. Existing files of the same size are kept.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from depth_sr_ros.train.datasets import DESCRIPTION_FILE, RGB_SUFFIXES
from depth_sr_ros.train.loop import TrainConfig


def frames_to_copy(config: TrainConfig) -> dict[str, set[str]]:
    """Folder name -> frame names the config's folder sources train on (bag sources are skipped;
    the held-out guard of `SourceConfig.folder_frames` applies)."""
    wanted: dict[str, set[str]] = {}
    for source in config.train:
        if source.rgb_topic or source.depth_topic:
            continue
        folder, names = source.folder_frames(config.resolved_data_root)
        wanted.setdefault(Path(folder.root).name, set()).update(names)
    return wanted


def _copy(source: Path, target: Path) -> int:
    if not (target.exists() and target.stat().st_size == source.stat().st_size):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return target.stat().st_size


def stage(configs: list[str], src: str, dst: str) -> tuple[int, int]:
    """Copy the frames of `configs` from `src` to `dst`; returns (frames, bytes)."""
    wanted: dict[str, set[str]] = {}
    for path in configs:
        for folder, names in frames_to_copy(TrainConfig.from_yaml(path, data_root=src)).items():
            wanted.setdefault(folder, set()).update(names)
    frames = total = 0
    for folder, names in sorted(wanted.items()):
        source_root, target_root = Path(src) / folder, Path(dst) / folder
        for extra in (DESCRIPTION_FILE, "intrinsics.json"):
            if (source_root / extra).is_file():
                total += _copy(source_root / extra, target_root / extra)
        for name in sorted(names):
            for sub in ("rgb", "depth", "depth_lr"):
                for suffix in RGB_SUFFIXES if sub == "rgb" else (".png",):
                    file = source_root / sub / f"{name}{suffix}"
                    if file.is_file():
                        total += _copy(file, target_root / sub / file.name)
            frames += 1
        print(f"{folder}: {len(names)} frames")
    return frames, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--src", default="../shared/data", help="the shared data folder")
    parser.add_argument("--dst", default=".gpu_data", help="where to copy the training frames")
    args = parser.parse_args(argv)
    frames, total = stage(args.configs, args.src, args.dst)
    print(f"staged {frames} frames, {total / 2**20:.1f} MiB in {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
