"""A small synthetic knee-MRI dataset in the MRNet-v1.0 layout, for demos and tests.

Every exam is a smooth synthetic "knee" (soft tissue, femur, tibia, patella, mild uniform noise) stored
as uint8 ``(slices, size, size)`` ``.npy`` files, one per plane, with label CSVs for all three
MRNet tasks. Labels come with visible signals in the middle slices of every plane, so a model
can actually learn them:

* ``acl``: a bright oriented band through the image centre (the torn ligament);
* ``meniscus``: two bright blobs at the left and right ends of the joint line;
* ``abnormal``: positive exactly when ``acl`` or ``meniscus`` is (as in the real data, where
  every ACL or meniscus tear is also abnormal); abnormal exams also show a bright effusion
  pocket above the patella.

About a third of each split is ``acl``-positive and a third ``meniscus``-positive (drawn
independently), and every split holds at least one exam with no finding, so each task has both
classes in both splits. The whole tree is a pure function of the parameters (byte-identical for
the same seed).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .mrnet import MRNET_PLANES, MRNET_SPLITS, MRNET_TASKS
from .synthetic_common import DEMO_MARKER, build_demo, check_integer, check_range, ensure_demo, is_demo

__all__ = ["DEMO_MARKER", "ensure_mrnet_demo", "is_mrnet_demo", "make_mrnet_demo"]

logger = logging.getLogger("monai_ssl")

_FORMAT = 1


def _demo_params(
    n_train: int = 12,
    n_valid: int = 6,
    num_slices: Sequence[int] = (17, 22),
    size: int = 256,
    seed: int = 0,
    planes: Sequence[str] = MRNET_PLANES,
) -> dict[str, Any]:
    """Validate the demo parameters and return them as a JSON-ready dict."""
    for name, value, low in (("n_train", n_train, 2), ("n_valid", n_valid, 2), ("size", size, 32), ("seed", seed, 0)):
        check_integer("make_mrnet_demo", name, value, low)
    slices = check_range("make_mrnet_demo", "num_slices", num_slices, 3)
    plane_list = [planes] if isinstance(planes, str) else list(planes)
    if not plane_list or len(set(plane_list)) != len(plane_list) or not set(plane_list) <= set(MRNET_PLANES):
        raise ValueError(
            f"make_mrnet_demo: planes must be distinct names from {', '.join(MRNET_PLANES)}, got {planes!r}"
        )
    return {
        "format": _FORMAT,
        "n_train": int(n_train),
        "n_valid": int(n_valid),
        "num_slices": slices,
        "size": int(size),
        "seed": int(seed),
        "planes": plane_list,
    }


def _split_labels(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Labels for ``n`` exams: ~1/3 acl, ~1/3 meniscus (independent), at least one normal exam."""
    order = rng.permutation(n)
    rest = order[1:]  # order[0] stays normal, so every task has a negative
    k = max(1, round(n / 3))
    acl = np.zeros(n, dtype=bool)
    meniscus = np.zeros(n, dtype=bool)
    acl[rng.choice(rest, size=k, replace=False)] = True
    meniscus[rng.choice(rest, size=k, replace=False)] = True
    return {"abnormal": acl | meniscus, "acl": acl, "meniscus": meniscus}


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0
) -> np.ndarray:
    """A soft-edged filled ellipse in ``[0, 1]`` on the grid ``yy, xx`` (coordinates in ``[-1, 1]``)."""
    c, s = math.cos(angle), math.sin(angle)
    dy, dx = yy - cy, xx - cx
    u, v = dx * c + dy * s, dy * c - dx * s
    r2 = (u * (1.0 / rx)) ** 2 + (v * (1.0 / ry)) ** 2
    return np.clip((1.0 - r2) * 6.0 + 0.5, 0.0, 1.0)  # 1 - r^2 ~ 2 (1 - r) at the edge: a soft rim


def _anatomy(yy: np.ndarray, xx: np.ndarray, oy: float, ox: float, scale: float, widen: float) -> np.ndarray:
    """One 2D knee cross-section: soft tissue, femur, tibia and patella (float32 intensities)."""
    image = 70.0 * _ellipse(yy, xx, oy, ox, 0.92 * scale, 0.75 * scale * widen)
    image += 60.0 * _ellipse(yy, xx, oy - 0.47 * scale, ox, 0.42 * scale, 0.40 * scale * widen)
    image += 50.0 * _ellipse(yy, xx, oy + 0.50 * scale, ox, 0.38 * scale, 0.40 * scale * widen)
    image += 45.0 * _ellipse(yy, xx, oy - 0.42 * scale, ox + 0.62 * scale, 0.14 * scale, 0.07 * scale)
    return image.astype(np.float32)


def _render(rng: np.random.Generator, num_slices: int, size: int, plane: int, acl: bool, meniscus: bool) -> np.ndarray:
    """One exam in one plane as uint8 ``(num_slices, size, size)``."""
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    yy, xx = axis[:, None], axis[None, :]
    oy, ox = (float(v) for v in rng.uniform(-0.04, 0.04, size=2))  # Python floats keep float32 maths
    scale = float(rng.uniform(0.95, 1.05))
    widen = (1.0, 1.15, 1.05)[plane]
    centre = _anatomy(yy, xx, oy, ox, scale, widen)  # middle slices
    edge = _anatomy(yy, xx, oy, ox, 0.7 * scale, widen)  # outer slices: a smaller section
    z = np.linspace(-1.0, 1.0, num_slices, dtype=np.float32)
    weight = np.cos(0.5 * np.pi * z)[:, None, None] ** 2
    volume = weight * centre + (1.0 - weight) * edge * (0.6 + 0.4 * weight)

    signals = []
    if acl:
        angle = float(rng.uniform(0.8, 1.1))  # an oblique band, about 45-65 degrees
        signals.append((0.35, _ellipse(yy, xx, oy, ox, 0.04, 0.32, angle) * 235.0))
    if meniscus:
        blobs = _ellipse(yy, xx, oy + 0.04, ox - 0.40 * widen, 0.05, 0.09)
        blobs = np.maximum(blobs, _ellipse(yy, xx, oy + 0.04, ox + 0.40 * widen, 0.05, 0.09))
        signals.append((0.5, blobs * 225.0))
    if acl or meniscus:
        signals.append((0.6, _ellipse(yy, xx, oy - 0.78, ox + 0.45, 0.12, 0.08) * 200.0))
    for extent, pattern in signals:
        middle = np.abs(z) <= extent
        middle[num_slices // 2] = True  # at least the central slice
        volume[middle] = np.maximum(volume[middle], pattern.astype(np.float32))

    noise = np.frombuffer(rng.bytes(volume.size), dtype=np.uint8).reshape(volume.shape)  # fast uniform noise
    volume += noise.astype(np.float32) * np.float32(16.0 / 255.0) - np.float32(8.0)
    return np.clip(np.rint(volume), 0, 255).astype(np.uint8)


def _write_demo(folder: Path, params: dict[str, Any]) -> None:
    """Write every volume and the label CSVs into ``folder`` (:func:`build_demo` adds the marker)."""
    seed, low, high = params["seed"], params["num_slices"][0], params["num_slices"][1]
    first_id = 0
    for split_index, split in enumerate(MRNET_SPLITS):
        n = params["n_train"] if split == "train" else params["n_valid"]
        ids = range(first_id, first_id + n)
        first_id += n
        labels = _split_labels(n, np.random.default_rng([seed, 0, split_index]))
        for task in MRNET_TASKS:
            rows = "".join(f"{exam},{int(flag)}\n" for exam, flag in zip(ids, labels[task]))
            (folder / f"{split}-{task}.csv").write_text(rows, encoding="utf-8")
        for plane in params["planes"]:
            (folder / split / plane).mkdir(parents=True)
        for index, exam in enumerate(ids):
            for plane in params["planes"]:
                plane_index = MRNET_PLANES.index(plane)
                rng = np.random.default_rng([seed, 1, exam, plane_index])
                slices = int(rng.integers(low, high + 1))
                acl, meniscus = bool(labels["acl"][index]), bool(labels["meniscus"][index])
                volume = _render(rng, slices, params["size"], plane_index, acl, meniscus)
                np.save(folder / split / plane / f"{exam:04d}.npy", volume)


def is_mrnet_demo(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a finished demo made by :func:`make_mrnet_demo` (its marker is present)."""
    return is_demo(root, None)


def make_mrnet_demo(
    root: str | os.PathLike,
    n_train: int = 12,
    n_valid: int = 6,
    num_slices: Sequence[int] = (17, 22),
    size: int = 256,
    seed: int = 0,
    planes: Sequence[str] = MRNET_PLANES,
) -> Path:
    """Create a synthetic MRNet-layout dataset at ``root`` (which must be new or an empty folder).

    The tree is built in a hidden sibling folder ``.<name>.partial-*`` and renamed to ``root`` in
    one step, so an interrupted run never leaves something that looks finished (a leftover
    ``.partial-*`` folder can be deleted). The marker file ``root/.monai_ssl_demo`` holds the
    parameters as JSON.

    Args:
        root: the folder to create (the ``root`` argument of :func:`mrnet_datalist`).
        n_train: exams in ``train`` (IDs ``0 .. n_train - 1``), at least 2.
        n_valid: exams in ``valid`` (IDs continue after train, as in MRNet), at least 2.
        num_slices: ``(low, high)``, inclusive range of slices per exam and plane (low >= 3).
        size: in-plane size (square), at least 32.
        seed: the only source of randomness; the same parameters give byte-identical files.
        planes: which of ``MRNET_PLANES`` to write.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: invalid parameters.
        FileExistsError: ``root`` exists and is not an empty folder.
    """
    params = _demo_params(n_train, n_valid, num_slices, size, seed, planes)
    root = build_demo(root, params, _write_demo, "make_mrnet_demo (use ensure_mrnet_demo to reuse a finished demo)")
    logger.info("wrote synthetic MRNet demo to %s (%d train, %d valid exams)", root, n_train, n_valid)
    return root


def ensure_mrnet_demo(root: str | os.PathLike, **kwargs: Any) -> Path:
    """Return ``root`` holding a finished demo, creating it first when ``root`` is new or empty.

    Args:
        root: the demo folder.
        **kwargs: parameters of :func:`make_mrnet_demo`. An existing demo is reused as it is; a
            warning is logged when it was made with different parameters.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: ``root`` exists, is not empty and is not a demo (no marker): demo files are
            never written into someone's real data folder; or invalid parameters.
    """
    requested = _demo_params(**kwargs)
    return ensure_demo(root, requested, lambda path: make_mrnet_demo(path, **kwargs), kind=None, label="MRNet")
