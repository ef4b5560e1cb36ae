"""Training and validation datalists of a classification dataset, never validating on the reported split.

Model selection (best checkpoint, best pseudo-label round, early stopping) must use data that the
reported figures are not computed on. :func:`train_val_datalists` takes the dataset's own
validation split when it has one (OCT2017's ``val`` folder, MedMNIST's ``val`` arrays) and
otherwise holds out a seeded, stratified share of the training split. The hold-out is drawn with
its own seed (``val_seed``), independent of the seed that chooses the labeled subset, so every
run of a study, and BYOL pre-training, sets the same images aside.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .classification import _MEDMNIST_SPLITS, classification_datalist
from .label_split import split_labeled
from .splits import Splits

__all__ = ["check_selection_split", "has_split", "train_val_datalists"]

logger = logging.getLogger("monai_ssl")


def has_split(source: str | os.PathLike, split: str) -> bool:
    """Whether the dataset at ``source`` (an OCT2017-layout folder or a MedMNIST ``.npz``) has ``split``."""
    path = Path(source)
    if path.suffix.lower() == ".npz":
        if split not in _MEDMNIST_SPLITS or not path.is_file():
            return False
        with np.load(path) as archive:
            return f"{_MEDMNIST_SPLITS[split]}_images" in archive.files
    return (path / split).is_dir()


def check_selection_split(val_split: str | None, eval_split: str | None, allow_val_on_eval_split: bool = False) -> None:
    """Refuse to select models on the split that the results are reported on.

    Raises:
        ValueError: ``val_split == eval_split`` and ``allow_val_on_eval_split`` is False.
    """
    if val_split is None or eval_split is None or val_split != eval_split:
        return
    if allow_val_on_eval_split:
        logger.warning(
            f"val_split '{val_split}' is also the split evaluate.json reports on (eval_split); the best model is "
            "chosen on it, so the reported figures are optimistic (allowed by allow_val_on_eval_split=true)."
        )
        return
    raise ValueError(
        f"val_split '{val_split}' is the split that evaluate.json reports on (eval_split '{eval_split}'): choosing "
        "the best model on it makes the reported figures optimistic. Use the dataset's validation split "
        "(--val_split val), or a split the dataset lacks to hold out val_fraction of the training split, or "
        "force it with --allow_val_on_eval_split True."
    )


def train_val_datalists(
    source: str | os.PathLike,
    train_split: str = "train",
    val_split: str | None = "val",
    val_fraction: float = 0.1,
    val_seed: int = 0,
    eval_split: str | None = "test",
    allow_val_on_eval_split: bool = False,
    skip_unreadable: bool = False,
) -> dict[str, Any]:
    """The training items, the validation items and the class names of a classification dataset.

    Validation uses ``val_split`` when the dataset has it; otherwise (or with ``val_split=None``)
    a stratified ``val_fraction`` of every class of ``train_split``, drawn with
    :func:`~monai_ssl.data.split_labeled` seeded by ``val_seed``, is set aside and removed from the
    training items: training on a validation image is impossible by construction.

    Args:
        source: an OCT2017-layout folder or a MedMNIST ``.npz`` (see
            :func:`~monai_ssl.data.classification_datalist`).
        train_split: the split to train on.
        val_split: the dataset's validation split, when it has one.
        val_fraction: share of each training class held out when there is no ``val_split``, in (0, 1).
        val_seed: seed of that hold-out (keep it fixed across the runs of one study).
        eval_split: the split that evaluation reports on; validation may not be that split.
        allow_val_on_eval_split: allow ``val_split == eval_split`` (with a warning).
        skip_unreadable: drop unreadable image files with a count instead of failing.

    Returns:
        ``{"train": items, "val": items, "class_names": names, "val_source": text}``, the last one
        saying where the validation items came from (for logs and reports).

    Raises:
        ValueError: validation on ``eval_split`` without the override; a bad ``val_fraction``; or a
            class of the training split too small to give up a validation image.
        SplitOverlapError: an image id in both the training and the validation split.
    """
    check_selection_split(val_split, eval_split, allow_val_on_eval_split)
    train, class_names = classification_datalist(source, split=train_split, skip_unreadable=skip_unreadable)
    if val_split is not None and val_split != train_split and has_split(source, val_split):
        val, _ = classification_datalist(source, split=val_split, class_names=class_names, skip_unreadable=skip_unreadable)
        where = f"the dataset's '{val_split}' split"
    else:
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
        try:
            val, train = split_labeled(train, fraction=val_fraction, seed=val_seed)
        except ValueError as err:
            raise ValueError(f"cannot hold out val_fraction={val_fraction} of '{train_split}' for validation: {err}") from err
        if not train:
            raise ValueError(f"holding out val_fraction={val_fraction} of '{train_split}' leaves no training item")
        why = f"{source} has no '{val_split}' split" if val_split is not None else "val_split is null"
        where = f"a {val_fraction:g} hold-out of '{train_split}' (val_seed {val_seed}; {why})"
    Splits.from_datalists(train, val, sources={"train": f"'{train_split}'", "validation": where})
    logger.info(f"validation: {len(val)} items from {where}; training: {len(train)} items; classes {list(class_names)}")
    return {"train": list(train), "val": list(val), "class_names": list(class_names), "val_source": where}

