"""Data-parallel training under ``torchrun``: which process this is, and its collectives.

``torchrun --nproc_per_node N -m mlbench prune ...`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK set. ``from_env`` joins them into one process group (NCCL on
CUDA, gloo on CPU). Every rank then runs the same flow in lockstep: rank 0 alone talks
to MLflow and computes the masks; what it decides (the base weights, the masks, a
checkpoint to resume from) is broadcast; each rank trains on its 1/N part of every
batch (``Split.batches(shard=...)``) and DistributedDataParallel averages gradients, so
N ranks take the steps one process would. Metrics are sums reduced across ranks, so
accuracies stay exact fractions over the whole split.

A single process gets ``Dist()``, whose collectives do nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from mlbench.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    """This process's place in the group: ``rank`` of ``world``, ``local_rank`` on its host."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process?"""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that tracks, registers and decides."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """``(rank, world)``, as ``Split.batches`` takes it."""
        return self.rank, self.world

    def all_sum(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over all ranks, in place; returns it."""
        if self.enabled:
            torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def broadcast(self, tensor: Tensor) -> Tensor:
        """Rank 0's ``tensor`` on every rank, in place; returns it."""
        if self.enabled:
            torch_dist.broadcast(tensor, src=0)
        return tensor

    def broadcast_flag(self, value: bool) -> bool:
        """Rank 0's decision, on every rank."""
        if not self.enabled:
            return value
        return bool(self.broadcast(torch.tensor([int(value)], device=self.device())).item())

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers, copied into every rank's ``module``."""
        if self.enabled:
            for tensor in [*module.parameters(), *module.buffers()]:
                torch_dist.broadcast(tensor.data, src=0)

    def broadcast_masks(
        self, masks: dict[str, Tensor] | None, like: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """Rank 0's masks on every rank (others pass None; ``like`` gives names and shapes)."""
        if not self.enabled:
            assert masks is not None
            return masks
        out = {}
        for name, param in like.items():
            mask = masks[name] if masks is not None else None
            buffer = (mask if mask is not None else torch.zeros(param.shape, dtype=torch.bool))
            buffer = buffer.to(self.device(), torch.uint8)
            out[name] = self.broadcast(buffer).to(param.device, torch.bool)
        return out

    def broadcast_bytes(self, data: bytes | None) -> bytes | None:
        """Rank 0's bytes (or None) on every rank: a file, say, that only rank 0 can fetch."""
        if not self.enabled:
            return data
        size = self.broadcast(torch.tensor([-1 if data is None else len(data)],
                                           device=self.device()))
        if int(size.item()) <= 0:  # None, or empty: every rank knows it from the size alone
            return None if int(size.item()) < 0 else b""
        buffer = torch.zeros(int(size.item()), dtype=torch.uint8, device=self.device())
        if data is not None:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        return self.broadcast(buffer).cpu().numpy().tobytes()

    def device(self) -> torch.device:
        """Where this rank's collectives run: its GPU under NCCL, else the CPU."""
        if self.enabled and torch_dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel when there are several ranks; else itself."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return DistributedDataParallel(model, device_ids=device_ids)


def from_env(device: torch.device) -> Dist:
    """Join the group ``torchrun`` describes in the environment; ``Dist()`` outside it.

    The backend is NCCL when training on CUDA (each rank on ``cuda:LOCAL_RANK``) and
    gloo otherwise.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        torch_dist.init_process_group(backend)
    return Dist(rank=rank, world=world, local_rank=local_rank)


def shutdown() -> None:
    """Leave the process group cleanly (all ranks together), if this process joined one.

    A rank that exits with the group still up can abort in gloo's threads
    ("terminate called without an active exception") while the others still talk.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def rank_device(device: torch.device, dist: Dist) -> torch.device:
    """Each rank's own GPU (``cuda:LOCAL_RANK``) under torchrun; ``device`` otherwise."""
    if dist.enabled and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def check_batch(batch_size: int, dist: Dist, option: str) -> None:
    """A batch must split evenly over the ranks, so that they take one process's steps."""
    if batch_size % dist.world:
        raise ConfigError(
            f"{option} {batch_size} does not split over {dist.world} processes; "
            f"use a multiple of {dist.world}"
        )


__all__ = ["Dist", "check_batch", "from_env", "rank_device", "shutdown"]
