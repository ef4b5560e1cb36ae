"""One entry point for 2D classification data: an image-folder dataset or a MedMNIST ``.npz``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from .folders import _missing_folder_hint
from .image_folder import IMAGE_SUFFIXES, image_folder_datalist, validate_image_file
from .medmnist import medmnist_class_count, medmnist_datalist

__all__ = ["classification_datalist", "image_datalist"]

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
