"""Lesion masks as {0, 1}: thresholding masks that are not exactly 0/255, with a per-process count."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["BinarizeMaskd", "binarize_mask", "log_mask_threshold_summary", "mask_threshold_summary", "reset_mask_threshold_summary"]

logger = logging.getLogger("monai_ssl")

_thresholded_count = 0
_first_thresholded: str | None = None


def mask_threshold_summary() -> tuple[int, str | None]:
    """``(count, first file)`` of the masks this process thresholded because they were not exactly binary.

    Each DataLoader worker process keeps its own count.
    """
    return _thresholded_count, _first_thresholded


def log_mask_threshold_summary(*datasets: object) -> int:
    """Log how many masks were thresholded so far in this process (one warning when any were); return the count.

    Call it after the cached datasets are built (pass them, so a bundle config builds them first):
    ``"$monai_ssl.transforms.log_mask_threshold_summary(@train#dataset, @validate#dataset)"``.
    """
    del datasets  # only referenced so that they are built (and their masks read) before the count is taken
    count, first = mask_threshold_summary()
    if count:
        logger.warning(
            "%d lesion mask(s) held values other than 0 and 255 and were thresholded at 128 (first: %s); "
            "save masks as PNG with values 0 and 255 to avoid this.", count, first,
        )
    return count


def reset_mask_threshold_summary() -> None:
    """Forget the thresholded masks (the next one logs its warning again); for tests and new runs."""
    global _thresholded_count, _first_thresholded
    _thresholded_count, _first_thresholded = 0, None


def _record_thresholded(name: str, threshold: float) -> None:
    """Count a thresholded mask; the first one of the process logs a warning."""
    global _thresholded_count, _first_thresholded
    _thresholded_count += 1
    if _first_thresholded is None:
        _first_thresholded = name
        logger.warning(
            "lesion mask %s holds values other than 0 and 255 (e.g. a JPEG-compressed mask); thresholded at >= %g. "
            "Further such masks are thresholded without a warning and counted: see "
            "monai_ssl.transforms.mask_threshold_summary()",
            name, threshold,
        )


def binarize_mask(mask: Any, threshold: float = 128, name: str | None = None) -> Any:
    """Turn a lesion mask into float32 0 (background) / 1 (lesion).

    * only 0 and 1: already binary, kept;
    * only 0 and 255: 255 is lesion;
    * anything else (a JPEG-compressed or resampled mask): ``value >= threshold`` is lesion; the
      mask is counted (see :func:`mask_threshold_summary`) and the first one logs a warning.

    Args:
        mask: a tensor (MetaTensor meta is kept) or numpy array of any shape.
        threshold: the lesion threshold for non-binary masks, in the mask's units.
        name: the mask's name for the warning; default the MetaTensor's ``filename_or_obj``.

    Returns:
        The same kind of container, float32, values exactly 0 and 1.
    """
    if isinstance(mask, torch.Tensor):
        zero, one, full = mask == 0, mask == 1, mask == 255
        if bool((zero | one).all()):
            return one.to(torch.float32)
        if not bool((zero | full).all()):
            meta = mask.meta if isinstance(mask, MetaTensor) else {}
            _record_thresholded(name or str(meta.get("filename_or_obj", "an in-memory mask")), threshold)
        return (mask >= threshold).to(torch.float32)
    array = np.asarray(mask)
    zero, one, full = array == 0, array == 1, array == 255
    if bool((zero | one).all()):
        return one.astype(np.float32)
    if not bool((zero | full).all()):
        _record_thresholded(name or "an in-memory mask", threshold)
    return (array >= threshold).astype(np.float32)


class BinarizeMaskd(MapTransform):
    """Dictionary transform: lesion masks under ``keys`` become float32 0/1 (see :func:`binarize_mask`).

    A mask with values other than 0 and 255 (and not only 0 and 1) is thresholded at
    ``>= threshold``; the first such mask of the process logs one warning naming its file, later
    ones are counted silently (:func:`mask_threshold_summary`).
    """

    def __init__(self, keys: KeysCollection = "label", threshold: float = 128, allow_missing_keys: bool = True) -> None:
        """Set up the transform.

        Args:
            keys: the mask keys.
            threshold: the lesion threshold for non-binary masks (0..255 units).
            allow_missing_keys: items without a mask (unlabeled images) pass unchanged.
        """
        super().__init__(keys, allow_missing_keys)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 255:
            raise ValueError(f"BinarizeMaskd: threshold must be a number in (0, 255], got {threshold!r}")
        self.threshold = float(threshold)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Binarize every mask under ``keys``."""
        d = dict(data)
        for key in self.key_iterator(d):
            name = None if isinstance(d[key], MetaTensor) else f"{key!r} of item {d.get('id', '(no id)')!r}"
            d[key] = binarize_mask(d[key], self.threshold, name=name)
        return d


