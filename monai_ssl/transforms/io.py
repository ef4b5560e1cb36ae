"""Load a volume file (``.npy``, NIfTI, DICOM, ...) as a channel-first ``(1, S, H, W)`` MetaTensor.

``S`` is the slice axis that 2D networks (BYOLMed2D) iterate over; ``H, W`` are the in-plane
axes. MRNet ``.npy`` files are already ``(slices, H, W)``; NIfTI files are usually ``(H, W, D)``
and get their last axis moved to the front. No intensity scaling happens here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform

__all__ = ["LoadVolumed", "load_volume"]

_loader: LoadImage | None = None


def _monai_loader() -> LoadImage:
    """A shared ``LoadImage``, built on first use so ``.npy``-only pipelines never pay for it."""
    global _loader
    if _loader is None:
        with warnings.catch_warnings():  # optional GPU DICOM decoder missing: harmless
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            warnings.filterwarnings("ignore", message=".*NvImgCodec.*")
            _loader = LoadImage(image_only=True, ensure_channel_first=True)
    return _loader


def _spatial_axis(slice_axis: int, path: str) -> int:
    """Normalise ``slice_axis`` (an index over the 3 spatial axes, negatives allowed) to 0..2."""
    if not -3 <= slice_axis <= 2:
        raise ValueError(f"slice_axis must be in -3..2 (an index over the 3 spatial axes), got {slice_axis} for {path}")
    return slice_axis % 3


def _load_npy(path: str, slice_axis: int) -> MetaTensor:
    """Load an ``.npy`` volume ``(S, H, W)`` or ``(1, S, H, W)`` with validation."""
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - every failure is reported the same way
        raise ValueError(f"not a readable .npy array: {path} ({type(err).__name__}: {err})") from err
    if not isinstance(array, np.ndarray):
        raise ValueError(f"not a readable .npy array: {path} (got {type(array).__name__}, e.g. an .npz archive)")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"not a readable .npy array: {path} (expected a numeric dtype, got {array.dtype})")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(
            f"volume {path} has shape {tuple(array.shape)}; expected 3 dimensions (slices, H, W) "
            "or 4 with a leading channel of size 1 (1, slices, H, W)"
        )
    axis = _spatial_axis(slice_axis, path)
    array = np.moveaxis(array, axis, 0)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    return MetaTensor(tensor, meta={"filename_or_obj": path, "spatial_shape": np.asarray(array.shape)})


def _load_with_monai(path: str, slice_axis: int) -> MetaTensor:
    """Load any format MONAI reads, make it single-channel ``(1, S, H, W)``."""
    try:
        image = _monai_loader()(path)
    except Exception as err:  # noqa: BLE001 - MONAI tries several readers and raises various types
        raise ValueError(f"not a readable volume: {path} ({type(err).__name__}: {err})") from err
    if image.shape[0] != 1:
        raise ValueError(
            f"volume {path} has {image.shape[0]} channels (shape {tuple(image.shape)}); expected a single-channel "
            "image, e.g. not a 4D time series or an RGB picture"
        )
    affine = torch.eye(4, dtype=torch.float64)
    given = torch.as_tensor(image.affine, dtype=torch.float64)
    n = min(given.shape[0] - 1, 3)
    affine[:n, :n] = given[:n, :n]
    affine[:n, 3] = given[:n, -1]
    data = image.as_tensor()
    if data.ndim == 3:  # a single 2D slice (H, W): it becomes one slice, S = 1
        data, axis = data[..., None], 2
    elif data.ndim == 4:
        axis = _spatial_axis(slice_axis, path)
    else:
        raise ValueError(f"volume {path} has shape {tuple(image.shape)} after loading; expected 2 or 3 spatial axes")
    order = [axis] + [a for a in range(3) if a != axis]
    data = data.permute(0, *[a + 1 for a in order]).contiguous().float()
    affine[:3, :3] = affine[:3, order]
    meta = dict(image.meta)
    meta["filename_or_obj"] = path
    meta.pop("affine", None)
    return MetaTensor(data, affine=affine, meta=meta)


def load_volume(path: str | os.PathLike, slice_axis: int | None = None) -> MetaTensor:
    """Load one volume file as a float32 ``(1, S, H, W)`` MetaTensor.

    Args:
        path: an ``.npy`` file (``(S, H, W)`` or ``(1, S, H, W)``), or anything MONAI's
            ``LoadImage`` reads: NIfTI ``.nii``/``.nii.gz``, a DICOM file or series folder, ...
        slice_axis: which spatial axis (0, 1, 2 or negative, not counting the channel) holds the
            slices; it is moved to position 1. Default: 0 for ``.npy`` (MRNet), the last spatial
            axis otherwise (NIfTI ``(H, W, D)``: ``D`` becomes ``S``). A single 2D image (e.g. one
            DICOM slice) always gives ``S = 1`` and ignores ``slice_axis``.

    Returns:
        The volume, no intensity scaling, with ``meta["filename_or_obj"]`` set to ``path``. For
        non-``.npy`` files the affine's spatial columns are permuted along with the axes.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable, truncated or pickled/object array, wrong number of dimensions, or
            more than one channel; the message names the file.
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"volume file not found: {path}")
    if Path(path).suffix.lower() == ".npy":
        return _load_npy(path, 0 if slice_axis is None else slice_axis)
    return _load_with_monai(path, -1 if slice_axis is None else slice_axis)


class LoadVolumed(MapTransform):
    """Dictionary transform: replace file paths under ``keys`` by ``(1, S, H, W)`` float32 volumes.

    See :func:`load_volume` for formats, ``slice_axis`` and errors.

    Example::

        LoadVolumed(keys="image")({"image": "MRNet-v1.0/train/sagittal/0000.npy"})["image"].shape
        # torch.Size([1, 44, 256, 256])
    """

    def __init__(
        self, keys: KeysCollection = "image", slice_axis: int | None = None, allow_missing_keys: bool = False
    ) -> None:
        """Set up the transform.

        Args:
            keys: keys whose values are volume file paths.
            slice_axis: spatial axis holding the slices; ``None`` picks per format (see
                :func:`load_volume`).
            allow_missing_keys: do not raise when a key is absent.
        """
        super().__init__(keys, allow_missing_keys)
        self.slice_axis = slice_axis

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Load every path under ``keys``; other entries are passed through unchanged."""
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"LoadVolumed: key {key!r} must hold a file path, got {type(value).__name__}")
            d[key] = load_volume(value, self.slice_axis)
        return d
