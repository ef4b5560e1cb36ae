"""One entry point for 2D classification data: an image-folder dataset or a MedMNIST ``.npz``."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .folders import _missing_folder_hint
from .image_folder import IMAGE_SUFFIXES, image_folder_datalist, validate_image_file
from .label_csv import label_csv_datalist
from .label_split import split_labeled
from .labeled_pool import seeded_share
from .medmnist import medmnist_class_count, medmnist_datalist

__all__ = ["classification_datalist", "classification_splits", "evaluation_datalist", "image_datalist", "task_labeled_split"]

logger = logging.getLogger("monai_ssl")

_MEDMNIST_SPLITS = {"train": "train", "val": "val", "valid": "val", "test": "test"}


def classification_datalist(
    source: str | os.PathLike,
    split: str = "train",
    class_names: Sequence[str] | None = None,
    skip_unreadable: bool = False,
) -> tuple[list[dict], list[str]]:
    """Items ``{"image", "label", "id"}`` and the class names of one split of a classification dataset.

    ``source`` is either a folder in the OCT2017 layout (``<source>/<split>/<class>/*.jpeg``, any
    of ``.jpeg .jpg .png .dcm``; see :func:`image_folder_datalist`) or a MedMNIST ``.npz`` file
    (split ``train``, ``val`` or ``test``; class names ``"0"``, ``"1"``, ...; see
    :func:`medmnist_datalist`). Pass the training split's ``class_names`` when listing another
    split so the class indices agree.
    """
    path = Path(source)
    if path.suffix.lower() == ".npz":
        if split not in _MEDMNIST_SPLITS:
            raise ValueError(f"unknown MedMNIST split {split!r} for {path}; expected train, val or test")
        names = [str(i) for i in range(medmnist_class_count(path))]
        if class_names is not None and list(class_names) != names:
            raise ValueError(f"{path} has classes {names}, not {list(class_names)}")
        return medmnist_datalist(path, _MEDMNIST_SPLITS[split]), names
    return image_folder_datalist(path, split=split, class_names=class_names, skip_unreadable=skip_unreadable)


def image_datalist(folder: str | os.PathLike, skip_unreadable: bool = False, setting: str | None = None) -> list[dict]:
    """``[{"image": path, "id": file name}, ...]`` for the images directly in ``folder`` (for inference).

    Args:
        folder: a folder of images.
        skip_unreadable: drop unreadable images with one warning giving their count, instead of raising.
        setting: the bundle setting that gave ``folder`` (e.g. ``"input_dir"``); a missing folder's
            error then says to pass ``--<setting>``.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        ValueError: no image in it, or an unreadable one (unless ``skip_unreadable``: then it is
            dropped and counted in one warning).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"input folder not found: {root} (expected a folder of {', '.join(IMAGE_SUFFIXES)} files)"
            + _missing_folder_hint(setting)
        )
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{root} holds no image (expected {', '.join(IMAGE_SUFFIXES)})")
    items, skipped = [], []
    for path in files:
        problem = validate_image_file(path)
        if problem is not None:
            if not skip_unreadable:
                raise ValueError(f"{path}: {problem}")
            skipped.append(path.name)
            continue
        items.append({"image": str(path.resolve()), "id": path.name})
    if skipped:
        logger.warning(f"skipped {len(skipped)} of {len(files)} unreadable images in {root}: {', '.join(skipped[:5])}")
    if not items:
        raise ValueError(f"every image in {root} is unreadable")
    return items


def _csv_multi_label(value: Any) -> bool | None:
    """A bundle's ``multi_label`` setting (``"auto"``/true/false) as :func:`label_csv_datalist` takes it."""
    if value == "auto" or value is None:
        return None
    if isinstance(value, bool):
        return value
    raise ValueError(f"`multi_label` must be \"auto\", true or false (--multi_label auto), got {value!r}.")


def is_multi_hot(items: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the items carry label vectors (:func:`label_csv_datalist`'s multi-label float32 arrays)."""
    return bool(items) and getattr(items[0].get("label"), "ndim", 0) >= 1


def classification_splits(
    source: str | os.PathLike,
    labels_csv: str | os.PathLike | None = None,
    image_dir: str | os.PathLike | None = None,
    val_labels_csv: str | os.PathLike | None = None,
    multi_label: Any = "auto",
    train_split: str = "train",
    val_split: str | None = "val",
    val_fraction: float = 0.1,
    val_seed: int = 0,
    eval_split: str | None = "test",
    allow_val_on_eval_split: bool = False,
    skip_unreadable: bool = False,
) -> dict[str, Any]:
    """Training and validation items of a classification bundle, from class folders or a label CSV.

    Without ``labels_csv`` this is :func:`~monai_ssl.data.train_val_datalists` (class folders or a
    MedMNIST ``.npz``; always single-label). With ``labels_csv`` (``id,label`` or
    ``id,label_1,...,label_k``, see :func:`label_csv_datalist`) the images come from ``image_dir``
    (default ``source``); validation is ``val_labels_csv`` when given, else a seeded ``val_fraction``
    hold-out of the CSV's items: stratified by class for single-label data, a plain seeded share for
    multi-label data (one image holds several labels, so there are no strata).

    Args:
        source: the dataset folder (or ``.npz``).
        labels_csv: the training label CSV, or ``None`` for class folders.
        image_dir: the folder of the CSV's images; default ``source``.
        val_labels_csv: a validation label CSV (same images folder); default: hold out ``val_fraction``.
        multi_label: the bundle setting ``"auto"``, true or false (checked against the CSV).
        train_split, val_split, eval_split, allow_val_on_eval_split: folder datasets only (see
            :func:`~monai_ssl.data.train_val_datalists`).
        val_fraction: share held out for validation, in (0, 1), when there is no validation split / CSV.
        val_seed: seed of that hold-out.
        skip_unreadable: skip unreadable images (folders) or rows whose image is missing (CSV), counted.

    Returns:
        ``{"train", "val", "class_names", "val_source", "multi_label"}``.

    Raises:
        ValueError: ``multi_label`` true with class folders; a bad ``val_fraction``; the errors of the readers.
    """
    wanted = _csv_multi_label(multi_label)
    if labels_csv is None:
        if wanted:
            raise ValueError(
                "`multi_label` is true but the dataset is read from class folders (one class per image); multi-label "
                "data comes as a label CSV with one 0/1 column per label: pass --labels_csv <file>."
            )
        from .validation_split import train_val_datalists  # imports this module

        splits = train_val_datalists(
            source, train_split=train_split, val_split=val_split, val_fraction=val_fraction, val_seed=val_seed,
            eval_split=eval_split, allow_val_on_eval_split=allow_val_on_eval_split, skip_unreadable=skip_unreadable,
        )
        return {**splits, "multi_label": False}
    folder = source if image_dir is None else image_dir
    train, names = label_csv_datalist(labels_csv, folder, multi_label=wanted, skip_missing=skip_unreadable)
    multi = is_multi_hot(train)
    if val_labels_csv is not None:
        val, _ = label_csv_datalist(val_labels_csv, folder, class_names=names, multi_label=multi, skip_missing=skip_unreadable)
        where = f"the label CSV {val_labels_csv}"
    else:
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
        try:
            val, train = (
                seeded_share(train, val_fraction, val_seed, "val_fraction") if multi
                else split_labeled(train, fraction=val_fraction, seed=val_seed)
            )
        except ValueError as err:
            raise ValueError(f"cannot hold out val_fraction={val_fraction} of {labels_csv} for validation: {err}") from err
        if not train:
            raise ValueError(f"holding out val_fraction={val_fraction} of {labels_csv} leaves no training item")
        where = f"a {val_fraction:g} hold-out of {labels_csv} (val_seed {val_seed})"
    logger.info(f"validation: {len(val)} items from {where}; training: {len(train)} items; classes {names}")
    return {"train": list(train), "val": list(val), "class_names": list(names), "val_source": where, "multi_label": multi}


def task_labeled_split(
    items: Sequence[Mapping[str, Any]],
    fraction: float | None = None,
    per_class: int | Mapping[int, int] | None = None,
    seed: int = 0,
    multi_label: bool = False,
) -> tuple[list, list]:
    """``(labeled, unlabeled)`` training items: :func:`split_labeled` per class, or a seeded share for multi-label.

    A multi-label image belongs to several classes, so a per-class count (``labeled_per_class``,
    few_shot.json's ``shots_per_class``) is undefined; the labeled share is then
    :func:`~monai_ssl.data.labeled_pool.seeded_share` of ``fraction`` (nested across fractions).

    Raises:
        ValueError: ``per_class`` with multi-label data (names the setting), or the errors of the splitters.
    """
    if not multi_label:
        return split_labeled(items, fraction=fraction, per_class=per_class, seed=seed)
    if per_class is not None:
        raise ValueError(
            "`labeled_per_class` (few_shot.json's shots_per_class) counts images per class and needs single-label "
            "data; with multi-label data use --labeled_fraction."
        )
    if fraction is None:
        raise ValueError("`labeled_fraction` must be a number in (0, 1] for multi-label data, got None.")
    labeled, rest = seeded_share(items, fraction, seed, "labeled_fraction")
    return list(labeled), list(rest)


def evaluation_datalist(
    source: str | os.PathLike,
    split: str,
    class_names: Sequence[str] | None,
    labels_csv: str | os.PathLike | None = None,
    image_dir: str | os.PathLike | None = None,
    multi_label: bool = False,
    skip_unreadable: bool = False,
) -> tuple[list[dict], list[str]]:
    """The items ``evaluate.json`` reports on: a split of the class folders, or a label CSV's images.

    Args:
        source: the dataset (folders, or a MedMNIST ``.npz``), as in :func:`classification_datalist`.
        split: the split of ``source`` without ``labels_csv``.
        class_names: the model's classes, in its order.
        labels_csv: the evaluated images' label CSV (``id,label`` or one 0/1 column per class); ``None``
            reads ``split`` of ``source``.
        image_dir: the folder of the CSV's images; default ``source``.
        multi_label: the model's task (a CSV is read as multi-label exactly when the model is).
        skip_unreadable: skip unreadable images (folders) or CSV rows without an image, counted.

    Returns:
        ``(items, class_names)``.
    """
    if labels_csv is None:
        return classification_datalist(source, split=split, class_names=class_names, skip_unreadable=skip_unreadable)
    folder = source if image_dir is None else image_dir
    return label_csv_datalist(labels_csv, folder, class_names=class_names, multi_label=bool(multi_label),
                              skip_missing=skip_unreadable)
