"""Load a 2D image (JPEG, PNG, DICOM file or an in-memory array) as a channel-first ``(C, H, W)`` tensor.

Image-folder datasets such as OCT2017 mix grayscale and colour files, and MedMNIST items are
numpy arrays ``(H, W)`` or ``(H, W, 3)``; :class:`LoadImage2Dd` turns all of them into float32
MetaTensors with a fixed channel count, in the source's intensity units (no scaling):

* colour to grayscale: ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``;
* grayscale to colour: the one channel repeated three times;
* an alpha channel (RGBA, LA, palette with transparency) is dropped;
* 16-bit grayscale PNGs keep their 0..65535 values; DICOM gives the stored ``pixel_array``
  values (no rescale slope/intercept, no MONOCHROME1 inversion).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["LoadImage2Dd", "load_image_2d"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)  # ITU-R BT.601; float64 keeps gray RGB exact
_DICOM_SUFFIXES = (".dcm", ".dicom")
_GRAY_MODES = ("1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _check_channels(channels: int) -> int:
    """Validate the requested channel count (1 or 3)."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return int(channels)


def _read_pil(path: str) -> np.ndarray:
    """Pixels of a PIL-readable file as ``(H, W)`` or ``(H, W, 3)`` (alpha dropped, first frame only)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode in _GRAY_MODES or mode == "RGB":
            return np.asarray(image)
        if mode == "LA":
            return np.asarray(image)[..., 0]
        if mode == "RGBA":
            return np.asarray(image)[..., :3]
        if mode in ("P", "PA"):
            return np.asarray(image.convert("RGBA"))[..., :3]
        return np.asarray(image.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, ...


def _read_dicom(path: str) -> np.ndarray:
    """Stored pixel values of a single-frame DICOM image as ``(H, W)`` or ``(H, W, 3)``."""
    import pydicom

    dataset = pydicom.dcmread(path)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"multi-frame DICOM with {frames} frames; expected a single 2D image")
    return np.asarray(dataset.pixel_array)


def _read_file(path: str) -> np.ndarray:
    """Read an image file by its suffix, wrapping every failure in a ``ValueError`` naming it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"unreadable image {path}: empty file (0 bytes)")
    reader = _read_dicom if Path(path).suffix.lower() in _DICOM_SUFFIXES else _read_pil
    try:
        return reader(path)
    except Exception as err:  # noqa: BLE001 - PIL and pydicom raise many types for a bad file
        raise ValueError(f"unreadable image {path} ({type(err).__name__}: {err})") from err


def _to_channels(array: np.ndarray, channels: int, name: str) -> np.ndarray:
    """Turn ``(H, W)`` or channel-last ``(H, W, 1|3|4)`` into float32 ``(channels, H, W)``."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"image {name} has dtype {array.dtype}; expected numbers")
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., 0] if array.shape[-1] == 1 else array[..., :3]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)) or 0 in array.shape:
        raise ValueError(
            f"image {name} has shape {tuple(array.shape)}; expected a 2D image (H, W) or channel-last "
            "(H, W, 3) / (H, W, 4)"
        )
    if array.ndim == 2:
        gray = array.astype(np.float32)[None]
        return np.repeat(gray, 3, axis=0) if channels == 3 else gray
    if channels == 1:
        return (array.astype(np.float64) @ _LUMA).astype(np.float32)[None]
    return np.moveaxis(array, -1, 0).astype(np.float32)


def load_image_2d(
    source: str | os.PathLike | np.ndarray | torch.Tensor, channels: int = 1, name: str | None = None
) -> MetaTensor:
    """Load one 2D image as a float32 ``(channels, H, W)`` MetaTensor, without intensity scaling.

    Args:
        source: a file path (``.dcm``/``.dicom`` through pydicom, anything else through PIL:
            JPEG, PNG, BMP, TIFF, ...), or an in-memory array or tensor ``(H, W)``, ``(H, W, 1)``,
            ``(H, W, 3)`` or ``(H, W, 4)`` (channel-last, as MedMNIST stores them).
        channels: 1 (grayscale) or 3 (RGB); see the module docstring for the conversions.
        name: how an in-memory image is named in error messages (e.g. its datalist id).

    Returns:
        The image; ``meta["filename_or_obj"]`` is the path for files (no such entry for arrays).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable or empty file, multi-frame DICOM, wrong shape or dtype, bad
            ``channels``; the message names the file (or ``name``).
        TypeError: ``source`` is neither a path nor an array.
    """
    channels = _check_channels(channels)
    meta: dict[str, Any] = {}
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        array, label = _read_file(path), path
        meta["filename_or_obj"] = path
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        array = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else source
        label = name or f"array of shape {tuple(array.shape)}"
    else:
        raise TypeError(f"expected an image file path or a numpy array / tensor, got {type(source).__name__}")
    data = _to_channels(np.asarray(array), channels, label)
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(data)), meta=meta)


class LoadImage2Dd(MapTransform):
    """Dictionary transform: replace paths or arrays under ``keys`` by float32 ``(channels, H, W)`` images.

    See :func:`load_image_2d` for formats, channel conversion and errors.

    Example::

        LoadImage2Dd(keys="image", channels=1)({"image": "OCT2017/train/CNV/CNV-1016042-1.jpeg"})["image"].shape
        # torch.Size([1, 496, 512])
    """

    def __init__(self, keys: KeysCollection = "image", channels: int = 1, allow_missing_keys: bool = False) -> None:
        """Set up the transform.

        Args:
            keys: keys whose values are image file paths or channel-last arrays.
            channels: 1 (grayscale) or 3 (RGB) output channels.
            allow_missing_keys: do not raise when a key is absent.
        """
        super().__init__(keys, allow_missing_keys)
        self.channels = _check_channels(channels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Load every entry under ``keys``; other entries are passed through unchanged."""
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            if not isinstance(value, (str, os.PathLike, np.ndarray, torch.Tensor)):
                kind = type(value).__name__
                raise TypeError(f"LoadImage2Dd: key {key!r} must hold an image file path or a numpy array, got {kind}")
            name = f"{key!r} of item {d['id']!r}" if "id" in d else None
            d[key] = load_image_2d(value, self.channels, name=name)
        return d
