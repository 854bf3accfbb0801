"""Training throughput of one config on this machine, for BENCHMARKS.md ("Training throughput"):

    python -m depth_sr_ros.train.throughput --config config/train/tof/lite_unet_x4.yaml --variant fp32

loads the config's training frames (from the frame cache), then times `--steps` training steps
(batch made, forward, loss, backward, AdamW) after `--warmup` untimed ones, exactly as the
training loop runs them, and prints one JSON line: samples per wall-clock second, and samples per
second of this process's CPU time (all its threads), the figure that a machine shared with other
work changes least. Variants: `fp32` (the loop's default), `channels_last`, `bf16` (autocast),
`prefetch` (the next batch on a second thread), `threads2` (two torch threads).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from depth_sr_ros.train.batches import BatchMaker
from depth_sr_ros.train.config import TrainConfig
from depth_sr_ros.train.losses import get_loss
from depth_sr_ros.train.prefetch import Prefetcher

VARIANTS = {
    "fp32": {},
    "channels_last": {"channels_last": True},
    "bf16": {"amp": "bf16"},
    "prefetch": {"prefetch": True},
    "threads2": {"threads": 2},
}


def measure(config: TrainConfig, steps: int, warmup: int) -> dict[str, float]:
    """Samples/s (wall and per CPU second) over `steps` timed steps of `config` on the CPU."""
    from depth_sr_ros.train.loop import _autocast, build_model, load_frames

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    frames, mixes = load_frames(config)
    maker = BatchMaker(frames, mixes, config.scale, config.patch, config.batch, "cpu", config.seed, 0,
                       config.range_jitter)
    model = build_model(config)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = get_loss(config.loss)
    prefetcher = Prefetcher(maker.batch, config.prefetch, config.threads)
    wall = cpu = 0.0
    for step in range(warmup + steps):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        batch = prefetcher.get(step)
        rgb = batch.rgb.contiguous(memory_format=torch.channels_last) if config.channels_last else batch.rgb
        with _autocast(config, "cpu"):
            pred = model(rgb, batch.depth, batch.mask)
        loss = loss_fn(pred.float(), batch.gt, batch.gt_valid, config.loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            wall += time.perf_counter() - wall0
            cpu += time.process_time() - cpu0
    prefetcher.close()
    samples = steps * config.batch
    return {"samples_per_s": round(samples / wall, 2), "samples_per_cpu_s": round(samples / cpu, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="fp32")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config, device="cpu", threads=1, data_root=args.data_root, progress=False)
    config = replace(config, **VARIANTS[args.variant])
    print(json.dumps({"variant": args.variant, **measure(config, args.steps, args.warmup)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
