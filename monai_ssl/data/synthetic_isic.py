"""A small synthetic skin-lesion dataset in the ISIC 2017 challenge layout, for demos and tests.

Every image is an RGB JPEG of 4:3-ish size (default 480-640 x 360-480 pixels) showing skin: a
pinkish-beige tone with smooth low-frequency colour variation, a dermoscope vignette, grain and
a few optional dark hairs, with one lesion-like blob on it. The blob's boundary is a radius
perturbed by a few low harmonics (an irregular smooth outline, stretched and rotated, that may
touch the border); it is brown with a darker core and smooth internal variation, so it is
clearly darker than the skin and learnable. Its mask is a one-channel PNG, mode ``L``, exactly
0 (skin) and 255 (lesion), of the image's size. There are no superpixel files.

The tree (see :mod:`monai_ssl.data.isic`)::

    <root>/ISIC-2017_Training_Data/ISIC_0000000.jpg
    <root>/ISIC-2017_Training_Part1_GroundTruth/ISIC_0000000_segmentation.png
    <root>/ISIC-2017_Validation_Data/ + ISIC-2017_Validation_Part1_GroundTruth/
    <root>/ISIC-2017_Test_v2_Data/ + ISIC-2017_Test_v2_Part1_GroundTruth/

is a pure function of the parameters (byte-identical for the same seed), numbered through the
splits like the real ids, and created atomically like :func:`~monai_ssl.data.make_oct_demo`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .isic import ISIC_FOLDERS, ISIC_MASK_NAME, ISIC_SPLITS
from .synthetic_common import build_demo, check_integer, check_range, ensure_demo, is_demo

__all__ = ["ensure_isic_demo", "is_isic_demo", "make_isic_demo"]

logger = logging.getLogger("monai_ssl")

_KIND = "isic2017"
_FORMAT = 1


def _demo_params(
    n_train: int = 32,
    n_val: int = 8,
    n_test: int = 8,
    height: Sequence[int] = (360, 480),
    width: Sequence[int] = (480, 640),
    hair: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Validate the demo parameters and return them as a JSON-ready dict (with the dataset kind)."""
    for name, value, low in (("n_train", n_train, 2), ("n_val", n_val, 1), ("n_test", n_test, 1), ("seed", seed, 0)):
        check_integer("make_isic_demo", name, value, low)
    if not isinstance(hair, bool):
        raise ValueError(f"make_isic_demo: hair must be True or False, got {hair!r}")
    return {
        "dataset": _KIND,
        "format": _FORMAT,
        "n_train": int(n_train),
        "n_val": int(n_val),
        "n_test": int(n_test),
        "height": check_range("make_isic_demo", "height", height, 32),
        "width": check_range("make_isic_demo", "width", width, 32),
        "hair": hair,
        "seed": int(seed),
    }


def _interpolate(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Resample ``values`` to ``size`` points along ``axis``, smoothstep-interpolated (no visible grid lines)."""
    count = values.shape[axis]
    position = np.linspace(0.0, count - 1.0, size)
    left = np.minimum(position.astype(np.int64), count - 2)
    t = position - left
    shape = [1] * values.ndim
    shape[axis] = size
    t = (t * t * (3 - 2 * t)).astype(np.float32).reshape(shape)
    first, second = np.take(values, left, axis=axis), np.take(values, left + 1, axis=axis)
    return first + (second - first) * t


def _smooth_field(rng: np.random.Generator, grid: tuple[int, int], height: int, width: int, depth: int) -> np.ndarray:
    """A smooth random field ``(depth, height, width)``: unit normals on a coarse grid, interpolated (float32)."""
    coarse = rng.standard_normal((depth, grid[0], grid[1])).astype(np.float32)
    return _interpolate(_interpolate(coarse, height, axis=1), width, axis=2)


def _lesion_shape(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, depth)``: the blob's soft coverage in [0, 1] (> 0.5 inside) and 1 at its centre to 0 at its edge."""
    yy = np.arange(height, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    base = rng.uniform(0.15, 0.35) * min(height, width)
    angle, stretch = rng.uniform(0.0, np.pi), rng.uniform(0.75, 1.25)
    dx, dy = xx - np.float32(cx), yy - np.float32(cy)
    u = dx * np.float32(np.cos(angle)) + dy * np.float32(np.sin(angle))
    v = (dy * np.float32(np.cos(angle)) - dx * np.float32(np.sin(angle))) * np.float32(stretch)
    rho = np.sqrt(u * u + v * v)
    cos1, sin1 = u / np.maximum(rho, 1e-6), v / np.maximum(rho, 1e-6)  # of the polar angle theta
    cos_k, sin_k = cos1, sin1
    radius = np.ones_like(rho)
    for k in range(2, 6):  # a few low harmonics a_k cos(k theta + phase): an irregular but smooth outline
        cos_k, sin_k = cos_k * cos1 - sin_k * sin1, sin_k * cos1 + cos_k * sin1
        amplitude, phase = rng.uniform(0.0, 0.25) / k, rng.uniform(0.0, 2 * np.pi)
        radius += np.float32(amplitude * np.cos(phase)) * cos_k - np.float32(amplitude * np.sin(phase)) * sin_k
    radius *= np.float32(base)
    edge = np.float32(rng.uniform(1.5, 4.0))  # width of the soft rim in pixels
    coverage = np.clip((radius - rho) / edge + np.float32(0.5), 0.0, 1.0)
    return coverage, np.clip(1.0 - rho / radius, 0.0, 1.0)


def _draw_hairs(rng: np.random.Generator, image: Any, count: int) -> None:
    """Draw ``count`` thin dark curved hairs (quadratic Bezier curves) onto a PIL image in place."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    width, height = image.size
    t = np.linspace(0.0, 1.0, 40)[:, None]
    for _ in range(count):
        ends = rng.uniform(0.0, 1.0, size=(3, 2)) * [width, height]
        curve = (1 - t) ** 2 * ends[0] + 2 * (1 - t) * t * ends[1] + t**2 * ends[2]
        shade = int(rng.integers(25, 70))
        draw.line([tuple(p) for p in np.rint(curve).tolist()], fill=(shade + 15, shade, shade - 10),
                  width=int(rng.integers(1, 3)))


def _render(rng: np.random.Generator, height: int, width: int, hair: bool) -> tuple[Any, np.ndarray]:
    """One synthetic dermoscopy image (a PIL RGB image) and its uint8 0/255 lesion mask ``(height, width)``."""
    from PIL import Image

    # channel-first float32 throughout: every operation runs over contiguous rows
    skin_tone = np.array([rng.uniform(210, 235), rng.uniform(160, 185), rng.uniform(140, 165)], dtype=np.float32)
    tint = rng.normal(0.0, 1.0, 3).astype(np.float32) * np.float32(rng.uniform(2, 5))  # a second, hue-shifting field
    pixels = skin_tone[:, None, None] + _smooth_field(rng, (4, 5), height, width, 1) * np.float32(rng.uniform(6, 12))
    pixels += _smooth_field(rng, (4, 5), height, width, 1) * tint[:, None, None]
    yy = (np.arange(height, dtype=np.float32)[:, None] / height - 0.5) * 2
    xx = (np.arange(width, dtype=np.float32)[None, :] / width - 0.5) * 2
    pixels *= 1.0 - np.float32(rng.uniform(0.04, 0.14)) * (yy * yy + xx * xx)  # dermoscope vignette

    coverage, depth = _lesion_shape(rng, height, width)
    red = rng.uniform(105.0, 155.0)
    brown = np.array([red, red * rng.uniform(0.55, 0.7), red * rng.uniform(0.42, 0.58)], dtype=np.float32)
    core = np.float32(rng.uniform(0.25, 0.55))
    texture = _smooth_field(rng, (7, 7), height, width, 1) * np.float32(rng.uniform(8.0, 16.0))
    rows, cols = np.flatnonzero(coverage.any(axis=1)), np.flatnonzero(coverage.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # the blob's bounding box: less work
    darkening = 1.0 - core * depth[box] * np.sqrt(depth[box])  # a darker core
    lesion = brown[:, None, None] * darkening + texture[:, box[0], box[1]]
    inside = pixels[:, box[0], box[1]]
    inside += (lesion - inside) * coverage[box]
    pixels += rng.standard_normal((height, width), dtype=np.float32) * np.float32(3.0)  # grain
    rgb = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if hair:
        _draw_hairs(rng, image, int(rng.integers(0, 4)))
    mask = np.where(coverage > 0.5, np.uint8(255), np.uint8(0))
    return image, mask


def _write_demo(folder: Path, params: dict[str, Any]) -> None:
    """Write every image and every mask into ``folder`` (:func:`build_demo` adds the marker)."""
    from PIL import Image

    index = 0
    for split_index, split in enumerate(ISIC_SPLITS):
        images, masks = (folder / name for name in ISIC_FOLDERS[split][0])
        images.mkdir()
        masks.mkdir()
        for i in range(params[f"n_{split}"]):
            rng = np.random.default_rng([params["seed"], split_index, i])
            width = int(rng.integers(params["width"][0], params["width"][1] + 1))
            height = int(np.clip(round(width * rng.uniform(0.7, 0.8)), params["height"][0], params["height"][1]))
            image, mask = _render(rng, height, width, params["hair"])
            stem = f"ISIC_{index:07d}"
            image.save(images / f"{stem}.jpg", format="JPEG", quality=92)
            Image.fromarray(mask).save(masks / ISIC_MASK_NAME.format(stem=stem), format="PNG")
            index += 1


def is_isic_demo(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a finished demo made by :func:`make_isic_demo` (an ISIC marker is present)."""
    return is_demo(root, _KIND)


def make_isic_demo(
    root: str | os.PathLike,
    n_train: int = 32,
    n_val: int = 8,
    n_test: int = 8,
    height: Sequence[int] = (360, 480),
    width: Sequence[int] = (480, 640),
    hair: bool = True,
    seed: int = 0,
) -> Path:
    """Create a synthetic ISIC 2017-layout skin-lesion dataset at ``root`` (which must be new or an empty folder).

    The tree is built in a hidden sibling folder ``.<name>.partial-*`` and renamed to ``root`` in
    one step, so an interrupted run never leaves something that looks finished. The marker file
    ``root/.monai_ssl_demo`` holds the parameters as JSON. The defaults (48 images) take about a
    second.

    Args:
        root: the folder to create (the ``dataset_dir`` of :func:`~monai_ssl.data.segmentation_datalist`).
        n_train: training images, at least 2.
        n_val: validation images, at least 1.
        n_test: test images, at least 1.
        height: ``(low, high)``, inclusive range of image heights in pixels (low >= 32); the
            height is about 3/4 of the width, clipped to this range.
        width: ``(low, high)``, inclusive range of image widths in pixels (low >= 32).
        hair: draw zero to three thin dark hairs on each image.
        seed: the only source of randomness; the same parameters give byte-identical files.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: invalid parameters.
        FileExistsError: ``root`` exists and is not an empty folder.
    """
    params = _demo_params(n_train, n_val, n_test, height, width, hair, seed)
    root = build_demo(root, params, _write_demo, "make_isic_demo (use ensure_isic_demo to reuse a finished demo)")
    logger.info("wrote synthetic ISIC 2017 demo to %s (%d train, %d val, %d test images)", root, n_train, n_val, n_test)
    return root


def ensure_isic_demo(root: str | os.PathLike, **kwargs: Any) -> Path:
    """Return ``root`` holding a finished ISIC demo, creating it first when ``root`` is new or empty.

    Args:
        root: the demo folder.
        **kwargs: parameters of :func:`make_isic_demo`. An existing demo is reused as it is; a
            warning is logged when it was made with different parameters.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``root`` exists, is not empty and is not an ISIC demo (no marker, or the
            marker of another demo): demo files are never written into someone's real data
            folder; or invalid parameters.
    """
    requested = _demo_params(**kwargs)
    return ensure_demo(root, requested, lambda path: make_isic_demo(path, **kwargs), kind=_KIND, label="ISIC")
