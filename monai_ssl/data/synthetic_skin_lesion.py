"""A tiny synthetic three-class skin-lesion dataset in the ISIC 2017 Part 3 layout, for demos and tests.

Each image is an RGB JPEG of skin (a beige tone with grain) with one lesion whose look depends on
its class, so that a classifier can learn it and a saliency map should fall on it:

* melanoma: large, irregular outline (strong low harmonics), dark brown with a blue-grey patch;
* seborrheic keratosis: a medium oval, light tan, with a few bright dots;
* nevus: small, round and uniformly medium brown.

The masks (Part 1 ground truth, 0/255 PNG) and the three Part 3 CSVs (``image_id, melanoma,
seborrheic_keratosis`` with ``0.0``/``1.0`` cells, as released) complete the tree that
:func:`~monai_ssl.data.isic2017_classification_datalists` reads::

    <root>/ISIC-2017_{Training,Validation,Test_v2}_Data/ISIC_NNNNNNN.jpg
    <root>/ISIC-2017_{Training,Validation,Test_v2}_Part1_GroundTruth/ISIC_NNNNNNN_segmentation.png
    <root>/ISIC-2017_{Training,Validation,Test_v2}_Part3_GroundTruth.csv

The ids are numbered through the splits, the classes shuffled within a split; the tree is a pure
function of the parameters and built atomically (see :mod:`monai_ssl.data.synthetic_common`).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .isic import ISIC_FOLDERS, ISIC_MASK_NAME, ISIC_SPLITS
from .isic_classification import ISIC_CLASSES, ISIC_CSV_COLUMNS, isic_part3_csv_name
from .synthetic_common import build_demo, check_integer, ensure_demo, is_demo

__all__ = ["ensure_skin_lesion_demo", "is_skin_lesion_demo", "make_skin_lesion_demo"]

logger = logging.getLogger("monai_ssl")

_KIND = "isic2017_classification"
_FORMAT = 1
# per class: (radius as a share of the shorter side, harmonic amplitude, RGB colour, stretch)
_LOOKS = {
    0: ((0.30, 0.38), 0.30, (70.0, 42.0, 35.0), (0.8, 1.2)),
    1: ((0.20, 0.26), 0.05, (175.0, 130.0, 90.0), (1.3, 1.6)),
    2: ((0.10, 0.15), 0.02, (125.0, 80.0, 55.0), (0.95, 1.05)),
}


def _demo_params(
    n_train_per_class: int = 8,
    n_val_per_class: int = 2,
    n_test_per_class: int = 2,
    size: Sequence[int] = (96, 128),
    seed: int = 0,
) -> dict[str, Any]:
    """Validate the demo parameters and return them as a JSON-ready dict (with the dataset kind)."""
    creator = "make_skin_lesion_demo"
    check_integer(creator, "n_train_per_class", n_train_per_class, 1)
    check_integer(creator, "n_val_per_class", n_val_per_class, 1)
    check_integer(creator, "n_test_per_class", n_test_per_class, 1)
    check_integer(creator, "seed", seed, 0)
    height, width = _check_size(size)
    return {
        "dataset": _KIND,
        "format": _FORMAT,
        "n_train_per_class": int(n_train_per_class),
        "n_val_per_class": int(n_val_per_class),
        "n_test_per_class": int(n_test_per_class),
        "size": [height, width],
        "seed": int(seed),
    }


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    """``(height, width)``, both integers >= 32."""
    pair = list(size) if isinstance(size, Sequence) and not isinstance(size, str) else []
    if len(pair) != 2:
        raise ValueError(f"make_skin_lesion_demo: size must be (height, width), got {size!r}")
    return (check_integer("make_skin_lesion_demo", "size[0] (height)", pair[0], 32),
            check_integer("make_skin_lesion_demo", "size[1] (width)", pair[1], 32))


def _render(rng: np.random.Generator, label: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One ``(height, width, 3)`` uint8 image of class ``label`` and its ``(height, width)`` 0/255 mask."""
    (low, high), harmonic, colour, (s_low, s_high) = _LOOKS[label]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width
    angle, stretch = rng.uniform(0, np.pi), rng.uniform(s_low, s_high)
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (dy * np.cos(angle) - dx * np.sin(angle)) * stretch
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    radius = np.ones_like(rho)
    for k in range(2, 6):
        radius += rng.uniform(0.3, 1.0) * harmonic / (k - 1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius *= rng.uniform(low, high) * min(height, width)
    inside = rho < radius
    skin = np.array([rng.uniform(215, 235), rng.uniform(170, 190), rng.uniform(150, 170)], dtype=np.float32)
    pixels = np.broadcast_to(skin, (height, width, 3)).copy()
    lesion = np.asarray(colour, dtype=np.float32) * rng.uniform(0.9, 1.1)
    pixels[inside] = lesion
    if label == 0:  # a blue-grey patch inside the melanoma
        patch = inside & (np.hypot(u - 0.3 * radius, v) < 0.35 * radius)
        pixels[patch] = (90.0, 100.0, 125.0)
    elif label == 1:  # bright dots inside the keratosis
        for _ in range(4):
            r, a = rng.uniform(0, 0.6), rng.uniform(0, 2 * np.pi)
            dot = inside & (np.hypot(u - r * radius * np.cos(a), v - r * radius * np.sin(a)) < 0.1 * radius)
            pixels[dot] = (235.0, 215.0, 180.0)
    pixels += rng.normal(0.0, 4.0, pixels.shape).astype(np.float32)
    image = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return image, np.where(inside, np.uint8(255), np.uint8(0))


def _write_demo(folder: Path, params: dict[str, Any]) -> None:
    """Write the images, masks and Part 3 CSVs into ``folder`` (:func:`build_demo` adds the marker)."""
    from PIL import Image

    height, width = params["size"]
    index = 0
    for split_index, split in enumerate(ISIC_SPLITS):
        data_name, mask_name = ISIC_FOLDERS[split][0]
        images, masks = folder / data_name, folder / mask_name
        images.mkdir()
        masks.mkdir()
        count = params[f"n_{split}_per_class"]
        labels = np.random.default_rng([params["seed"], split_index]).permutation(
            np.repeat(np.arange(len(ISIC_CLASSES)), count))
        rows = []
        for i, label in enumerate(labels.tolist()):
            rng = np.random.default_rng([params["seed"], split_index, i])
            image, mask = _render(rng, label, height, width)
            stem = f"ISIC_{index:07d}"
            Image.fromarray(image).save(images / f"{stem}.jpg", format="JPEG", quality=92)
            Image.fromarray(mask).save(masks / ISIC_MASK_NAME.format(stem=stem), format="PNG")
            rows.append([stem, f"{float(label == 0):.1f}", f"{float(label == 1):.1f}"])
            index += 1
        with (folder / isic_part3_csv_name(data_name)).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(ISIC_CSV_COLUMNS)
            writer.writerows(rows)


def is_skin_lesion_demo(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a finished demo made by :func:`make_skin_lesion_demo`."""
    return is_demo(root, _KIND)


def make_skin_lesion_demo(
    root: str | os.PathLike,
    n_train_per_class: int = 8,
    n_val_per_class: int = 2,
    n_test_per_class: int = 2,
    size: Sequence[int] = (96, 128),
    seed: int = 0,
) -> Path:
    """Create a synthetic ISIC 2017 Part 3-layout dataset at ``root`` (new or an empty folder).

    The defaults (36 images of 96 x 128 pixels) take a fraction of a second.

    Args:
        root: the folder to create (the ``root`` of :func:`~monai_ssl.data.isic2017_classification_datalists`).
        n_train_per_class: training images of each of the three classes, at least 1.
        n_val_per_class: validation images per class, at least 1.
        n_test_per_class: test images per class, at least 1.
        size: ``(height, width)`` of every image in pixels, each at least 32.
        seed: the only source of randomness; the same parameters give byte-identical files.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: invalid parameters.
        FileExistsError: ``root`` exists and is not an empty folder.
    """
    params = _demo_params(n_train_per_class, n_val_per_class, n_test_per_class, size, seed)
    root = build_demo(root, params, _write_demo,
                      "make_skin_lesion_demo (use ensure_skin_lesion_demo to reuse a finished demo)")
    logger.info("wrote synthetic ISIC 2017 classification demo to %s (%d/%d/%d images per class)", root,
                n_train_per_class, n_val_per_class, n_test_per_class)
    return root


def ensure_skin_lesion_demo(root: str | os.PathLike, **kwargs: Any) -> Path:
    """Return ``root`` holding a finished skin-lesion classification demo, creating it when new or empty.

    Use it with :func:`~monai_ssl.data.dataset_or_demo`.

    Args:
        root: the demo folder.
        **kwargs: parameters of :func:`make_skin_lesion_demo`; an existing demo is reused as it
            is, with a warning when it was made with other parameters.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``root`` exists, is not empty and is not this kind of demo (no marker, or
            another demo's marker): demo files are never written into a real data folder; or
            invalid parameters.
    """
    requested = _demo_params(**kwargs)
    return ensure_demo(root, requested, lambda path: make_skin_lesion_demo(path, **kwargs), kind=_KIND,
                       label="skin-lesion classification")
