"""Where a pre-training bundle makes its views: in the loader workers (CPU) or batched on the training device.

``--views batched`` (``views_on_device``) samples the view parameters in the workers and makes the views
on the device (the trainer's ``prepare_batch``: :func:`~monai_ssl.recipes.pretraining_prepare_batch`);
batches of images of different sizes are padded at their end with edge values, which no crop reaches.
Otherwise the workers make the views and the trainer only moves them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["view_collate", "view_transforms", "working_spatial_size"]


def view_transforms(views_on_device: bool, device_view_transforms: Sequence[Any], cpu_view_transforms: Sequence[Any]) -> list[Any]:
    """The loader's transforms: parameters only (views made on the device), or the views themselves."""
    return list(device_view_transforms if views_on_device else cpu_view_transforms)


def view_collate(views_on_device: bool) -> Callable:
    """The loader's ``collate_fn``: images of their own size padded at the end (views on the device), or MONAI's list collate."""
    from monai.data import list_data_collate
    from monai.transforms import PadListDataCollate

    return PadListDataCollate(method="end", mode="edge") if views_on_device else list_data_collate


def working_spatial_size(working_size: int | None) -> list[int]:
    """``Resized``'s ``spatial_size`` for an optional fixed working size: ``[s, s]``, or ``[-1, -1]`` (each image's own)."""
    return [int(working_size), int(working_size)] if working_size else [-1, -1]
