"""Train, validation and test splits of a class-per-folder dataset that ships no splits (Dermofit's layout).

Dermofit (ten classes in the S4MI paper, Singh et al.) is one folder per class,
``<root>/<class>/<image>``, without train/test folders. :func:`image_folder_datalist` with
``split=None`` lists it; :func:`stratified_splits` then sets aside a seeded, stratified share of
every class for test and for validation with :func:`~monai_ssl.data.split_labeled` (the project's
one way to draw per-class subsets), and :class:`~monai_ssl.data.Splits` checks the three are
disjoint. A share that a class cannot give raises :class:`~monai_ssl.data.LabelBudgetError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .image_folder import IMAGE_SUFFIXES, image_folder_datalist
from .label_split import split_labeled
from .splits import Splits

__all__ = ["class_folder_datalists", "stratified_splits"]

logger = logging.getLogger("monai_ssl")


def _check_fraction(name: str, value: Any) -> float:
    """A share in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def stratified_splits(
    items: Sequence[Mapping[str, Any]], val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[Mapping[str, Any]]]:
    """Split one single-label datalist into train, validation and test, per class, seeded.

    The test items are ``round(test_fraction * n)`` of each class of ``n`` items (seed ``seed``);
    the validation items ``round(val_fraction / (1 - test_fraction) * m)`` of the ``m`` left
    (seed ``seed + 1``), i.e. about ``val_fraction`` of the class; the rest trains.

    Args:
        items: items with a unique ``"id"`` and a class index ``"label"``.
        val_fraction: share of each class for validation, in (0, 1).
        test_fraction: share of each class for test, in (0, 1); with ``val_fraction`` below 1.
        seed: a non-negative integer; the same seed gives the same splits.

    Returns:
        ``{"train": items, "val": items, "test": items}``, each sorted by id.

    Raises:
        LabelBudgetError: a class too small to give a test or validation item.
        ValueError: bad fractions; an empty split left for training.
        SplitOverlapError: never for unique ids (checked by :class:`Splits`).
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}")
    test, rest = split_labeled(items, fraction=test_fraction, seed=seed)
    val, train = split_labeled(rest, fraction=min(1.0, val_fraction / (1 - test_fraction)), seed=seed + 1)
    if not train:
        raise ValueError(f"val_fraction={val_fraction} and test_fraction={test_fraction} leave no training item")
    Splits.from_datalists(train, val, test)
    return {"train": list(train), "val": list(val), "test": list(test)}


def class_folder_datalists(
    root: str | os.PathLike,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    extensions: Sequence[str] = IMAGE_SUFFIXES,
    check_files: bool = True,
) -> dict[str, Any]:
    """The train, validation and test items of a ``<root>/<class>/<image>`` dataset without split folders.

    Args:
        root: the folder holding one folder per class.
        val_fraction: share of each class for validation, in (0, 1).
        test_fraction: share of each class for test, in (0, 1).
        seed: seed of the split (keep it fixed across the runs of one study).
        class_names: the classes in label order; default: the folder names sorted.
        extensions: image file endings.
        check_files: check that every file is a readable image (headers only).

    Returns:
        ``{"train", "val", "test": items, "class_names": names}``; items as
        :func:`~monai_ssl.data.image_folder_datalist` gives them (id ``"<class>/<file>"``).

    Raises:
        FileNotFoundError: ``root`` is missing.
        LabelBudgetError: a class too small for the fractions.
        ValueError: see :func:`image_folder_datalist` and :func:`stratified_splits`.
    """
    items, names = image_folder_datalist(root, split=None, class_names=class_names, extensions=extensions,
                                         check_files=check_files)
    splits = stratified_splits(items, val_fraction, test_fraction, seed)
    logger.info("class folders %s: %d train, %d val, %d test items (seed %d), classes %s", root,
                len(splits["train"]), len(splits["val"]), len(splits["test"]), seed, names)
    return {**splits, "class_names": list(names)}
