"""Where a training process runs: its device, and its rank in a torchrun job (docs/DESIGN.md §8).

A plain process is rank 0 of a world of 1. Under torchrun (WORLD_SIZE > 1) `placement` starts the
process group (NCCL on CUDA, Gloo on the CPU) and stops it on exit; rank 0 alone writes files.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
import os
from typing import TYPE_CHECKING, Iterator

from .errors import UserError

if TYPE_CHECKING:
    import torch

DEVICES_HELP = "cpu, cuda, cuda:N or auto (CUDA when available)"


def resolve_device(name: str, local_rank: int = 0, world: int = 1) -> "torch.device":
    """The torch device for `name` ('cpu', 'cuda', 'cuda:N', 'auto'), with its index on CUDA."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r}: unknown device (use {DEVICES_HELP})") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r} (use {DEVICES_HELP})")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name!r} requested but CUDA is not available")
        if world > 1:
            device = torch.device("cuda", local_rank)
        elif device.index is None:         # "cuda" → the current device, with its index
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


@dataclass(frozen=True)
class Placement:
    """This process's rank, the world size, and the device it trains on."""

    rank: int
    world: int
    device: "torch.device"

    @property
    def main(self) -> bool:
        """Rank 0: the process that evaluates and writes the run directory."""
        return self.rank == 0

    def all_reduce_mean(self, value: "torch.Tensor") -> "torch.Tensor":
        """The mean of `value` over ranks (the value itself in a world of 1)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        dist.all_reduce(value)
        return value / self.world


@contextmanager
def placement(device: str) -> Iterator[Placement]:
    """This process's Placement; under torchrun the process group lives for the block."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield Placement(0, 1, resolve_device(device))
        return
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local, world)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        yield Placement(dist.get_rank(), dist.get_world_size(), dev)
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()
