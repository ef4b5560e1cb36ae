"""Multi-GPU helpers: the batch-norm choice, and the module inside a data-parallel wrapper."""

from __future__ import annotations

from torch import nn

__all__ = ["maybe_sync_batchnorm", "unwrap_parallel"]


def maybe_sync_batchnorm(network: nn.Module, sync: bool) -> nn.Module:
    """Convert every batch-norm layer to ``SyncBatchNorm`` when ``sync`` is True; return the network.

    BYOL computes batch statistics in its encoders and heads; with ``DistributedDataParallel`` each
    GPU otherwise normalises over its own share of the batch only. The BYOL paper synchronises
    batch norm across devices, so the multi-GPU overlay does so on CUDA. ``SyncBatchNorm`` runs on
    CUDA only: on CPU (gloo) the per-process batch norm is kept.
    """
    return nn.SyncBatchNorm.convert_sync_batchnorm(network) if sync else network


def unwrap_parallel(network: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel``/``DataParallel`` wrapper, or ``network`` itself."""
    return network.module if isinstance(network, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else network
