"""A small synthetic retinal-OCT dataset in the OCT2017 (Kermany) layout, for demos and tests.

Every image is a grayscale B-scan-like JPEG: a dark vitreous, a gently curved retina of bright
and dark layers with a foveal dip, a very bright RPE line at its lower edge, the choroid below,
and multiplicative speckle plus additive noise. Sizes vary a little per image. The classes show
visible, learnable signs:

* ``CNV``: one large dome that lifts the RPE and the retina, filled with bright material;
* ``DME``: a thickened retina with two to four dark fluid cysts inside it;
* ``DRUSEN``: three to six small bright bumps along the lower edge of the retina;
* ``NORMAL``: plain layers.

The tree ``<root>/{train,test}/<class>/<class>-NNNN.jpeg`` is a pure function of the parameters
(byte-identical for the same seed) and is created atomically, like
:func:`~monai_ssl.data.make_mrnet_demo`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .synthetic_common import build_demo, check_integer, check_range, ensure_demo, is_demo

__all__ = ["OCT_CLASSES", "ensure_oct_demo", "is_oct_demo", "make_oct_demo"]

logger = logging.getLogger("monai_ssl")

OCT_CLASSES: tuple[str, ...] = ("CNV", "DME", "DRUSEN", "NORMAL")
_SPLITS = ("train", "test")
_KIND = "oct2017"
_FORMAT = 1

# Intensity along the relative depth d (0: inner retinal surface, 1: RPE); d < 0 is vitreous,
# d > 1 the choroid fading into the sclera.
_DEPTH = np.array([-1.0, -0.03, 0.0, 0.12, 0.16, 0.33, 0.38, 0.5, 0.55, 0.62, 0.67, 0.83, 0.86, 0.89, 0.92,
                   1.0, 1.06, 1.5, 2.5, 9.0], dtype=np.float32)
_LEVEL = np.array([10.0, 10.0, 150.0, 150.0, 95.0, 95.0, 50.0, 50.0, 95.0, 95.0, 40.0, 40.0, 160.0, 70.0, 215.0,
                   215.0, 110.0, 60.0, 20.0, 20.0], dtype=np.float32)


def _demo_params(
    n_train_per_class: int = 12,
    n_test_per_class: int = 6,
    height: Sequence[int] = (90, 110),
    width: Sequence[int] = (120, 140),
    seed: int = 0,
    classes: Sequence[str] = OCT_CLASSES,
) -> dict[str, Any]:
    """Validate the demo parameters and return them as a JSON-ready dict (with the dataset kind)."""
    for name, value, low in (("n_train_per_class", n_train_per_class, 2), ("n_test_per_class", n_test_per_class, 1),
                             ("seed", seed, 0)):
        check_integer("make_oct_demo", name, value, low)
    names = [classes] if isinstance(classes, str) else list(classes)
    if len(names) < 2 or len(set(names)) != len(names) or not set(names) <= set(OCT_CLASSES):
        raise ValueError(
            f"make_oct_demo: classes must be at least two distinct names from {', '.join(OCT_CLASSES)}, got {classes!r}"
        )
    return {
        "dataset": _KIND,
        "format": _FORMAT,
        "n_train_per_class": int(n_train_per_class),
        "n_test_per_class": int(n_test_per_class),
        "height": check_range("make_oct_demo", "height", height, 48),
        "width": check_range("make_oct_demo", "width", width, 48),
        "seed": int(seed),
        "classes": names,
    }


def _bumps(xx: np.ndarray, centres: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Sum of Gaussian bumps along x (one value per column)."""
    return (heights[:, None] * np.exp(-(((xx - centres[:, None]) / widths[:, None]) ** 2))).sum(axis=0)


def _render(rng: np.random.Generator, height: int, width: int, kind: str) -> np.ndarray:
    """One synthetic B-scan of class ``kind`` as uint8 ``(height, width)``."""
    xx = np.arange(width, dtype=np.float32)
    yy = np.arange(height, dtype=np.float32)[:, None]
    u = (xx - width / 2.0) / width  # -0.5 .. 0.5
    top = height * (0.28 + rng.uniform(-0.03, 0.03) + rng.uniform(0.15, 0.35) * u**2 + rng.uniform(-0.08, 0.08) * u)
    dip = height * 0.05 * np.exp(-((u - rng.uniform(-0.08, 0.08)) / 0.07) ** 2)  # the fovea: inner surface only
    thickness = height * rng.uniform(0.24, 0.28) * np.ones_like(xx)
    lift = np.zeros_like(xx)  # how far the RPE is pushed up, per column
    fill = 0.0
    if kind == "CNV":
        lift = _bumps(xx, rng.uniform(0.3, 0.7, 1) * width, rng.uniform(0.13, 0.18, 1) * height,
                      rng.uniform(0.08, 0.12, 1) * width)
        fill = 175.0
    elif kind == "DRUSEN":
        n = int(rng.integers(3, 7))
        centres = np.sort(rng.uniform(0.12, 0.88, n)) * width
        lift = _bumps(xx, centres, rng.uniform(0.05, 0.07, n) * height, rng.uniform(0.03, 0.04, n) * width)
        fill = 170.0
    elif kind == "DME":
        thickness = thickness * rng.uniform(1.3, 1.45)
    bottom = top + thickness - lift
    inner = top + dip - 0.6 * lift
    depth = (yy - inner) / (bottom - inner)
    image = np.interp(depth, _DEPTH, _LEVEL).astype(np.float32)
    if fill:
        below = (yy > bottom + 2.0) & (yy < top + thickness) & (lift > 1.5)
        image = np.where(below, np.float32(fill), image)
    if kind == "DME":
        for _ in range(int(rng.integers(2, 5))):
            cx = rng.uniform(0.2, 0.8) * width
            column = int(np.clip(round(cx), 0, width - 1))
            cy = inner[column] + rng.uniform(0.35, 0.65) * (bottom[column] - inner[column])
            ry, rx = rng.uniform(0.04, 0.07) * height, rng.uniform(0.05, 0.09) * width
            cyst = np.clip((1.0 - ((yy - cy) / ry) ** 2 - ((xx - cx) / rx) ** 2) * 4.0, 0.0, 1.0)
            image = image * (1.0 - cyst) + 12.0 * cyst
    image *= rng.gamma(4.0, 0.25, size=image.shape).astype(np.float32)  # speckle, mean 1
    image += rng.normal(0.0, 6.0, size=image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _write_demo(folder: Path, params: dict[str, Any]) -> None:
    """Write every JPEG into ``folder`` (:func:`build_demo` adds the marker)."""
    from PIL import Image

    seed = params["seed"]
    for split_index, split in enumerate(_SPLITS):
        n = params["n_train_per_class" if split == "train" else "n_test_per_class"]
        for name in params["classes"]:
            (folder / split / name).mkdir(parents=True)
            for i in range(n):
                rng = np.random.default_rng([seed, split_index, OCT_CLASSES.index(name), i])
                h = int(rng.integers(params["height"][0], params["height"][1] + 1))
                w = int(rng.integers(params["width"][0], params["width"][1] + 1))
                pixels = _render(rng, h, w, name)
                Image.fromarray(pixels).save(folder / split / name / f"{name}-{i:04d}.jpeg", format="JPEG", quality=92)


def is_oct_demo(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a finished demo made by :func:`make_oct_demo` (an OCT marker is present)."""
    return is_demo(root, _KIND)


def make_oct_demo(
    root: str | os.PathLike,
    n_train_per_class: int = 12,
    n_test_per_class: int = 6,
    height: Sequence[int] = (90, 110),
    width: Sequence[int] = (120, 140),
    seed: int = 0,
    classes: Sequence[str] = OCT_CLASSES,
) -> Path:
    """Create a synthetic OCT2017-layout dataset at ``root`` (which must be new or an empty folder).

    The tree is built in a hidden sibling folder ``.<name>.partial-*`` and renamed to ``root`` in
    one step, so an interrupted run never leaves something that looks finished (a leftover
    ``.partial-*`` folder can be deleted). The marker file ``root/.monai_ssl_demo`` holds the
    parameters as JSON. The defaults take well under a second.

    Args:
        root: the folder to create (the ``root`` of :func:`~monai_ssl.data.image_folder_datalist`).
        n_train_per_class: images per class in ``train``, at least 2.
        n_test_per_class: images per class in ``test``, at least 1.
        height: ``(low, high)``, inclusive range of image heights in pixels (low >= 48).
        width: ``(low, high)``, inclusive range of image widths in pixels (low >= 48).
        seed: the only source of randomness; the same parameters give byte-identical files.
        classes: which of ``OCT_CLASSES`` to write (at least two).

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: invalid parameters.
        FileExistsError: ``root`` exists and is not an empty folder.
    """
    params = _demo_params(n_train_per_class, n_test_per_class, height, width, seed, classes)
    root = build_demo(root, params, _write_demo, "make_oct_demo (use ensure_oct_demo to reuse a finished demo)")
    logger.info(
        "wrote synthetic OCT demo to %s (%d classes, %d train and %d test images per class)",
        root, len(params["classes"]), n_train_per_class, n_test_per_class,
    )
    return root


def ensure_oct_demo(root: str | os.PathLike, **kwargs: Any) -> Path:
    """Return ``root`` holding a finished OCT demo, creating it first when ``root`` is new or empty.

    Args:
        root: the demo folder.
        **kwargs: parameters of :func:`make_oct_demo`. An existing demo is reused as it is; a
            warning is logged when it was made with different parameters.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``root`` exists, is not empty and is not an OCT demo (no marker, or the marker
            of another demo such as the MRNet one): demo files are never written into someone's
            real data folder; or invalid parameters.
    """
    requested = _demo_params(**kwargs)
    return ensure_demo(root, requested, lambda path: make_oct_demo(path, **kwargs), kind=_KIND, label="OCT")
