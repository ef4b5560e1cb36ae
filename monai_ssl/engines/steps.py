"""Refuse a training run that would take no step at all, instead of finishing "successfully"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["require_training_steps"]


def require_training_steps(data_loader: Iterable | Any, what: str = "training") -> int:
    """Return the iterations of one epoch over ``data_loader``; raise when there are none.

    MONAI's ``Workflow.run`` only warns "dataloader is empty" and returns, so a run with fewer items
    than one batch (``drop_last=True``) or no items at all exits with success and writes nothing. A
    bundle's ``run`` (or a trainer's ``run``) calls this first.

    Args:
        data_loader: the training loader (anything with ``len``; a loader without length passes).
        what: the run's name in the message, e.g. ``"BYOL pre-training"``.

    Raises:
        ValueError: one epoch has zero iterations; the message gives the number of items, the batch
            size, ``drop_last`` and the sampler's share (multi-GPU), and what to change.
    """
    try:
        steps = len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        return -1
    if steps > 0:
        return steps
    dataset = getattr(data_loader, "dataset", None)
    items = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
    batch_size = getattr(data_loader, "batch_size", None)
    drop_last = bool(getattr(data_loader, "drop_last", False))
    sampler = getattr(data_loader, "sampler", None)
    share = len(sampler) if sampler is not None and hasattr(sampler, "__len__") else items
    counts = f"{items if items is not None else 'an unknown number of'} training items (exams or images)"
    if share is not None and items is not None and share != items:
        counts += f", {share} of them on this process"
    if not items:
        advice = "There is no training data: check --dataset_dir and the split settings."
    else:
        advice = (
            f"With drop_last={drop_last} an epoch needs at least {batch_size} items: lower --batch_size to at most "
            f"{share} (BYOL needs at least 2 per batch) or add data."
        )
    raise ValueError(
        f"{what} would train zero steps: {counts}, batch_size {batch_size}, drop_last={drop_last}. {advice}"
    )
