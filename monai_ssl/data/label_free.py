"""The training datalist of a label-free method (PiCIE): every training image, no mask, numbered for its labels."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .isic import ISIC_IMAGE_GLOB, unlabeled_image_datalist
from .splits import reserved_ids

__all__ = ["indexed_images", "label_free_datalist"]

logger = logging.getLogger("monai_ssl")


def indexed_images(items: Sequence[Mapping[str, Any]], image_key: str = "image") -> list[dict]:
    """``[{"id", "image", "index"}]``: the items' images only (a mask or label is dropped, never read), numbered 0..N-1.

    The ``index`` lets a method keep per-image state between passes over shuffled data (PiCIE's cluster
    labels of each image).

    Raises:
        KeyError: an item has no ``image_key`` (its position is named).
    """
    result = []
    for index, item in enumerate(items):
        if image_key not in item:
            raise KeyError(f"indexed_images: item {index} has no {image_key!r} (keys: {sorted(item)}).")
        entry = {"image": item[image_key], "index": index}
        if "id" in item:
            entry["id"] = item["id"]
        result.append(entry)
    return result


def label_free_datalist(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    unlabeled_dir: str | os.PathLike | None = None,
    image_glob: str = ISIC_IMAGE_GLOB,
    min_size: int | None = None,
) -> list[dict]:
    """The images a label-free method trains on: the training split's (masks dropped) plus those of
    ``unlabeled_dir``, never a validation or test id, each once, numbered by :func:`indexed_images`.

    Args:
        splits: :func:`~monai_ssl.data.segmentation_splits`' lists (``"train"``, ``"val"``, ``"test"``).
        unlabeled_dir: a folder of extra images (``None``: none), read with
            :func:`~monai_ssl.data.unlabeled_image_datalist` (the setting is named in its errors).
        image_glob: the extra images' file pattern.
        min_size: the smallest allowed shorter side of an extra image.

    Raises:
        ValueError: no training image is left.
    """
    excluded = set(reserved_ids(splits))
    items: dict[str, Mapping[str, Any]] = {}
    for item in splits.get("train", ()):
        key = str(item.get("id", item["image"]))
        if key not in excluded:
            items.setdefault(key, item)
    dropped = []
    if unlabeled_dir:
        for item in unlabeled_image_datalist(unlabeled_dir, image_glob=image_glob, min_size=min_size,
                                             setting="unlabeled_dir"):
            key = str(item.get("id", item["image"]))
            if key in excluded or key in items:
                dropped.append(key)
            else:
                items[key] = item
    if dropped:
        logger.warning("dropped %d image(s) of unlabeled_dir whose id is a training, validation or test image: %s",
                       len(dropped), ", ".join(sorted(dropped)[:5]) + (" ..." if len(dropped) > 5 else ""))
    if not items:
        raise ValueError("label_free_datalist: no training image (the training split is empty and unlabeled_dir "
                         "gave none).")
    return indexed_images([items[key] for key in sorted(items)])
