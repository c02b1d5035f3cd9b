"""Data-parallel training with PyTorch's DistributedDataParallel, launched by torchrun.

``torchrun --nproc_per_node N -m training.train ...`` starts N processes; each
reads its place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, the rendezvous address). Without those variables training is
one process and nothing here does anything.

How the loop uses it:
- ``--batch-size`` is the global batch: each of N ranks takes its 1/N slice of
  the same global batch indices, and of the same global latents, so N
  processes see the images and latents one process would.
- G and D are wrapped in DDP, which averages the gradients of every backward
  over the ranks (gradient penalty and R1 included: their double backward runs
  through the wrapped D). Every rank keeps its own EMA copy of G, identical
  because the weights it follows are.
- BatchNorm: SyncBatchNorm on CUDA (each BN sees the global batch, as in one
  process); on CPU, where SyncBatchNorm does not run, each rank's BN normalises
  its own slice, as DDP does by default.
- Rank 0 alone writes the run directory (options, stats, samples, metrics,
  checkpoints); a stop (signal, deadline) is agreed by all ranks at the same step.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

BACKENDS = ("auto", "gloo", "nccl")


class DistributedError(ValueError):
    """A distributed setup that cannot work, with a one-line reason."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (the first dimension)."""
        if self.size == 1:
            return x
        n = x.shape[0] // self.size
        return x[self.rank * n : (self.rank + 1) * n]

    def agree(self, *values: float) -> list[float]:
        """Each value summed over the ranks (one small all-reduce); as given in one process."""
        if self.size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()


def world_from_env() -> World:
    """This process's place as torchrun describes it (rank 0 of 1 without torchrun)."""
    try:
        return World(
            rank=int(os.environ.get("RANK", "0")),
            size=int(os.environ.get("WORLD_SIZE", "1")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError as exc:
        raise DistributedError(f"torchrun's environment is not understood: {exc}") from None


def check_batch(world: World, batch_size: int) -> int:
    """The per-rank batch of a global ``batch_size``."""
    if batch_size % world.size:
        raise DistributedError(
            f"--batch-size {batch_size} is the global batch and must divide evenly over "
            f"{world.size} processes (try {batch_size - batch_size % world.size or world.size})"
        )
    return batch_size // world.size


def pick_backend(requested: str, device: torch.device) -> str:
    if requested not in BACKENDS:
        raise DistributedError(
            f"unknown --dist-backend {requested!r}; one of {', '.join(BACKENDS)}"
        )
    if requested == "nccl" and not torch.cuda.is_available():
        raise DistributedError("--dist-backend nccl needs CUDA devices, and none is available")
    if requested == "nccl" and device.type != "cuda":
        raise DistributedError("--dist-backend nccl needs --device cuda (or auto on a GPU machine)")
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    return requested


def start(world: World, backend: str, device: torch.device) -> None:
    """Join the process group (a no-op for one process)."""
    if not world.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend, rank=world.rank, world_size=world.size, timeout=datetime.timedelta(minutes=30)
    )


def finish() -> None:
    """Wait for every process at the end of a run that went well, so that none tears the
    process group down while a peer still uses it (gloo aborts the peer then)."""
    if dist.is_initialized():
        dist.barrier()


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(net: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``net`` in DDP (SyncBatchNorm on CUDA); ``net`` itself in one process."""
    if not world.distributed:
        return net
    if device.type == "cuda":
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, forward_sync_buffers=False)


def broadcast_object(obj: object, world: World) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
