"""The ISIC 2017 disease classification task (Codella et al. 2018, Part 3) as MONAI datalists.

The challenge ships, per split, the images and a ground-truth CSV of two 0/1 columns; nevus is the
class of a row with both zero (S4MI, Singh et al., classify these three classes)::

    <root>/ISIC-2017_Training_Data/ISIC_0000000.jpg      (+ ISIC_0000000_superpixels.png, ignored)
    <root>/ISIC-2017_Training_Part3_GroundTruth.csv      image_id,melanoma,seborrheic_keratosis
    <root>/ISIC-2017_Training_Part1_GroundTruth/ISIC_0000000_segmentation.png   (optional: lesion masks)
    <root>/ISIC-2017_Validation_Data/ + ISIC-2017_Validation_Part3_GroundTruth.csv (+ Part1 masks)
    <root>/ISIC-2017_Test_v2_Data/ + ISIC-2017_Test_v2_Part3_GroundTruth.csv (+ Part1 masks)
        (or ISIC-2017_Test_Data/ + ISIC-2017_Test_Part3_GroundTruth.csv)

The folder names are those of :data:`monai_ssl.data.isic.ISIC_FOLDERS`; the CSV of a split is its
images folder's name with ``_Data`` replaced by ``_Part3_GroundTruth.csv``, looked up in ``root``
and then in the images folder. The CSV cells hold ``0.0``/``1.0`` in the released files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .isic import _SUPERPIXELS, ISIC_FOLDERS, ISIC_MASK_NAME, ISIC_SPLITS
from .label_csv import binary_cell, index_images, match_images, read_label_csv
from .mrnet import _first
from .splits import Splits

__all__ = ["ISIC_CLASSES", "ISIC_CSV_COLUMNS", "isic2017_classification_datalists", "isic_part3_csv_name"]

logger = logging.getLogger("monai_ssl")

ISIC_CLASSES: tuple[str, ...] = ("melanoma", "seborrheic_keratosis", "nevus")
ISIC_CSV_COLUMNS: tuple[str, ...] = ("image_id", "melanoma", "seborrheic_keratosis")


def isic_part3_csv_name(data_folder: str) -> str:
    """The Part 3 ground-truth CSV name of an images folder: ``ISIC-2017_Training_Data`` ->
    ``ISIC-2017_Training_Part3_GroundTruth.csv``."""
    return data_folder[: -len("_Data")] + "_Part3_GroundTruth.csv"


def _split_folders(root: Path, split: str) -> tuple[Path, Path, Path]:
    """(images folder, Part 3 CSV, Part 1 masks folder) of ``split``; a missing folder or CSV names what was expected."""
    for data_name, mask_name in ISIC_FOLDERS[split]:
        images = root / data_name
        if images.is_dir():
            csv_name = isic_part3_csv_name(data_name)
            for csv_path in (root / csv_name, images / csv_name):
                if csv_path.is_file():
                    return images, csv_path, root / mask_name
            raise FileNotFoundError(
                f"ISIC 2017 Part 3 ground truth of split {split!r} not found: expected {root / csv_name} "
                f"(or {images / csv_name}) next to {images}"
            )
    expected = " or ".join(str(root / d) for d, _ in ISIC_FOLDERS[split])
    raise FileNotFoundError(
        f"ISIC 2017 images of split {split!r} not found: expected {expected}; the classification reader needs the "
        "challenge's Training, Validation and Test_v2 Data folders and their Part3_GroundTruth CSVs"
    )


def _read_split(root: Path, split: str, skip_missing: bool) -> list[dict[str, Any]]:
    """The items of one split, in CSV order."""
    images_dir, csv_path, masks_dir = _split_folders(root, split)
    columns, rows = read_label_csv(csv_path, id_column=ISIC_CSV_COLUMNS[0])
    if columns != list(ISIC_CSV_COLUMNS[1:]):
        raise ValueError(
            f"ISIC 2017 Part 3 CSV {csv_path}: the columns are {['image_id', *columns]}; "
            f"expected {list(ISIC_CSV_COLUMNS)} (nevus is a row with both 0)"
        )
    folder, index = index_images(images_dir, (".jpg", ".jpeg", ".png"), exclude=_SUPERPIXELS)
    found = match_images(csv_path, rows, folder, index, skip_missing)
    items: list[dict[str, Any]] = []
    no_mask: list[str] = []
    for row in rows:
        if row.id not in found:
            continue
        melanoma, keratosis = (binary_cell(csv_path, row, c) for c in ISIC_CSV_COLUMNS[1:])
        if melanoma and keratosis:
            raise ValueError(
                f"ISIC 2017 Part 3 CSV {csv_path}, row {row.line} (image_id {row.id!r}): both melanoma and "
                "seborrheic_keratosis are 1; the three classes are exclusive (nevus is both 0)"
            )
        label = 0 if melanoma else 1 if keratosis else 2
        item: dict[str, Any] = {"image": str(found[row.id]), "label": label, "id": row.id}
        mask = masks_dir / ISIC_MASK_NAME.format(stem=found[row.id].stem)
        if mask.is_file():
            item["mask"] = str(mask)
        elif masks_dir.is_dir():
            no_mask.append(row.id)
        items.append(item)
    if no_mask:
        logger.warning("%d of %d image(s) of split %r have no lesion mask in %s: %s", len(no_mask), len(items),
                       split, masks_dir, _first(no_mask))
    counts = ", ".join(f"{name}: {sum(i['label'] == c for i in items)}" for c, name in enumerate(ISIC_CLASSES))
    logger.info("ISIC 2017 %s: %d images (%s) from %s, %d with masks", split, len(items), counts, images_dir,
                sum("mask" in i for i in items))
    return items


def isic2017_classification_datalists(root: str | os.PathLike, skip_missing: bool = False) -> dict[str, Any]:
    """The train, validation and test items of the ISIC 2017 three-class task, with lesion masks where present.

    Args:
        root: the folder holding the challenge's folders and CSVs (see the module docstring).
        skip_missing: skip CSV rows whose image is missing, with one warning per split giving
            their count, instead of raising.

    Returns:
        ``{"train": items, "val": items, "test": items, "class_names": ["melanoma",
        "seborrheic_keratosis", "nevus"]}``; items ``{"image": absolute path, "label": class index
        (int), "id": image_id}`` in CSV order, plus ``"mask"`` (the Part 1 segmentation PNG) when
        that file exists. Images in a Data folder that its CSV does not list are left out with one
        warning giving their count; superpixel files are never images.

    Raises:
        FileNotFoundError: ``root``, a split's images folder or its Part 3 CSV is missing (the
            expected paths are named).
        ValueError: CSV columns other than ``image_id,melanoma,seborrheic_keratosis``; a row with
            both classes set, an empty or non-0/1 cell (file, row and id named); listed images
            missing without ``skip_missing`` (count and ids named).
        SplitOverlapError: an image id in two splits.
    """
    base = Path(os.path.abspath(root))
    if not base.is_dir():
        kind = "is not a folder" if base.exists() else "not found"
        raise FileNotFoundError(f"ISIC 2017 dataset folder {kind}: {base}")
    splits = {split: _read_split(base, split, bool(skip_missing)) for split in ISIC_SPLITS}
    Splits.from_datalists(
        splits["train"], splits["val"], splits["test"],
        sources={"train": "ISIC 2017 Training", "validation": "ISIC 2017 Validation", "test": "ISIC 2017 Test"},
    )
    return {**splits, "class_names": list(ISIC_CLASSES)}
