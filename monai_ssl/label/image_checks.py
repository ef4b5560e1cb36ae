"""What the server knows about an image file before it trusts it: its size from the header, and whether it decodes.

- :func:`spatial_shape` reads the spatial size from the file's header only (PIL, NIfTI, NRRD, NumPy,
  DICOM), so an image above the server's pixel limit is refused before it is decoded;
- :func:`decode_problem` decodes the whole file, which is what finds a truncated JPEG (its header is
  fine, its pixel data ends early); JPEGs are decoded at 1/8 scale, which still reads every byte;
- :func:`label_problem` checks a mask against its image: readable, and of the image's spatial size;
- :class:`DecodeCache` keeps the answers of :func:`decode_problem` by file size and modification
  time, so the images of a datastore are decoded once, not before every training;
- :func:`require_servable_image` turns the first two into the server's answers (413, 422).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_ssl.utils import atomic_write_text

__all__ = [
    "DecodeCache",
    "decode_problem",
    "label_problem",
    "pixel_count",
    "require_servable_image",
    "size_problem",
    "spatial_shape",
]

logger = logging.getLogger(__name__)

_NIFTI = (".nii", ".nii.gz")
_DICOM = (".dcm", ".dicom")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def spatial_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The spatial size of an image from its header, without decoding the pixels.

    ``(height, width)`` for 2D images (colour channels are not spatial), ``(x, y, z)`` for NIfTI/NRRD
    volumes, the array shape for ``.npy`` (MRNet exams are ``(slices, height, width)``), and
    ``(rows, columns)`` or ``(frames, rows, columns)`` for DICOM.

    Raises:
        OSError, ValueError: the file cannot be read as an image (the message says why).
    """
    path = Path(path)
    suffix = _suffix(path)
    if path.stat().st_size == 0:
        raise ValueError("empty file (0 bytes)")
    if suffix in _NIFTI:
        import nibabel

        return tuple(int(s) for s in nibabel.load(str(path)).header.get_data_shape()[:3])
    if suffix == ".nrrd":
        import nrrd

        return tuple(int(s) for s in nrrd.read_header(str(path))["sizes"])
    if suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        return tuple(int(s) for s in array.shape)
    if suffix in _DICOM:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if "Rows" not in ds or "Columns" not in ds:
            raise ValueError("DICOM file without Rows/Columns (not an image)")
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        return (frames, int(ds.Rows), int(ds.Columns)) if frames > 1 else (int(ds.Rows), int(ds.Columns))
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return (height, width)


def pixel_count(path: str | os.PathLike) -> int:
    """The number of pixels (voxels) of an image, from its header."""
    return int(np.prod(spatial_shape(path), dtype=np.int64))


def size_problem(path: str | os.PathLike, max_megapixels: float) -> str | None:
    """Why an image is above ``max_megapixels`` (from its header), or ``None``."""
    count = pixel_count(path)
    if count > max_megapixels * 1e6:
        return f"{count / 1e6:.1f} megapixels, above the server's limit of {max_megapixels:g} (--conf max_megapixels)"
    return None


def decode_problem(path: str | os.PathLike) -> str | None:
    """Decode the whole image; ``None`` when it decodes, otherwise a short description of the problem."""
    path = Path(path)
    suffix = _suffix(path)
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        if suffix in _NIFTI:
            import nibabel

            np.asarray(nibabel.load(str(path)).dataobj)
        elif suffix == ".nrrd":
            import nrrd

            nrrd.read(str(path))
        elif suffix == ".npy":
            np.load(path, allow_pickle=False)
        elif suffix in _DICOM:
            import pydicom

            ds = pydicom.dcmread(path)
            if "PixelData" not in ds:
                return "DICOM file without pixel data (not an image)"
        else:
            from PIL import Image

            with Image.open(path) as image:
                if image.format == "JPEG":
                    image.draft(image.mode, (max(1, image.size[0] // 8), max(1, image.size[1] // 8)))
                image.load()
    except Exception as err:  # noqa: BLE001 - every reader raises its own types for a bad file
        return f"not a readable image ({type(err).__name__}: {err})"
    return None


def require_servable_image(path: str | os.PathLike, max_megapixels: float, what: str, decode: bool = True) -> None:
    """Check an image before the server works on it; the message names ``what``, never the server's path.

    Raises:
        TooLarge: above ``max_megapixels`` (read from the header, before decoding).
        Unprocessable: no readable header, or (with ``decode``) pixel data that does not decode.
    """
    from monai_ssl.label.errors import TooLarge, Unprocessable

    try:
        problem = size_problem(path, max_megapixels)
    except Exception as err:  # noqa: BLE001 - the header does not read: not an image
        raise Unprocessable(f"{what} is not a readable image ({type(err).__name__}).") from err
    if problem:
        raise TooLarge(f"{what} is {problem}.")
    problem = decode_problem(path) if decode else None
    if problem:
        raise Unprocessable(f"{what} is {problem.replace(str(path), '<image>')}.")


def label_problem(image: str | os.PathLike, label: str | os.PathLike) -> str | None:
    """Why ``label`` is not a usable mask of ``image``: unreadable, or of another spatial size; else ``None``."""
    try:
        label_shape = spatial_shape(label)
    except Exception as err:  # noqa: BLE001
        return f"the label is not a readable image ({type(err).__name__}: {err})"
    try:
        image_shape = spatial_shape(image)
    except Exception as err:  # noqa: BLE001
        return f"the image is not readable ({type(err).__name__}: {err})"
    if tuple(label_shape) != tuple(image_shape):
        return f"the label is {'x'.join(map(str, label_shape))}, its image {'x'.join(map(str, image_shape))}"
    return decode_problem(label)


class DecodeCache:
    """:func:`decode_problem` answers kept in a JSON file, keyed by path, size and modification time.

    Args:
        path: the cache file (written atomically on :meth:`save`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._entries: dict[str, Any] = {}
        self._dirty = False
        try:
            loaded = json.loads(self.path.read_text())
            self._entries = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self._entries = {}

    def problem(self, path: str | os.PathLike) -> str | None:
        """The decode problem of ``path`` (decoded only when new or changed since the last check)."""
        try:
            stat = os.stat(path)
        except OSError as err:
            return f"cannot be opened ({err.strerror})"
        key = str(path)
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self._entries.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            return entry.get("problem")
        problem = decode_problem(path)
        self._entries[key] = {"stamp": stamp, "problem": problem}
        self._dirty = True
        return problem

    def save(self) -> None:
        """Write the cache when it changed (a failure to write is logged, never fatal)."""
        if not self._dirty:
            return
        try:
            atomic_write_text(json.dumps(self._entries), self.path)
            self._dirty = False
        except OSError as err:
            logger.warning("could not write the image check cache %s: %s", self.path, err)
