"""The loader of an evaluation pass, named once for the validation inside training, evaluation and inference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.data import DataLoader, Dataset

__all__ = ["evaluation_loader"]


def evaluation_loader(data: Sequence[Any], transform: Callable, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A MONAI ``DataLoader`` over ``Dataset(data, transform)``, in the order of ``data`` (no shuffling, no item dropped).

    ``finetune.json``'s validation, ``evaluate.json`` and ``inference.json`` all build their loader here,
    so that validation during training sees the items exactly as the evaluation does.

    Args:
        data: the items (``{"image": ..., "label": ...}`` dicts).
        transform: the deterministic preprocessing (e.g. :func:`~monai_ssl.recipes.image_transforms`).
        batch_size: items per batch.
        num_workers: loader worker processes.

    Raises:
        ValueError: ``batch_size`` below 1 or a negative ``num_workers``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size!r}.")
    if int(num_workers) < 0:
        raise ValueError(f"`num_workers` must be 0 or more, got {num_workers!r}.")
    return DataLoader(Dataset(data=data, transform=transform), batch_size=int(batch_size), shuffle=False,
                      num_workers=int(num_workers))
