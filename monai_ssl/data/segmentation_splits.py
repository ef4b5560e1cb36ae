"""Training and validation image/mask lists of a segmentation dataset, never validating on the reported split.

The best checkpoint is chosen on validation images that the reported figures are not computed on:
the dataset's own validation split when it has one (ISIC 2017's 150 validation images), otherwise a
seeded share of the training split held out with its own seed (``val_seed``), independent of the
seed that chooses the labeled subset, so every run of a study sets the same images aside.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .isic import segmentation_datalist
from .labeled_pool import seeded_share
from .validation_split import check_selection_split

__all__ = ["segmentation_splits"]

logger = logging.getLogger("monai_ssl")


def _hold_out(items: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(kept, held out): a seeded share of ``items`` set aside, leaving at least one item to train on."""
    if not 0 < fraction < 1:
        raise ValueError(f"segmentation_splits: val_fraction must be in (0, 1), got {fraction!r}.")
    if len(items) < 2:
        raise ValueError(f"segmentation_splits: {len(items)} training image(s) cannot be split into training and validation.")
    held, kept = seeded_share(items, fraction, seed, "segmentation_splits")
    if not kept:  # a fraction that rounds up to every item
        held, kept = held[:-1], held[-1:]
    return kept, held


def segmentation_splits(
    dataset_dir: str | os.PathLike,
    train_split: str | None = "train",
    val_split: str | None = "val",
    val_fraction: float = 0.1,
    val_seed: int = 0,
    eval_split: str | None = "test",
    allow_val_on_eval_split: bool = False,
    **datalist_kwargs: Any,
) -> dict[str, list[dict]]:
    """``{"train": [...], "val": [...]}`` image/mask items of ``dataset_dir`` (see :func:`segmentation_datalist`).

    Args:
        dataset_dir: the dataset (ISIC 2017 challenge folders or a generic image/mask layout).
        train_split: the training split.
        val_split: the validation split; when the dataset has none (or ``None``), a seeded ``val_fraction``
            of the training split is held out instead.
        val_fraction: the share held out when there is no validation split.
        val_seed: the seed of that hold-out.
        eval_split: the split ``evaluate.json`` reports on; validating on it is refused.
        allow_val_on_eval_split: allow it anyway (with a warning).
        datalist_kwargs: ``image_glob``, ``mask_name``, ``min_size``, ... of :func:`segmentation_datalist`.

    Raises:
        ValueError: ``val_split == eval_split`` (unless allowed); too few training images to hold some out.
    """
    check_selection_split(val_split, eval_split, allow_val_on_eval_split)
    train = segmentation_datalist(dataset_dir, train_split, **datalist_kwargs)
    if val_split is not None:
        try:
            return {"train": train, "val": segmentation_datalist(dataset_dir, val_split, **datalist_kwargs)}
        except FileNotFoundError as err:
            logger.warning(
                f"no validation split '{val_split}' in {dataset_dir} ({err}); holding out {val_fraction:.0%} of "
                f"'{train_split}' (val_seed={val_seed}) for model selection instead."
            )
    train, val = _hold_out(train, val_fraction, val_seed)
    return {"train": train, "val": val}
