"""Batch sizes of cross-teaching (Luo et al., MIDL 2022): 8 labeled + 8 unlabeled, and 15 + 1 with every label."""

from __future__ import annotations

__all__ = ["labeled_batch_size", "unlabeled_batch_size"]


def labeled_batch_size(labeled_fraction: float) -> int:
    """8 labeled crops per batch; 15 at a labeled fraction of 1.0 (the paper's fully supervised setting)."""
    return 15 if float(labeled_fraction) >= 1.0 else 8


def unlabeled_batch_size(labeled_fraction: float) -> int:
    """8 unlabeled crops per batch; 1 at a labeled fraction of 1.0, which keeps the cross-teaching term in the loss."""
    return 1 if float(labeled_fraction) >= 1.0 else 8
