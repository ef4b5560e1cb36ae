"""What a multi-GPU overlay (``torchrun`` + ``multi_gpu_train.json``) calls, one named step each.

NCCL on GPUs, gloo on the CPU (the CPU runs of the tests); every rank but 0 keeps quiet, so only
rank 0 writes TensorBoard logs. Each function works on the CPU as on CUDA.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "close_writer",
    "ddp_device_ids",
    "destroy_distributed",
    "dist_backend",
    "distributed_members",
    "init_distributed",
    "local_device",
    "rank_zero_writer",
    "set_local_cuda_device",
]


def dist_backend() -> str:
    """``"nccl"`` with CUDA, ``"gloo"`` without."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def local_device() -> torch.device:
    """This process's device: ``cuda:<LOCAL_RANK>`` with CUDA, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def ddp_device_ids(device: torch.device) -> list[torch.device] | None:
    """``device_ids`` of ``DistributedDataParallel``: the local GPU, or ``None`` on the CPU."""
    return [device] if torch.device(device).type == "cuda" else None


def init_distributed(backend: str) -> None:
    """Initialise the default process group once (``torchrun`` sets the rank and address)."""
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)


def set_local_cuda_device(device: torch.device) -> None:
    """Make ``device`` the current CUDA device (nothing on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(device)


def rank_zero_writer(output_dir: str) -> Any:
    """A TensorBoard ``SummaryWriter`` on rank 0, ``None`` on the other ranks."""
    if dist.is_initialized() and dist.get_rank() > 0:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(output_dir)


def close_writer(writer: Any) -> None:
    """Close a writer from :func:`rank_zero_writer` (``None`` is fine)."""
    if writer is not None:
        writer.close()


def destroy_distributed() -> None:
    """Destroy the default process group, if there is one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def distributed_members(network: torch.nn.Module, device: torch.device) -> torch.nn.ModuleDict:
    """Each member of a network with ``members`` (a cross-teaching pair) wrapped in ``DistributedDataParallel``."""
    ids = ddp_device_ids(device)
    return torch.nn.ModuleDict({
        name: torch.nn.parallel.DistributedDataParallel(member, device_ids=ids) for name, member in network.members.items()
    })
