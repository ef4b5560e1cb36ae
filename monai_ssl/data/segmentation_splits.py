"""Training, validation and test image/mask lists of a segmentation dataset, never validating on the reported split.

The best checkpoint is chosen on validation images that the reported figures are not computed on:
the dataset's own validation split when it has one (ISIC 2017's 150 validation images), otherwise a
seeded share of the training split held out with its own seed (``val_seed``), independent of the
seed that chooses the labeled subset, so every run of a study sets the same images aside. The ids
of the three lists are checked by :class:`~monai_ssl.data.splits.Splits`, and
:func:`segmentation_unlabeled_stream` keeps validation and test ids out of the unlabeled stream, also
those of an extra unlabeled folder (a later ISIC archive repeats the ISIC 2017 ids).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from collections.abc import Mapping, Sequence

from .isic import ISIC_IMAGE_GLOB, segmentation_datalist, unlabeled_image_datalist
from .labeled_pool import seeded_share, unlabeled_stream_datalist
from .splits import Splits, reserved_ids
from .validation_split import check_selection_split

__all__ = ["segmentation_splits", "segmentation_unlabeled_stream"]

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
    val = None
    if val_split is not None:
        try:
            val = segmentation_datalist(dataset_dir, val_split, **datalist_kwargs)
        except FileNotFoundError as err:
            logger.warning(
                f"no validation split '{val_split}' in {dataset_dir} ({err}); holding out {val_fraction:.0%} of "
                f"'{train_split}' (val_seed={val_seed}) for model selection instead."
            )
    if val is None:
        train, val = _hold_out(train, val_fraction, val_seed)
    test = _split_images(dataset_dir, eval_split, datalist_kwargs) if eval_split not in (None, train_split, val_split) else []
    Splits.from_datalists(train, val, test, sources={
        "train": f"'{train_split}'", "validation": f"'{val_split}'" if val_split else "the hold-out",
        "test": f"'{eval_split}'"})
    return {"train": train, "val": val, "test": test}


def _split_images(dataset_dir: str | os.PathLike, split: str | None, datalist_kwargs: Mapping) -> list[dict]:
    """The images of ``split`` (masks not needed), or none when the dataset has no such split."""
    try:
        return segmentation_datalist(dataset_dir, split, image_glob=datalist_kwargs.get("image_glob", ISIC_IMAGE_GLOB),
                                     require_masks=False, check_sizes=False)
    except (FileNotFoundError, ValueError) as err:
        logger.info(f"no '{split}' images listed in {dataset_dir} ({err}); only validation ids are kept out of training.")
        return []


def segmentation_unlabeled_stream(
    labeled_split: Sequence[Sequence[Mapping]],
    splits: Mapping[str, Sequence[Mapping]],
    fraction: float,
    unlabeled_dir: str | os.PathLike | None = None,
    image_glob: str = ISIC_IMAGE_GLOB,
    min_size: int | None = None,
) -> list[dict]:
    """The unlabeled stream of cross-teaching: the unlabeled pool, plus the images of ``unlabeled_dir``,
    never a validation or test id (see :func:`~monai_ssl.data.unlabeled_stream_datalist`).

    Args:
        labeled_split: ``(labeled, unlabeled pool)`` of the training split.
        splits: :func:`segmentation_splits`' lists; their ``"val"`` and ``"test"`` ids are kept out.
        fraction: the labeled fraction, in (0, 1].
        unlabeled_dir: a folder of extra unlabeled images (``None``: none).
        image_glob: the extra images' file pattern.
        min_size: the smallest allowed shorter side of an extra image.
    """
    extra = unlabeled_image_datalist(unlabeled_dir, image_glob=image_glob, min_size=min_size) if unlabeled_dir else None
    return unlabeled_stream_datalist(labeled_split[0], labeled_split[1], extra=extra, fraction=fraction,
                                     exclude_ids=reserved_ids(splits))
