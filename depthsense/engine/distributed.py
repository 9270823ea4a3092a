"""Scale-out under ``torchrun``: the process group's set-up and teardown.

With ``WORLD_SIZE`` > 1 the trainer wraps the model in DistributedDataParallel (NCCL on
GPUs, gloo on CPUs); each rank reads a disjoint slice of the epoch's permutation
(:class:`depthsense.engine.sampler.EpochSampler`); only rank 0 logs, writes checkpoints
and prints.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch.distributed as dist

from depthsense.config import TrainConfig, resolve_device

__all__ = ["DistInfo", "init_distributed", "close_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a ``torchrun`` job (one process without it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(cfg: TrainConfig) -> DistInfo:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``);
    without it: one process, rank 0."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(cfg.device).type == "cuda"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local)


def close_distributed(held: dict, wait_for_all: bool) -> None:
    """Free the DDP wrapper (its reducer holds the group), wait for every rank (unless this
    one failed: the others may never arrive), then destroy the process group. Destroying it
    under a live wrapper while rank 0 still validated and wrote made the early-finishing rank
    abort now and then ("terminate called without an active exception", SIGABRT)."""
    held.clear()
    gc.collect()  # the DDP wrapper sits in reference cycles (module hooks)
    try:
        if wait_for_all:
            dist.barrier()
    finally:
        dist.destroy_process_group()
