"""A folder of 2D images sorted into one sub-folder per class (OCT2017 and alike) as a datalist.

The on-disk layout this module reads (OCT2017 / Kermany et al. 2018 shown)::

    <root>/{train,test}/{CNV,DME,DRUSEN,NORMAL}/*.jpeg

The class of an image is the name of its folder. Any dataset of this shape with JPEG, PNG or
DICOM files works the same way; ``split=None`` reads ``<root>/<class>/*`` directly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .mrnet import _first

__all__ = ["IMAGE_SUFFIXES", "image_folder_datalist", "validate_image_file"]

logger = logging.getLogger("monai_ssl")

IMAGE_SUFFIXES: tuple[str, ...] = (".jpeg", ".jpg", ".png", ".dcm")
_DICOM_SUFFIXES = (".dcm", ".dicom")


def validate_image_file(path: str | os.PathLike) -> str | None:
    """Check that ``path`` is a non-empty, readable image without decoding its pixels.

    DICOM files (``.dcm``/``.dicom``) are parsed up to the pixel data with pydicom and must give
    the image size (``Rows``/``Columns``); anything else goes through PIL's ``Image.verify()``.
    Damage inside the compressed pixel data (e.g. a truncated JPEG) is only found when the
    image is loaded.

    Args:
        path: the image file.

    Returns:
        ``None`` when the file is fine, otherwise a short description of the problem.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        if path.suffix.lower() in _DICOM_SUFFIXES:
            import pydicom

            dataset = pydicom.dcmread(path, stop_before_pixels=True)
            if "Rows" not in dataset or "Columns" not in dataset:
                return "DICOM file without Rows/Columns (not an image)"
        else:
            from PIL import Image

            with Image.open(path) as image:
                image.verify()
    except Exception as err:  # noqa: BLE001 - PIL and pydicom raise many types for a bad file
        return f"not a readable image ({type(err).__name__}: {err})"
    return None


def _layout(split: str | None) -> str:
    """The expected layout, for error messages."""
    return "<root>/<class>/<image>" if split is None else f"<root>/{split}/<class>/<image>"


def _split_folder(root: Path, split: str | None) -> Path:
    """Validate ``root`` and return the folder that holds the class folders."""
    if not root.is_dir():
        kind = "is not a folder" if root.exists() else "not found"
        raise FileNotFoundError(f"image folder root {kind}: {root}; expected the layout {_layout(split)}")
    if split is None:
        return root
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        nested = [name for name in found if (root / name / split).is_dir()]
        hint = f"; did you mean root={root / nested[0]}?" if nested else ""
        raise FileNotFoundError(
            f"split folder not found: {folder}; expected the layout {_layout(split)} "
            f"(sub-folders of {root}: {_first(found) or 'none'}){hint}"
        )
    return folder


def _class_folders(folder: Path, split: str | None, class_names: Sequence[str] | None) -> list[str]:
    """The class names in label order: sorted folder names, or ``class_names`` checked against the folders."""
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise ValueError(f"{folder} holds no class folders; expected the layout {_layout(split)}")
    if class_names is None:
        return found
    names = [class_names] if isinstance(class_names, str) else [str(n) for n in class_names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct folder names, got {class_names!r}")
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(
            f"class folder(s) {', '.join(missing)} not found in {folder} (class_names={names}); "
            f"class folders there: {', '.join(found)}"
        )
    extra = [n for n in found if n not in names]
    if extra:
        logger.warning("ignoring folder(s) in %s that are not in class_names: %s", folder, _first(extra))
    return names


def _image_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Visible files in ``folder`` (not recursive) whose name ends with one of ``suffixes``, sorted."""
    return sorted(
        p for p in folder.iterdir() if not p.name.startswith(".") and p.name.lower().endswith(suffixes) and p.is_file()
    )


def image_folder_datalist(
    root: str | os.PathLike,
    split: str | None = "train",
    class_names: Sequence[str] | None = None,
    extensions: Sequence[str] = IMAGE_SUFFIXES,
    check_files: bool = True,
    skip_unreadable: bool = False,
) -> tuple[list[dict], list[str]]:
    """List the images of one split of a class-per-folder dataset, with their class index.

    Args:
        root: the dataset folder (holding ``train/``, ``test/``, ...).
        split: the sub-folder of ``root`` holding the class folders; ``None``: ``root`` itself.
        class_names: the classes, in label order; default: every class folder, sorted by name.
            Pass the training split's names when listing another split, so that indices agree;
            a named class without a folder is an error, other folders are ignored with a warning.
        extensions: file name endings to take (case-insensitive); other files are ignored, as
            are hidden files and sub-folders of the class folders.
        check_files: check every file with :func:`validate_image_file` (fast: no pixel decoding;
            about a minute for the 84k OCT2017 training images).
        skip_unreadable: with ``check_files``, drop unreadable files and log one warning with
            their count instead of raising.

    Returns:
        ``(items, class_names)``: items ``{"image": absolute path, "label": class index, "id":
        "<class>/<file name>"}`` sorted by id, where the label is a 0-d int64 numpy array so that a
        batch collates to an int64 ``(B,)`` tensor, the target of ``CrossEntropyLoss``.

    Raises:
        FileNotFoundError: ``root`` or the split folder is missing.
        ValueError: no class folders; a class named in ``class_names`` without a folder; a class
            folder without images (or with only unreadable ones); an unreadable file (unless
            skipped); bad ``extensions``.
    """
    endings = [extensions] if isinstance(extensions, str) else list(extensions)
    if not endings or not all(isinstance(e, str) and e.strip(".") for e in endings):
        raise ValueError(f"extensions must be file name endings such as '.jpeg', got {extensions!r}")
    suffixes = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in endings)
    root = Path(os.path.abspath(root))
    folder = _split_folder(root, split)
    names = _class_folders(folder, split, class_names)

    files: dict[str, list[Path]] = {}
    for name in names:
        files[name] = _image_files(folder / name, suffixes)
        if not files[name]:
            raise ValueError(f"class folder {folder / name} is empty: no {', '.join(suffixes)} files")

    if check_files:
        bad = [(p, problem) for name in names for p in files[name] if (problem := validate_image_file(p)) is not None]
        if bad and not skip_unreadable:
            more = f" ({len(bad) - 1} more unreadable: {_first([p.name for p, _ in bad[1:]])})" if len(bad) > 1 else ""
            raise ValueError(f"unreadable image {bad[0][0]}: {bad[0][1]}{more}")
        if bad:
            total = sum(len(v) for v in files.values())
            shown = _first([f"{p.parent.name}/{p.name} ({problem})" for p, problem in bad])
            logger.warning("skipped %d of %d unreadable images in %s: %s", len(bad), total, folder, shown)
            dropped = {p for p, _ in bad}
            for name in names:
                files[name] = [p for p in files[name] if p not in dropped]
                if not files[name]:
                    raise ValueError(f"every image in class folder {folder / name} is unreadable")

    items = [
        {"image": str(path), "label": np.array(index, dtype=np.int64), "id": f"{name}/{path.name}"}
        for index, name in enumerate(names)
        for path in files[name]
    ]
    items.sort(key=lambda item: item["id"])
    return items, names
