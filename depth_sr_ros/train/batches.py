"""Training batches made on the training device: every frame is held there once, crops are
gathered with one indexing operation per batch, and the degradations run as batched torch ops.

Per step `t` the CPU draws, from `numpy.random.default_rng([seed, 0, t])`, which frame each
crop of the global batch comes from, where, its flip/rotation and its degradation (from its
source's mix); under DistributedDataParallel with `world` processes, process `rank` makes the
`rank`-th of `world` equal slices of that batch, so together they make the batch one process
would. The device then gathers the crops with a margin, degrades each group of samples that
share a degradation (their random draws from a `torch.Generator` seeded with `[seed, rank, t,
group]`, so the noise of a random degradation differs between a slice and the whole batch),
crops the margin away, fills the input's holes and normalises. So a step's batch depends only on
(seed, rank, world, t): a resumed run draws what an uninterrupted one would have, on the same device.

Crops are `patch` pixels with a margin of `2 * scale` on every side, so the bicubic and area
footprints of the kept pixels see real neighbours, as on a whole frame; their origin is a
multiple of `scale`, so the input grid lines up with the frame's. Normalisation is by the
whole frame's ground-truth min and max, as the gdsr protocol does, widened or narrowed at random
by up to `range_jitter` of the span (what the pipeline's normalisation by the input's own range
does to a frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from depth_sr_ros.train.config import GIVEN_INPUT
from depth_sr_ros.train.degradations import Context, Degradation
from depth_sr_ros.train.sensor_presets import get_degradation
from depth_sr_ros.train.torch_ops import nearest_fill


@dataclass
class TrainFrame:
    """A training frame: rgb H x W x 3 uint8, gt H x W float32 metres (NaN invalid), the index of
    its source in the config (which sets its degradation mix) and its sampling weight. given_lr:
    an input made beforehand for this frame (h x w metres on its model grid, NaN invalid; e.g. what
    the second pass in the colour camera sees, `train/second_pass.py`), drawn where the mix says
    `GIVEN_INPUT`; None when the frame has none."""

    name: str
    rgb: np.ndarray
    gt: np.ndarray
    source: int
    weight: float
    given_lr: np.ndarray | None = None


@dataclass
class Batch:
    """One training batch on the device: rgb B x 3 x P x P in [0, 1]; depth and mask
    B x 1 x P/s x P/s (normalised input, holes filled; 1 = measured); gt B x 1 x P x P normalised
    (0 where invalid) and gt_valid (bool)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    gt: torch.Tensor
    gt_valid: torch.Tensor


class BatchMaker:
    """Makes `batch(step)` for one run (see the module docstring).

    frames: the training frames; mixes: per source, degradation name -> probability; scale,
    patch, batch: the model scale, crop size (a multiple of the scale) and the global batch size
    (a multiple of `world`; this process makes the `rank`-th slice of it).
    """

    def __init__(self, frames: list[TrainFrame], mixes: list[dict[str, float]], scale: int, patch: int, batch: int,
                 device: str | torch.device = "cpu", seed: int = 0, rank: int = 0, range_jitter: float = 0.0,
                 fill_iterations: int = 6, world: int = 1) -> None:
        if patch % scale:
            raise ValueError(f"patch {patch} must be a multiple of scale {scale}")
        if batch % world or not 0 <= rank < world:
            raise ValueError(f"batch {batch} must split evenly over {world} processes (rank {rank})")
        if not frames:
            raise ValueError("no training frames")
        self.scale, self.patch, self.batch_size = scale, patch, batch
        self.margin = 2 * scale
        self.crop = patch + 2 * self.margin
        small = [f.name for f in frames if min(f.gt.shape) < self.crop]
        if small:
            raise ValueError(f"frames smaller than a {self.crop} px crop (patch + margins): {', '.join(small[:5])}; "
                             "lower the patch size")
        self.device = torch.device(device)
        self.seed, self.rank, self.range_jitter, self.fill_iterations = seed, rank, range_jitter, fill_iterations
        self.world = world
        names = sorted({name for mix in mixes for name in mix})
        self.degradations: list[Degradation | None] = [
            None if name == GIVEN_INPUT else get_degradation(name) for name in names]
        self.mix = np.zeros((len(mixes), len(names)))
        for i, mix in enumerate(mixes):
            for name, p in mix.items():
                self.mix[i, names.index(name)] = p
        if (self.mix.sum(axis=1) <= 0).any():
            raise ValueError("every source needs a degradation with a positive probability")
        self.mix /= self.mix.sum(axis=1, keepdims=True)
        weights = np.array([f.weight for f in frames], dtype=np.float64)
        self.probs = weights / weights.sum()
        self.sources = np.array([f.source for f in frames])
        self.sizes = np.array([f.gt.shape for f in frames])
        self.dense = np.array([bool(np.isfinite(f.gt).all()) for f in frames])
        self.ranges = np.array([(np.nanmin(f.gt), np.nanmax(f.gt)) for f in frames], dtype=np.float64)
        h, w = self.sizes.max(axis=0)
        rgb = np.zeros((len(frames), h, w, 3), dtype=np.uint8)
        gt = np.full((len(frames), h, w), np.nan, dtype=np.float32)
        for i, frame in enumerate(frames):
            rgb[i, : frame.gt.shape[0], : frame.gt.shape[1]] = frame.rgb
            gt[i, : frame.gt.shape[0], : frame.gt.shape[1]] = frame.gt
        self.rgb = torch.from_numpy(rgb).to(self.device)
        self.gt = torch.from_numpy(gt).to(self.device)
        self.given = self._given_inputs(frames, names, (h, w))

    def _given_inputs(self, frames: list[TrainFrame], names: list[str], size: tuple[int, int]) -> torch.Tensor | None:
        """The frames' given inputs, each grid pixel repeated over the `scale` x `scale` pixels it
        covers (so a crop and its flips gather them as they gather the ground truth); None when no
        mix draws `GIVEN_INPUT`."""
        if GIVEN_INPUT not in names:
            return None
        drawn = self.mix[:, names.index(GIVEN_INPUT)] > 0
        lacking = [f.name for f in frames if drawn[f.source] and f.given_lr is None]
        if lacking:
            raise ValueError(f"the mix draws {GIVEN_INPUT!r} but frames have no given input: {', '.join(lacking[:5])}")
        given = np.full((len(frames), *size), np.nan, dtype=np.float32)
        for i, frame in enumerate(frames):
            if frame.given_lr is not None:
                h, w = frame.gt.shape
                if frame.given_lr.shape != (-(-h // self.scale), -(-w // self.scale)):
                    raise ValueError(f"{frame.name}: given input {frame.given_lr.shape} is not the model grid of {h}x{w}")
                given[i, :h, :w] = np.repeat(np.repeat(frame.given_lr, self.scale, 0), self.scale, 1)[:h, :w]
        return torch.from_numpy(given).to(self.device)

    def plan(self, step: int) -> dict[str, np.ndarray]:
        """The CPU's draws for `step`, this process's slice of the global batch: frame, origin,
        dihedral transform, degradation, range jitter."""
        rng = np.random.default_rng([self.seed, 0, step])
        b, s = self.batch_size, self.scale
        frame = rng.choice(len(self.probs), size=b, p=self.probs)
        room = (self.sizes[frame] - self.crop) // s + 1
        origin = (rng.random((b, 2)) * room).astype(np.int64) * s
        dihedral = rng.integers(0, 8, size=b)
        cumulative = self.mix[self.sources[frame]].cumsum(axis=1)
        degradation = np.minimum((rng.random((b, 1)) > cumulative).sum(axis=1), self.mix.shape[1] - 1)
        jitter = rng.uniform(-0.5, 1.0, size=(b, 2)) * self.range_jitter
        plan = {"frame": frame, "origin": origin, "dihedral": dihedral, "degradation": degradation, "jitter": jitter}
        share = b // self.world
        return {key: value[self.rank * share : (self.rank + 1) * share] for key, value in plan.items()}

    def _gather(self, plan: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """rgb (B x 3 x C x C, uint8), gt and the given inputs (B x 1 x C x C; None without them)
        crops, flipped/rotated per sample."""
        c = self.crop
        i = torch.arange(c, device=self.device)
        rows, cols = i.view(1, c, 1).expand(1, c, c), i.view(1, 1, c).expand(1, c, c)
        code = torch.from_numpy(plan["dihedral"]).to(self.device).view(-1, 1, 1)
        transpose = (code & 4) > 0
        rows, cols = torch.where(transpose, cols, rows), torch.where(transpose, rows, cols)
        rows = torch.where((code & 1) > 0, c - 1 - rows, rows)
        cols = torch.where((code & 2) > 0, c - 1 - cols, cols)
        origin = torch.from_numpy(plan["origin"]).to(self.device)
        rows = rows + origin[:, 0].view(-1, 1, 1)
        cols = cols + origin[:, 1].view(-1, 1, 1)
        frame = torch.from_numpy(plan["frame"]).to(self.device).view(-1, 1, 1)
        rgb = self.rgb[frame, rows, cols].permute(0, 3, 1, 2)
        gt = self.gt[frame, rows, cols].unsqueeze(1)
        given = None if self.given is None else self.given[frame, rows, cols].unsqueeze(1)
        return rgb, gt, given

    def _to_grid(self, lr: torch.Tensor) -> torch.Tensor:
        """A sensor image of any size covering the crop -> the crop's model grid (nearest on
        centres, as `core.resample.resample_to_grid`)."""
        n = self.crop // self.scale
        if lr.shape[-2:] == (n, n):
            return lr
        rows = ((torch.arange(n, device=lr.device) + 0.5) * (lr.shape[-2] / n)).long().clamp_(max=lr.shape[-2] - 1)
        cols = ((torch.arange(n, device=lr.device) + 0.5) * (lr.shape[-1] / n)).long().clamp_(max=lr.shape[-1] - 1)
        return lr.index_select(-2, rows).index_select(-1, cols)

    def batch(self, step: int) -> Batch:
        plan = self.plan(step)
        rgb, gt, given = self._gather(plan)
        m, ms, p, ps = self.margin, self.margin // self.scale, self.patch, self.patch // self.scale
        lr = torch.empty(len(gt), 1, ps, ps, device=self.device)
        for index, degradation in enumerate(self.degradations):
            chosen = np.flatnonzero(plan["degradation"] == index)
            if chosen.size == 0:
                continue
            sel = torch.from_numpy(chosen).to(self.device)
            if degradation is None:  # GIVEN_INPUT
                assert given is not None
                lr[sel] = self._to_grid(given[sel])[..., ms : ms + ps, ms : ms + ps]
                continue
            generator = torch.Generator(self.device).manual_seed(
                int(np.random.default_rng([self.seed, self.rank, step, index]).integers(0, 2**62)))
            context = Context(self.scale, generator, dense=bool(self.dense[plan["frame"][chosen]].all()))
            degraded = self._to_grid(degradation.apply(gt[sel], context))
            lr[sel] = degraded[..., ms : ms + ps, ms : ms + ps]
        gt = gt[..., m : m + p, m : m + p]
        rgb = rgb[..., m : m + p, m : m + p]
        valid = torch.isfinite(lr)
        lr = nearest_fill(lr, valid, iterations=self.fill_iterations)
        ranges = self.ranges[plan["frame"]]
        span = np.maximum(ranges[:, 1] - ranges[:, 0], 1e-6)
        lo = torch.from_numpy(ranges[:, 0] - plan["jitter"][:, 0] * span).float().to(self.device).view(-1, 1, 1, 1)
        hi = torch.from_numpy(ranges[:, 1] + plan["jitter"][:, 1] * span).float().to(self.device).view(-1, 1, 1, 1)
        scale = 1.0 / (hi - lo).clamp_min(1e-6)
        gt_valid = torch.isfinite(gt)
        return Batch(
            rgb=rgb.float() / 255.0,
            depth=(lr - lo) * scale,
            mask=valid.float(),
            gt=torch.where(gt_valid, (gt - lo) * scale, torch.zeros_like(gt)),
            gt_valid=gt_valid,
        )
