"""MedMNIST ``.npz`` archives (BreastMNIST, OCTMNIST, PathMNIST, ...) as in-memory datalists.

Each archive holds, for ``split`` in ``train``, ``val`` and ``test``::

    <split>_images   uint8 (N, H, W) or (N, H, W, 3)
    <split>_labels   integer (N, 1) or (N,)

Items carry the image array itself (no file per image); :class:`~monai_ssl.transforms.image2d.LoadImage2Dd`
turns it into a channel-first tensor. Multi-label archives (ChestMNIST, labels ``(N, 14)``) are
not supported.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["MEDMNIST_SPLITS", "medmnist_class_count", "medmnist_datalist"]

MEDMNIST_SPLITS: tuple[str, ...] = ("train", "val", "test")


def _read_arrays(npz_path: str | os.PathLike, keys: list[str]) -> dict[str, np.ndarray]:
    """Read ``keys`` from an ``.npz`` archive, with errors that name the file and the keys."""
    path = Path(npz_path)
    if not path.is_file():
        raise FileNotFoundError(f"MedMNIST archive not found: {path} (expected an .npz file such as breastmnist.npz)")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - zipfile and numpy raise many types for a bad file
        raise ValueError(f"{path} is not a readable .npz archive ({type(err).__name__}: {err})") from err
    if not hasattr(archive, "files"):  # a plain .npy array under an .npz name
        raise ValueError(f"{path} is not an .npz archive (it holds a single {type(archive).__name__})")
    with archive:
        present = sorted(archive.files)
        missing = [k for k in keys if k not in present]
        if missing:
            raise ValueError(
                f"{path} is not a MedMNIST archive: missing key(s) {', '.join(missing)}; "
                f"keys present: {', '.join(present) or 'none'}"
            )
        arrays = {}
        for key in keys:
            try:
                arrays[key] = archive[key]
            except Exception as err:  # noqa: BLE001 - truncated member, pickled object array, ...
                raise ValueError(f"{path}: cannot read {key} ({type(err).__name__}: {err})") from err
    return arrays


def _labels(labels: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Validate one label array and return it as int64 ``(N,)``."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{path}: {key} has shape {tuple(labels.shape)}; expected (N,) or (N, 1) class indices "
            "(multi-label archives such as ChestMNIST are not supported)"
        )
    if not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"{path}: {key} has dtype {labels.dtype}; expected integer class indices")
    as_int = labels.astype(np.int64)
    if labels.size and (np.any(as_int != labels) or as_int.min() < 0):
        raise ValueError(f"{path}: {key} holds values that are not class indices 0, 1, 2, ...")
    return as_int


def medmnist_datalist(npz_path: str | os.PathLike, split: str = "train") -> list[dict]:
    """List one split of a MedMNIST archive.

    Args:
        npz_path: the ``.npz`` file (e.g. ``breastmnist.npz``, any image size).
        split: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        Items ``{"image": ndarray (H, W) or (H, W, 3) as stored (uint8), "label": 0-d int64 numpy
        array, "id": "<split>/<index:05d>"}`` in archive order. The images are views into one
        array holding the split, so listing costs no copies.

    Raises:
        ValueError: unknown split; an unreadable archive or one without ``<split>_images`` /
            ``<split>_labels`` (the message lists the keys present); images of the wrong shape;
            labels of a shape other than ``(N,)`` / ``(N, 1)`` or not class indices; image and
            label counts that differ.
        FileNotFoundError: the archive does not exist.
    """
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"unknown MedMNIST split {split!r}; expected one of {', '.join(MEDMNIST_SPLITS)}")
    path = Path(npz_path)
    image_key, label_key = f"{split}_images", f"{split}_labels"
    arrays = _read_arrays(path, [image_key, label_key])
    images = arrays[image_key]
    labels = _labels(arrays[label_key], path, label_key)
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise ValueError(f"{path}: {image_key} has shape {tuple(images.shape)}; expected (N, H, W) or (N, H, W, 3)")
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"{path}: {image_key} has dtype {images.dtype}; expected uint8 pixels")
    if len(images) != len(labels):
        raise ValueError(f"{path}: {image_key} holds {len(images)} images but {label_key} holds {len(labels)} labels")
    return [
        {"image": images[i], "label": np.array(labels[i], dtype=np.int64), "id": f"{split}/{i:05d}"}
        for i in range(len(images))
    ]


def medmnist_class_count(npz_path: str | os.PathLike) -> int:
    """The number of classes of a MedMNIST archive: the largest label over all splits, plus one.

    Args:
        npz_path: the ``.npz`` file.

    Returns:
        The class count (2 for BreastMNIST, 4 for OCTMNIST).

    Raises:
        FileNotFoundError: the archive does not exist.
        ValueError: an unreadable archive, missing label keys, or malformed labels.
    """
    path = Path(npz_path)
    keys = [f"{split}_labels" for split in MEDMNIST_SPLITS]
    arrays = _read_arrays(path, keys)
    labels = [_labels(arrays[k], path, k) for k in keys]
    if not any(label.size for label in labels):
        raise ValueError(f"{path} holds no labels in {', '.join(keys)}")
    return int(max(int(label.max()) for label in labels if label.size)) + 1
