"""One reader for the classification datasets of the dermoscopy bundle: ISIC 2017, class folders, label CSVs.

S4MI (Singh et al.) classifies three kinds of data, each in its own on-disk layout; the bundle's
``layout`` setting names one, or ``"auto"`` recognises it:

* ``"isic2017"``: the ISIC 2017 challenge's Training/Validation/Test folders and Part 3 CSVs
  (:func:`~monai_ssl.data.isic2017_classification_datalists`; the challenge's own splits, lesion
  masks where the Part 1 folders are present);
* ``"class_folders"``: one folder per class, ``<root>/<class>/<image>`` (Dermofit), split into
  train/validation/test per class with a seed (:func:`~monai_ssl.data.class_folder_datalists`);
* ``"csv"``: a CSV of ``id,label`` or ``id,label_1,...,label_k`` and a folder of images
  (:func:`~monai_ssl.data.label_csv_datalist`); a one-column-per-class CSV that sets several
  classes in some row is multi-label (the immunofluorescence set). Split like the class folders,
  per class for single-label and at random for multi-label;
* ``"medmnist"``: a MedMNIST ``.npz`` archive (:func:`~monai_ssl.data.medmnist_datalist`, its own
  train/val/test splits; the images stay in memory, grayscale ones become RGB), e.g. BreastMNIST.

Every layout gives ``{"train", "val", "test": items, "class_names": names, "multi_label": bool}``
and the three id sets are checked disjoint (:class:`~monai_ssl.data.Splits`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from .class_folders import class_folder_datalists, stratified_splits
from .isic import ISIC_FOLDERS
from .isic_classification import isic2017_classification_datalists
from .label_csv import label_csv_datalist
from .classification import is_multi_hot
from .label_split import LabelBudgetError
from .labeled_pool import seeded_share
from .medmnist import medmnist_class_count, medmnist_datalist
from .splits import Splits

__all__ = ["CLASSIFICATION_LAYOUTS", "classification_layout", "skin_lesion_datalists"]

logger = logging.getLogger("monai_ssl")

CLASSIFICATION_LAYOUTS: tuple[str, ...] = ("auto", "isic2017", "class_folders", "csv", "medmnist")


def classification_layout(root: str | os.PathLike, labels_csv: str | os.PathLike | None = None) -> str:
    """The layout of a classification dataset (module docstring): ``"isic2017"``, ``"csv"``, ``"class_folders"`` or ``"medmnist"``.

    ``"csv"`` when ``labels_csv`` is given; ``"medmnist"`` for a ``.npz`` file; ``"isic2017"`` when
    ``root`` holds the challenge's training images folder; else ``"class_folders"`` when ``root`` holds
    sub-folders.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: ``root`` holds none of the layouts (what was looked for is listed).
    """
    if labels_csv not in (None, "", "none", "null"):
        return "csv"
    base = Path(root)
    if base.suffix.lower() == ".npz":
        return "medmnist"
    if not base.is_dir():
        raise FileNotFoundError(f"classification dataset folder not found: {base} (set `dataset_dir`)")
    if any((base / images).is_dir() for images, _ in ISIC_FOLDERS["train"]):
        return "isic2017"
    if any(p.is_dir() and not p.name.startswith(".") for p in base.iterdir()):
        return "class_folders"
    raise ValueError(
        f"{base}: no known classification layout: expected the ISIC 2017 folders "
        f"({ISIC_FOLDERS['train'][0][0]}, ...), one folder per class, or a label CSV given with `labels_csv`"
    )


def _random_splits(items: Sequence[Mapping[str, Any]], val_fraction: float, test_fraction: float,
                   seed: int) -> dict[str, list[Mapping[str, Any]]]:
    """Seeded test and validation shares of a multi-label list (no single class to stratify by), as
    :func:`stratified_splits` takes them for one class: test first (``seed``), then validation (``seed + 1``)."""
    if isinstance(val_fraction, (int, float)) and isinstance(test_fraction, (int, float)) and val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}")
    test, rest = seeded_share(items, test_fraction, seed, "test_fraction")
    val, train = seeded_share(rest, min(1.0, val_fraction / (1 - test_fraction)), seed + 1, "val_fraction")
    if not train:
        raise LabelBudgetError(f"{len(items)} images cannot give {len(test)} test, {len(val)} validation and any training image")
    Splits.from_datalists(train, val, test)
    return {"train": list(train), "val": list(val), "test": list(test)}


def skin_lesion_datalists(
    root: str | os.PathLike,
    layout: str = "auto",
    labels_csv: str | os.PathLike | None = None,
    image_dir: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    multi_label: bool | str | None = "auto",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    skip_missing: bool = False,
) -> dict[str, Any]:
    """The train, validation and test items of a classification dataset in any layout of the module docstring.

    Args:
        root: the dataset folder (``dataset_dir``).
        layout: one of :data:`CLASSIFICATION_LAYOUTS`; ``"auto"`` uses :func:`classification_layout`.
        labels_csv: ``"csv"`` layout: the label CSV (relative paths are taken in ``root``).
        image_dir: ``"csv"`` layout: the images folder; default ``root``.
        class_names: the classes in label order (class folders, CSV); default as the readers say.
        multi_label: ``"csv"`` layout: ``True``/``False`` as :func:`~monai_ssl.data.label_csv_datalist`
            takes it; ``"auto"`` or ``None``: multi-label when a row sets several classes. The other
            layouts are single-label, and ``True`` with them is an error.
        val_fraction: class folders and CSV: share of each class (of the images, multi-label) for validation.
        test_fraction: class folders and CSV: share for test.
        split_seed: seed of those splits (keep it fixed across a study).
        skip_missing: skip images a CSV lists but the folder lacks, with a warning giving their count.

    Returns:
        ``{"train", "val", "test": items, "class_names": names, "multi_label": bool, "layout": layout}``;
        items ``{"image": path, "label": class index or float32 multi-hot array, "id": id}``, plus
        ``"mask"`` where ISIC 2017 has a lesion mask.

    Raises:
        ValueError: an unknown ``layout`` (the choices are listed), ``multi_label=True`` with a
            single-label layout, and the readers' errors (files, columns, rows named).
        LabelBudgetError: a class (or a multi-label set) too small for the fractions.
    """
    if layout not in CLASSIFICATION_LAYOUTS:
        raise ValueError(f"`layout` must be one of {CLASSIFICATION_LAYOUTS}, got {layout!r}")
    wanted = None if multi_label in (None, "auto") else multi_label
    if wanted not in (None, True, False):
        raise ValueError(f"`multi_label` must be true, false or 'auto', got {multi_label!r}")
    chosen = classification_layout(root, labels_csv) if layout == "auto" else layout
    if chosen != "csv" and wanted is True:
        raise ValueError(f"`multi_label` is true but the {chosen!r} layout of {root} is single-label; "
                         "multi-label data comes as a label CSV with one column per class (`labels_csv`)")
    if chosen == "isic2017":
        splits = isic2017_classification_datalists(root, skip_missing=skip_missing)
    elif chosen == "medmnist":
        count = medmnist_class_count(root)
        splits = {split: medmnist_datalist(root, split) for split in ("train", "val", "test")}
        for items in splits.values():  # class indices as ints, as the other layouts give them
            for item in items:
                item["label"] = int(item["label"])
        splits["class_names"] = [str(i) for i in range(count)]
        Splits.from_datalists(splits["train"], splits["val"], splits["test"])
    elif chosen == "class_folders":
        splits = class_folder_datalists(root, val_fraction=val_fraction, test_fraction=test_fraction, seed=split_seed,
                                        class_names=class_names)
    else:
        if labels_csv in (None, "", "none", "null"):
            raise ValueError("layout 'csv' needs `labels_csv`: the CSV of `id,label` or `id,label_1,...,label_k`")
        csv_path = Path(labels_csv) if os.path.isabs(labels_csv) else Path(root) / labels_csv
        items, names = label_csv_datalist(csv_path, image_dir or root, class_names=class_names, multi_label=wanted,
                                          skip_missing=skip_missing)
        splitter = _random_splits if is_multi_hot(items) else stratified_splits
        splits = {**splitter(items, val_fraction, test_fraction, split_seed), "class_names": names}
    splits["multi_label"] = is_multi_hot(splits["train"])
    splits["layout"] = chosen
    logger.info("%s: %s layout, %d classes (%s), %d/%d/%d train/val/test images", root, chosen,
                len(splits["class_names"]), "multi-label" if splits["multi_label"] else "single-label",
                len(splits["train"]), len(splits["val"]), len(splits["test"]))
    return splits
