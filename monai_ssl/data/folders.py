"""A folder of volume files (``.npy``, NIfTI, DICOM) as a datalist for inference."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .mrnet import validate_volume_file

__all__ = ["VOLUME_SUFFIXES", "volume_datalist"]

logger = logging.getLogger("monai_ssl")

VOLUME_SUFFIXES: tuple[str, ...] = (".npy", ".nii", ".nii.gz", ".dcm")


def _missing_folder_hint(setting: str | None) -> str:
    """``"; pass the folder to read with --<setting> <folder>"``, or ``""`` when ``setting`` is None."""
    return f"; pass the folder to read with --{setting} <folder>" if setting else ""


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def volume_datalist(folder: str | os.PathLike, skip_unreadable: bool = False, setting: str | None = None) -> list[dict]:
    """``[{"image": path, "id": stem}, ...]`` for every volume file in ``folder``, sorted by name.

    ``.npy`` files are checked without reading their voxels (see
    :func:`~monai_ssl.data.validate_volume_file`); other formats are checked when loaded.

    Args:
        folder: a folder of ``.npy`` (MRNet layout ``(slices, H, W)``), ``.nii``/``.nii.gz`` or
            ``.dcm`` files.
        skip_unreadable: drop unreadable ``.npy`` files with one warning giving their count,
            instead of raising.
        setting: the bundle setting that gave ``folder`` (e.g. ``"input_dir"``); a missing folder's
            error then says to pass ``--<setting>``.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        ValueError: it holds no volume file, or an unreadable one (unless skipped).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"input folder not found: {root} (expected a folder of {', '.join(VOLUME_SUFFIXES)} files)"
            + _missing_folder_hint(setting)
        )
    files = sorted(
        p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(VOLUME_SUFFIXES)
    )
    if not files:
        raise ValueError(f"{root} holds no volume file (expected {', '.join(VOLUME_SUFFIXES)})")
    items, skipped = [], []
    for path in files:
        problem = validate_volume_file(path) if path.suffix == ".npy" else None
        if problem is not None:
            if not skip_unreadable:
                raise ValueError(f"{path}: {problem}")
            skipped.append(path.name)
            continue
        items.append({"image": str(path.resolve()), "id": _stem(path)})
    if skipped:
        logger.warning(f"skipped {len(skipped)} of {len(files)} unreadable volumes in {root}: {', '.join(skipped[:5])}")
    if not items:
        raise ValueError(f"every volume in {root} is unreadable")
    return items
