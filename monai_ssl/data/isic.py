"""Skin-lesion segmentation datasets (ISIC 2017 and alike) as MONAI datalists.

The ISIC 2017 challenge (Codella et al. 2018, task 1) ships one folder of images and one of masks
per split; 2000 / 150 / 600 images for ``train`` / ``val`` / ``test``::

    <dataset_dir>/ISIC-2017_Training_Data/ISIC_0000000.jpg                   (RGB)
    <dataset_dir>/ISIC-2017_Training_Part1_GroundTruth/ISIC_0000000_segmentation.png  (0/255)
    <dataset_dir>/ISIC-2017_Validation_Data/ + ISIC-2017_Validation_Part1_GroundTruth/
    <dataset_dir>/ISIC-2017_Test_v2_Data/ + ISIC-2017_Test_v2_Part1_GroundTruth/
        (or ISIC-2017_Test_Data/ + ISIC-2017_Test_Part1_GroundTruth/)

The Data folders also hold ``ISIC_NNNNNNN_superpixels.png`` files (and sometimes a metadata CSV);
they are never taken as images. Any other dataset of image/mask pairs works the same way, in one
of these generic layouts (the mask name comes from the image stem through ``mask_name``):

* ``<dataset_dir>/<split>/images/*`` + ``<dataset_dir>/<split>/masks/*``;
* ``images/`` + ``masks/`` directly in ``<dataset_dir>`` (``split=None``);
* images and masks side by side in one folder (``<dataset_dir>/<split>`` or ``<dataset_dir>``).

The labeled subset and the unlabeled pool of semi-supervised training are made from these lists by
:mod:`monai_ssl.data.labeled_pool`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .folders import _missing_folder_hint
from .mrnet import _first

__all__ = [
    "ISIC_FOLDERS",
    "ISIC_IMAGE_GLOB",
    "ISIC_MASK_NAME",
    "ISIC_SPLITS",
    "segmentation_datalist",
    "unlabeled_image_datalist",
]

logger = logging.getLogger("monai_ssl")

ISIC_SPLITS: tuple[str, ...] = ("train", "val", "test")
ISIC_IMAGE_GLOB = "ISIC_*.jpg"
ISIC_MASK_NAME = "{stem}_segmentation.png"

# (images folder, masks folder) per split, the first existing images folder wins.
ISIC_FOLDERS: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),),
    "val": (("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),),
    "test": (
        ("ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth"),
        ("ISIC-2017_Test_Data", "ISIC-2017_Test_Part1_GroundTruth"),
    ),
}
_SUPERPIXELS = re.compile(r".*_superpixels\.[^.]+", re.IGNORECASE)
_LAYOUTS = (
    "accepted layouts: the ISIC 2017 challenge folders <dataset_dir>/ISIC-2017_{Training,Validation,Test_v2}_Data "
    "+ ISIC-2017_{...}_Part1_GroundTruth (split 'train', 'val' or 'test'); <dataset_dir>/<split>/images + "
    "<dataset_dir>/<split>/masks; images/ + masks/ directly in <dataset_dir> (split=None; on the command line --split '$None'); or images and masks "
    "side by side in <dataset_dir>/<split> or <dataset_dir>"
)


@dataclass(frozen=True)
class _Folders:
    """Where one split's images and masks are."""

    images: Path
    masks: Path | None  # None: masks are not looked up (unlabeled images)
    layout: str  # for log messages

    @property
    def side_by_side(self) -> bool:
        """Images and masks share one folder, so mask-named files must not count as images."""
        return self.masks == self.images


def _mask_pattern(mask_name: str) -> re.Pattern[str]:
    """The regular expression of mask file names, with the image stem as group ``stem``."""
    if not isinstance(mask_name, str) or mask_name.count("{stem}") != 1 or "/" in mask_name or "\\" in mask_name:
        raise ValueError(
            f"mask_name must be a file name holding '{{stem}}' once, such as '{ISIC_MASK_NAME}', got {mask_name!r}"
        )
    prefix, suffix = mask_name.split("{stem}")
    if "{" in prefix + suffix or "}" in prefix + suffix:
        raise ValueError(f"mask_name may hold no placeholder other than '{{stem}}', got {mask_name!r}")
    return re.compile(re.escape(prefix) + r"(?P<stem>.+)" + re.escape(suffix))


def _check_glob(image_glob: str) -> str:
    """Validate the image name pattern."""
    if not isinstance(image_glob, str) or not image_glob.strip() or "/" in image_glob:
        raise ValueError(f"image_glob must be a file name pattern such as '{ISIC_IMAGE_GLOB}', got {image_glob!r}")
    return image_glob


def _isic_folders(root: Path, split: str, require_masks: bool) -> _Folders | None:
    """The ISIC 2017 challenge folders of ``split`` under ``root``, or ``None`` when absent."""
    for data_name, truth_name in ISIC_FOLDERS.get(split, ()):
        if (root / data_name).is_dir():
            truth = root / truth_name
            if require_masks and not truth.is_dir():
                raise FileNotFoundError(
                    f"ISIC 2017 ground-truth folder not found: {truth}; expected it next to {root / data_name} "
                    "(pass require_masks=False to list the images without masks)"
                )
            return _Folders(root / data_name, truth if require_masks else None, "ISIC 2017 challenge")
    return None


def _resolve_folders(dataset_dir: str | os.PathLike, split: str | None, require_masks: bool) -> _Folders:
    """Find the images and masks folders of ``split`` in one of the accepted layouts."""
    root = Path(os.path.abspath(dataset_dir))
    if not root.is_dir():
        kind = "is not a folder" if root.exists() else "not found"
        raise FileNotFoundError(f"segmentation dataset folder {kind}: {root}; {_LAYOUTS}")
    folder = root
    if split is not None:
        if not isinstance(split, str) or not split or "/" in split:
            raise ValueError(f"split must be a folder name such as 'train', or None, got {split!r}")
        isic = _isic_folders(root, split, require_masks)
        if isic is not None:
            return isic
        folder = root / split
        if not folder.is_dir():
            found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise FileNotFoundError(
                f"split {split!r} not found in {root}: no folder {folder}"
                + (f" and no {' or '.join(d for d, _ in ISIC_FOLDERS[split])}" if split in ISIC_FOLDERS else "")
                + f" (sub-folders there: {_first(found) or 'none'}); {_LAYOUTS}"
            )
    if (folder / "images").is_dir():
        masks = folder / "masks"
        if require_masks and not masks.is_dir():
            raise FileNotFoundError(
                f"mask folder not found: {masks}; expected it next to {folder / 'images'} "
                "(pass require_masks=False to list the images without masks)"
            )
        return _Folders(folder / "images", masks if require_masks else None, "images/ + masks/")
    return _Folders(folder, folder if require_masks else None, "side by side")


def _list_images(folder: Path, image_glob: str, mask_pattern: re.Pattern[str] | None) -> dict[str, Path]:
    """Images in ``folder`` by stem: names matching ``image_glob`` (case-insensitive), not superpixels or masks."""
    glob = image_glob.lower()
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or not fnmatch.fnmatchcase(name.lower(), glob) or _SUPERPIXELS.fullmatch(name):
            continue
        if (mask_pattern is not None and mask_pattern.fullmatch(name)) or not path.is_file():
            continue
        if path.stem in images:
            raise ValueError(
                f"two images in {folder} share the id {path.stem!r}: {images[path.stem].name} and {name}; "
                "narrow image_glob (e.g. to one file extension)"
            )
        images[path.stem] = path
    return images


def _no_images_error(folder: Path, image_glob: str, root_hint: Path | None = None) -> ValueError:
    """The error for a folder without images matching the pattern."""
    hint = ""
    if root_hint is not None and any((root_hint / d).is_dir() for pairs in ISIC_FOLDERS.values() for d, _ in pairs):
        hint = "; this looks like the ISIC 2017 challenge layout: pass split='train', 'val' or 'test'"
    return ValueError(
        f"no images found in {folder}: no file matches image_glob={image_glob!r} (superpixels and mask files "
        f"excluded){hint}; {_LAYOUTS}"
    )


def _match_masks(
    images: dict[str, Path], folders: _Folders, mask_name: str, pattern: re.Pattern[str], image_glob: str
) -> dict[str, Path]:
    """The mask of every image; images without masks and masks without images are errors."""
    mask_folder = folders.masks
    assert mask_folder is not None
    masks = {stem: mask_folder / mask_name.format(stem=stem) for stem in images}
    missing = sorted(stem for stem, path in masks.items() if not path.is_file())
    present = [p for p in sorted(mask_folder.iterdir()) if not p.name.startswith(".") and p.is_file()]
    if missing:
        named = [p.name for p in present if pattern.fullmatch(p.name)]
        hint = ""
        if not named:
            image_files = set(images.values())
            others = [p.name for p in present if p not in image_files]
            hint = f"; no file there matches mask_name={mask_name!r} (files there: {_first(others) or 'none'})"
        raise ValueError(
            f"{len(missing)} of {len(images)} image(s) in {folders.images} have no mask in {mask_folder}: "
            f"{_first([images[s].name for s in missing])} (expected mask names: "
            f"{_first([masks[s].name for s in missing])}; mask_name={mask_name!r}){hint}"
        )
    orphans = [p.name for p in present if (m := pattern.fullmatch(p.name)) and m.group("stem") not in images]
    if orphans:
        raise ValueError(
            f"{len(orphans)} mask(s) in {mask_folder} have no image in {folders.images} matching image_glob: "
            f"{_first(orphans)} (expected for each mask named {mask_name!r} an image named '<stem>' plus an "
            f"extension, matching image_glob={image_glob!r})"
        )
    return masks


def _image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header (no pixel decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception as err:  # noqa: BLE001 - PIL raises many types for a bad file
        raise ValueError(f"not a readable image: {path} ({type(err).__name__}: {err})") from err


def _check_min_size(min_size: int | None) -> int | None:
    """Validate ``min_size`` (``None`` or an integer >= 1)."""
    if min_size is None:
        return None
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size must be None or an integer >= 1 (pixels), got {min_size!r}")
    return int(min_size)


def _check_sizes(
    images: dict[str, Path], masks: dict[str, Path] | None, min_size: int | None, folders: _Folders
) -> None:
    """Masks must have their image's size; no image may have a shorter side below ``min_size``."""
    mismatched: list[str] = []
    too_small: list[str] = []
    for stem in sorted(images):
        width, height = _image_size(images[stem])
        if min_size is not None and min(width, height) < min_size:
            too_small.append(f"{images[stem].name} ({width}x{height})")
        if masks is not None:
            mask_size = _image_size(masks[stem])
            if mask_size != (width, height):
                mismatched.append(f"{masks[stem].name} is {mask_size[0]}x{mask_size[1]} but {images[stem].name} is "
                                  f"{width}x{height}")
    if mismatched:
        raise ValueError(
            f"{len(mismatched)} mask(s) in {folders.masks} differ in size (width x height) from their image in "
            f"{folders.images}: "
            f"{_first(mismatched)}; every mask must have its image's size"
        )
    if too_small:
        raise ValueError(
            f"{len(too_small)} image(s) in {folders.images} have a shorter side below min_size={min_size} pixels: "
            f"{_first(too_small)}"
        )


def segmentation_datalist(
    dataset_dir: str | os.PathLike,
    split: str | None = None,
    image_glob: str = ISIC_IMAGE_GLOB,
    mask_name: str = ISIC_MASK_NAME,
    require_masks: bool = True,
    min_size: int | None = None,
    check_sizes: bool = True,
) -> list[dict]:
    """List the image/mask pairs of one split of a segmentation dataset (ISIC 2017 or a generic layout).

    Args:
        dataset_dir: the dataset folder; see the module docstring for the accepted layouts.
        split: ``"train"``, ``"val"`` or ``"test"`` for the ISIC 2017 challenge folders, or the
            name of a sub-folder of ``dataset_dir`` in a generic layout; ``None``: ``dataset_dir``
            itself holds ``images/`` + ``masks/`` or the image/mask pairs.
        image_glob: the image file name pattern (case-insensitive), e.g. ``"*.png"``. Files named
            ``*_superpixels.*`` are never images; with images and masks side by side, nor are files
            whose name matches ``mask_name``.
        mask_name: the mask's file name made from the image stem, e.g. ``"{stem}.png"``.
        require_masks: ``False`` lists the images alone (unlabeled or test images without masks);
            the masks folder is then neither needed nor read.
        min_size: when given, an image whose shorter side is below this many pixels is an error.
        check_sizes: read every image's (and mask's) size from its header, without decoding the
            pixels; a mask whose size differs from its image's is an error.

    Returns:
        Items ``{"id": image stem, "image": absolute path, "label": absolute mask path}`` sorted by
        id; without ``"label"`` when ``require_masks`` is ``False``.

    Raises:
        FileNotFoundError: ``dataset_dir``, the split folder or the masks folder is missing (the
            message names the path and the accepted layouts).
        ValueError: no images; images without a mask or masks without an image (up to five names,
            the count, the folder and the expected mask names); a mask of another size than its
            image; an image below ``min_size``; an unreadable header; bad arguments.
    """
    image_glob = _check_glob(image_glob)
    pattern = _mask_pattern(mask_name)
    min_size = _check_min_size(min_size)
    folders = _resolve_folders(dataset_dir, split, bool(require_masks))
    images = _list_images(folders.images, image_glob, pattern if folders.side_by_side else None)
    if not images:
        root_hint = Path(os.path.abspath(dataset_dir)) if split is None else None
        raise _no_images_error(folders.images, image_glob, root_hint)
    masks = _match_masks(images, folders, mask_name, pattern, image_glob) if folders.masks is not None else None
    if check_sizes or min_size is not None:
        _check_sizes(images, masks if check_sizes else None, min_size, folders)
    items: list[dict] = []
    for stem in sorted(images):
        item = {"id": stem, "image": str(images[stem])}
        if masks is not None:
            item["label"] = str(masks[stem])
        items.append(item)
    logger.info(
        "segmentation datalist: %d %s from %s (%s layout)",
        len(items), "image/mask pairs" if masks is not None else "images", folders.images, folders.layout,
    )
    return items


def unlabeled_image_datalist(
    folder: str | os.PathLike,
    image_glob: str = ISIC_IMAGE_GLOB,
    mask_name: str = ISIC_MASK_NAME,
    min_size: int | None = None,
    setting: str | None = None,
) -> list[dict]:
    """List a folder of extra unlabeled images (e.g. more ISIC archive images), skipping masks and superpixels.

    Args:
        folder: the folder holding the images (not searched recursively).
        image_glob: the image file name pattern (case-insensitive).
        mask_name: files named like masks (``mask_name`` with any stem) are skipped, as are
            ``*_superpixels.*`` files.
        min_size: when given, an image whose shorter side is below this many pixels is an error.
        setting: the bundle setting that gave ``folder`` (e.g. ``"input_dir"``); a missing folder's
            error then says to pass ``--<setting>``.

    Returns:
        Items ``{"id": image stem, "image": absolute path}`` sorted by id.

    Raises:
        FileNotFoundError: ``folder`` is missing.
        ValueError: no images; an image below ``min_size``; bad arguments.
    """
    image_glob = _check_glob(image_glob)
    pattern = _mask_pattern(mask_name)
    min_size = _check_min_size(min_size)
    root = Path(os.path.abspath(folder))
    if not root.is_dir():
        kind = "is not a folder" if root.exists() else "not found"
        raise FileNotFoundError(
            f"unlabeled image folder {kind}: {root}; expected a folder of {image_glob} images"
            + _missing_folder_hint(setting)
        )
    images = _list_images(root, image_glob, pattern)
    if not images:
        raise _no_images_error(root, image_glob)
    if min_size is not None:
        _check_sizes(images, None, min_size, _Folders(root, None, "flat"))
    logger.info("unlabeled image datalist: %d images from %s", len(images), root)
    return [{"id": stem, "image": str(images[stem])} for stem in sorted(images)]
