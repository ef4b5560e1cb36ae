"""Datalists of a MONAI Label datastore for a bundle's training: labeled and unlabeled items, the validation share."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_ssl.data.labeled_pool import seeded_share
from monai_ssl.label.image_checks import DecodeCache, decode_problem, label_problem, size_problem

__all__ = ["class_in_text", "class_index", "datastore_items", "match_class", "usable_items", "validation_share"]

logger = logging.getLogger(__name__)

FINAL = "final"


def datastore_items(datastore: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(labeled, unlabeled)`` datalists of a MONAI Label datastore, with ids, sorted by id.

    Labeled items are the images with a final label (``{"id", "image", "label", "label_info"}``:
    the label file and what was saved with it); unlabeled ones are the other images (``{"id", "image"}``).
    :func:`usable_items` then leaves out what a training cannot use.
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
    return labeled, unlabeled


def usable_items(
    labeled: Sequence[Mapping[str, Any]],
    unlabeled: Sequence[Mapping[str, Any]],
    labels: str = "mask",
    max_megapixels: float = 100.0,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """The items a training can use, and why each other one is left out.

    An image is used when its header gives at most ``max_megapixels`` and the whole file decodes (a
    truncated JPEG does not); a mask label when it is a readable image of its image's spatial size.
    Decoding results are kept in ``<cache_dir>/decode_checks.json`` by file size and time, so each file
    is decoded once.

    Args:
        labeled: ``{"id", "image", "label", ...}`` items.
        unlabeled: ``{"id", "image"}`` items.
        labels: ``"mask"`` checks the label files; ``"class"`` leaves them to :func:`class_index`.
        max_megapixels: the size limit.
        cache_dir: where the decode cache lives (no cache when ``None``).

    Returns:
        ``(labeled, unlabeled, left_out)``: the usable items, and image file name -> problem.
    """
    cache = DecodeCache(Path(cache_dir) / "decode_checks.json") if cache_dir else None
    check = cache.problem if cache else decode_problem
    left_out: dict[str, str] = {}
    kept: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for items, ok in zip((labeled, unlabeled), kept):
        for item in items:
            image = str(item["image"])
            try:
                problem = size_problem(image, max_megapixels) or check(image)
            except Exception as err:  # noqa: BLE001 - no readable header
                problem = f"not a readable image ({type(err).__name__}: {err})"
            if not problem and labels == "mask" and item.get("label"):
                problem = label_problem(image, item["label"])
            if problem:
                left_out[Path(image).name] = problem
                logger.warning("left out of the training: %s or its label: %s", image, problem)
            else:
                ok.append(dict(item))
    if cache:
        cache.save()
    return kept[0], kept[1], left_out


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


def class_in_text(text: str) -> Any:
    """The class a label file's text names: JSON ``{"class": "CNV"}``, a JSON value, or the bare name."""
    text = text.strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text
    return parsed.get("class") if isinstance(parsed, dict) else parsed


def match_class(value: Any, class_names: Sequence[str], allow_index: bool = True) -> int | None:
    """The index of the class ``value`` names: a name of ``class_names`` (case-insensitive) or, with
    ``allow_index``, an index (an integer or its digits); ``None`` when it names none."""
    names = [n.lower() for n in class_names]
    if isinstance(value, str) and value.strip().lower() in names:
        return names.index(value.strip().lower())
    if allow_index and not isinstance(value, bool) and isinstance(value, (int, str)) and str(value).strip().isdigit():
        return int(value) if int(value) < len(class_names) else None
    return None


def class_index(item: Mapping[str, Any], class_names: Sequence[str]) -> int:
    """The class index of a classification label saved through MONAI Label.

    The class is read from what was saved with the label (``params={"class": "CNV"}`` on
    ``PUT /datastore/label``), or else from the label file (:func:`class_in_text`). A class is a name of
    ``class_names`` (case-insensitive) or its index (:func:`match_class`).

    Raises:
        ValueError: no class, or one that is not among ``class_names`` (the message names the image).
    """
    value = (item.get("label_info") or {}).get("class")
    if value is None and item.get("label"):
        value = class_in_text(Path(item["label"]).read_text(errors="replace"))
    index = match_class(value, class_names)
    if index is not None:
        return index
    raise ValueError(
        f"image {item.get('id')!r}: its label gives no known class ({value!r}); expected one of {list(class_names)} "
        "(save it with params {\"class\": <name>} or a label file holding the name)."
    )
