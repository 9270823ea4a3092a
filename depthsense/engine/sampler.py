"""The order in which a run sees its training samples: one seeded permutation per epoch."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler"]


class EpochSampler(Sampler[int]):
    """Deterministic per-epoch permutation, split across ranks, resumable mid-epoch.

    Rank ``r`` of ``W`` takes ``perm[r::W]`` (the permutation is truncated to a multiple
    of ``W * batch_size`` so every rank runs the same number of full batches), then
    skips its first ``skip_batches * batch_size`` indices. With one rank and batch
    ``W*B`` the batches are the unions of the W-rank batches of size B, so a DDP run
    sees the same samples per step as a single process with the larger batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.skip_batches = 0, 0

    def batches_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world)

    def set_position(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        usable = self.batches_per_epoch() * self.batch_size * self.world
        mine = perm[:usable][self.rank :: self.world]
        return iter(mine[self.skip_batches * self.batch_size :].tolist())

    def __len__(self) -> int:
        return max(0, (self.batches_per_epoch() - self.skip_batches) * self.batch_size)
