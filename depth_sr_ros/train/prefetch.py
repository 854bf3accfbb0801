"""Batches made ahead on a background thread, so that the training step and the next batch run
on two cores at once (torch releases the GIL inside its operations).

The batch of a step depends only on the step (train/batches.py), so a prefetched batch is the
one the main thread would have made: training with and without prefetching gives the same
weights. Without `enabled`, `get` makes the batch in place.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import torch

T = TypeVar("T")


class Prefetcher(Generic[T]):
    """`get(step)` returns `make(step)` and starts `make(step + 1)` on a background thread
    (which runs `threads` torch threads)."""

    def __init__(self, make: Callable[[int], T], enabled: bool, threads: int = 1) -> None:
        self.make = make
        self.pool = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(threads,)) if enabled else None
        self.pending: tuple[int, Future[T]] | None = None

    def get(self, step: int) -> T:
        if self.pool is None:
            return self.make(step)
        if self.pending is not None and self.pending[0] == step:
            batch = self.pending[1].result()
        else:
            batch = self.make(step)
        self.pending = (step + 1, self.pool.submit(self.make, step + 1))
        return batch

    def close(self) -> None:
        """Wait for the batch in flight and stop the thread."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pending = None
