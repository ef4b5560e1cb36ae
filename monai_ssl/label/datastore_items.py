"""Datalists of a MONAI Label datastore for a bundle's training: labeled and unlabeled items, the validation share."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_ssl.data.image_folder import validate_image_file
from monai_ssl.data.labeled_pool import seeded_share

__all__ = ["class_index", "datastore_items", "validation_share"]

logger = logging.getLogger(__name__)

FINAL = "final"


def datastore_items(datastore: Any, check_images: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(labeled, unlabeled)`` datalists of a MONAI Label datastore, with ids, sorted by id.

    Labeled items are the images with a final label (``{"id", "image", "label", "label_info"}``:
    the label file and what was saved with it); unlabeled ones are the other images (``{"id", "image"}``).

    Args:
        datastore: MONAI Label's datastore.
        check_images: check that each image (and label) file opens as an image
            (:func:`~monai_ssl.data.validate_image_file`, without decoding the pixels); items that fail
            are left out, each named with its problem in a warning, so one broken file does not stop a training.
    """
    labeled = []
    for image_id in sorted(datastore.get_labeled_images()):
        label_id = datastore.get_label_by_image_id(image_id, FINAL)
        labeled.append({
            "id": image_id,
            "image": datastore.get_image_uri(image_id),
            "label": datastore.get_label_uri(label_id, FINAL),
            "label_info": dict(datastore.get_label_info(label_id, FINAL) or {}),
        })
    unlabeled = [{"id": i, "image": datastore.get_image_uri(i)} for i in sorted(datastore.get_unlabeled_images())]
    if not check_images:
        return labeled, unlabeled
    kept: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for items, ok in zip((labeled, unlabeled), kept):
        for item in items:
            problem = next(filter(None, (validate_image_file(item[k]) for k in ("image", "label") if k in item)), None)
            if problem:
                logger.warning("left out of the training: %s or its label: %s", item["image"], problem)
            else:
                ok.append(item)
    return kept


def validation_share(
    labeled: Sequence[Mapping[str, Any]], val_split: float, seed: int = 0, who: str = "training"
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """``(train, validation)``: a seeded ``val_split`` of the labeled items (at least one) held out.

    The choice is the bundles' labeled-subset choice (:func:`~monai_ssl.data.seeded_share`): the same
    whatever the order of the items, nested across shares. At least one item is left to train on.

    Raises:
        ValueError: fewer than two items, or ``val_split`` outside (0, 1).
    """
    if len(labeled) < 2:
        raise ValueError(
            f"{who} needs at least 2 labeled images (one to train on, one to validate), "
            f"the datastore has {len(labeled)}: label more images first."
        )
    if not 0 < float(val_split) < 1:
        raise ValueError(f"val_split must be in (0, 1), got {val_split!r}.")
    validation, train = seeded_share(labeled, float(val_split), seed=seed, who="validation share")
    if not train:  # two labeled images and a large share: keep one to train on
        train, validation = list(validation[:1]), list(validation[1:])
    return list(train), list(validation)


def class_index(item: Mapping[str, Any], class_names: Sequence[str]) -> int:
    """The class index of a classification label saved through MONAI Label.

    The class is read from what was saved with the label (``params={"class": "CNV"}`` on
    ``PUT /datastore/label``), or else from the label file: JSON ``{"class": "CNV"}`` or the bare class
    name. A class is a name of ``class_names`` (case-insensitive) or its index.

    Raises:
        ValueError: no class, or one that is not among ``class_names`` (the message names the image).
    """
    value = (item.get("label_info") or {}).get("class")
    if value is None and item.get("label"):
        text = Path(item["label"]).read_text(errors="replace").strip()
        try:
            parsed = json.loads(text)
            value = parsed.get("class") if isinstance(parsed, dict) else parsed
        except json.JSONDecodeError:
            value = text
    names = [n.lower() for n in class_names]
    if isinstance(value, str) and value.strip().lower() in names:
        return names.index(value.strip().lower())
    if isinstance(value, (int, str)) and str(value).strip().isdigit() and int(value) < len(class_names):
        return int(value)
    raise ValueError(
        f"image {item.get('id')!r}: its label gives no known class ({value!r}); expected one of {list(class_names)} "
        "(save it with params {\"class\": <name>} or a label file holding the name)."
    )
