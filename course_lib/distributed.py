"""Multi-GPU training helpers: ``torchrun`` + DistributedDataParallel, and its CPU twin (gloo).

``torchrun --nproc_per_node N -m course_lib train ...`` starts N processes and sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each; :func:`init_distributed` reads them,
joins the process group (NCCL on GPUs, gloo on CPU) and picks this process's device.
Without those variables everything here is a no-op for a single process.

Each rank trains on its own share of every epoch (a ``DistributedSampler`` with a seeded
shuffle), DDP averages the gradients, so all ranks keep identical weights; only rank 0
writes checkpoints, logs and images.

Used by :mod:`course_lib.train` (notebook 95 explains multi-GPU runs).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = [
    "DistInfo",
    "resolve_device",
    "init_distributed",
    "cleanup_distributed",
    "all_reduce_flag",
    "all_reduce_flags",
    "all_gather_objects",
    "max_replica_difference",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files."""
        return self.rank == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> this rank's GPU when CUDA is available, else the CPU; other names pass through."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for CUDA but this torch sees no GPU; use "
                             "--set device=cpu (or device=auto), or install a CUDA build of torch")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1; otherwise a single process.

    Backend: NCCL when this rank runs on a GPU, gloo on the CPU (what the tests use).
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistInfo(0, 1, 0, dev, None)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing and not dist.is_initialized():
        raise RuntimeError(
            f"WORLD_SIZE={world_size} asks for {world_size} processes, but {' and '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} not set: start multi-process training with `torchrun --nproc_per_node N -m course_lib "
            "train ...` (it sets all of them), or unset WORLD_SIZE for one process")
    if not 0 <= rank < world_size:
        raise RuntimeError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size}): "
                           "let torchrun set RANK, or fix the variable")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, dev, backend)


def _env_int(name: str, default: int) -> int:
    """An integer environment variable, with an error that names it when it is not one."""
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"environment variable {name}={raw!r} is not an integer: "
                           f"unset it or let torchrun set it") from None


def cleanup_distributed() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is True on ANY rank (one tiny all-reduce).

    Used so that all ranks stop together (Ctrl-C, a non-finite loss): a rank that
    stopped alone would leave the others waiting forever in the next all-reduce.
    """
    return all_reduce_flags([flag], info)[0]


def all_reduce_flags(flags: list[bool], info: DistInfo) -> list[bool]:
    """:func:`all_reduce_flag` for several flags in one all-reduce (one wait for the device, not one per flag)."""
    if not info.distributed:
        return [bool(f) for f in flags]
    values = torch.tensor([1.0 if f else 0.0 for f in flags], device=info.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [v > 0 for v in values.tolist()]


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (e.g. its RNG states), in rank order; ``[obj]`` for one process."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


@torch.no_grad()
def max_replica_difference(module: nn.Module, info: DistInfo) -> float:
    """Largest |difference| of any parameter between ranks (0.0 = replicas in sync).

    One all-reduce of MAX and one of MIN over the concatenated parameters; 0.0 for a
    single process.
    """
    if not info.distributed:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).float() for p in module.parameters()])  # (P,)
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float((high - low).max().item())
