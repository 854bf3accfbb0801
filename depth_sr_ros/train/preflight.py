"""A fast self-check before a batch of training runs (the first step of tools/gpu/train_all.sh):

    python -m depth_sr_ros.train.preflight --device cuda --data-root .gpu_data CONFIG.yaml ...

It fails (exit 1, one line per problem) unless: the training code imports without ROS or
`rosbags`; the device works (a convolution runs on it); every config parses, its initial weights
exist and every source has frames (counted, and the held-out guard applied); and one training step
of every config (a batch from the first frame of each source) gives a finite loss on the device.
It reads one frame per source, so it takes seconds, not the runs' minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

UNWANTED_MODULES = ("rosbags", "rclpy", "transformers", "tensorrt")


def check_imports() -> list[str]:
    """Import the training code; complain if that pulled in ROS, rosbags or other optional stacks."""
    import depth_sr_ros.train.loop  # noqa: F401

    return [f"importing the training code imported {name}" for name in UNWANTED_MODULES if name in sys.modules]


def check_device(device: str) -> str:
    """A line describing the device after a convolution ran on it; raises when it cannot."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device}: torch {torch.__version__} sees no CUDA device")
        name = torch.cuda.get_device_name(device)
        memory = torch.cuda.get_device_properties(device).total_memory / 2**30
        described = f"{name}, {memory:.0f} GiB, CUDA {torch.version.cuda}"
    else:
        described = "CPU"
    x = torch.rand(2, 3, 32, 32, device=device)
    y = torch.nn.functional.conv2d(x, torch.rand(4, 3, 3, 3, device=device))
    if not torch.isfinite(y).all():
        raise RuntimeError(f"device {device}: a convolution returned non-finite values")
    return described


def check_config(path: str, device: str, data_root: str) -> str:
    """Parse `path`, count its data, and run one training step of it on `device`; returns a summary."""
    from depth_sr_ros.train.batches import BatchMaker, TrainFrame
    from depth_sr_ros.train.datasets import FolderDataset, describe_folder
    from depth_sr_ros.train.loop import TrainConfig, build_model, resolve_root
    from depth_sr_ros.train.losses import get_loss

    config = TrainConfig.from_yaml(path, device=device, data_root=data_root)
    if config.init_weights and not Path(config.init_weights).is_file():
        raise FileNotFoundError(f"{path}: init_weights {config.init_weights} not found")
    frames, counts = [], []
    for index, source in enumerate(config.train):
        root = resolve_root(source.root, config.resolved_data_root)
        counts.append(f"{Path(root).name} {len(FolderDataset(describe_folder(root)).names)}")
        frame = source.frames(config.resolved_data_root, limit=1)[0]
        frames.append(TrainFrame(frame.name, frame.rgb, frame.depth, index, 1.0))
    mixes = [s.degradations or config.degradations for s in config.train]
    maker = BatchMaker(frames, mixes, config.scale, config.patch, config.batch, device, config.seed)
    model = build_model(config).to(device)
    batch = maker.batch(0)
    loss = get_loss(config.loss)(model(batch.rgb, batch.depth, batch.mask), batch.gt, batch.gt_valid,
                                 config.loss_weight)
    loss.backward()
    if not bool(loss.isfinite()):
        raise RuntimeError(f"{path}: the first training step's loss is {float(loss.detach())}")
    params = sum(p.numel() for p in model.parameters())
    return (f"{config.backbone} x{config.scale}, {params} parameters, batch {config.batch} x {config.patch}px, "
            f"frames: {', '.join(counts)}, first loss {float(loss.detach()):.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="training config YAML files")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data-root", required=True, help="the folder the configs' data paths are under")
    args = parser.parse_args(argv)
    start = time.monotonic()
    problems = check_imports()
    import numpy as np
    import torch

    print(f"preflight: python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}")
    try:
        print(f"preflight: device {args.device}: {check_device(args.device)}")
    except RuntimeError as exc:
        problems.append(str(exc))
    if not Path(args.data_root).is_dir():
        problems.append(f"data root {args.data_root} does not exist")
    if not problems:
        for path in args.configs:
            try:
                print(f"preflight: {path}: {check_config(path, args.device, args.data_root)}", flush=True)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                problems.append(f"{path}: {exc}")
    for problem in problems:
        print(f"preflight FAILED: {problem}", flush=True)
    print(f"preflight: {'failed' if problems else 'ok'} in {time.monotonic() - start:.1f} s", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
