"""Store 8-bit images as ``uint8`` between the loader workers and the GPU (and in a cache)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["CompactUint8d", "compact_uint8"]


def compact_uint8(img: Any, min_levels: float = 64.0) -> Any:
    """``img`` rounded to ``uint8`` when its values lie in [0, 255] and span at least ``min_levels``; else ``img``.

    A decoded 8-bit JPEG or PNG (kept in float32 by the loaders, maybe resized) comes back as ``uint8``: a
    quarter of the memory in a cache and in the copy to the GPU, at most half a gray level of rounding
    (after a resize; none without). Anything else is returned unchanged: 16-bit or DICOM values above
    255, negative values, and images in [0, 1] or with fewer than ``min_levels`` levels, where rounding
    would lose information. The intensity scaling to [0, 1] happens afterwards, on the device.
    """
    if isinstance(img, MetaTensor):
        img = img.as_tensor()
    if not isinstance(img, (torch.Tensor, np.ndarray)) or img.dtype in (torch.uint8, np.uint8):
        return img
    t = torch.as_tensor(img)
    if t.numel() == 0 or t.is_complex():
        return img
    low, high = float(t.min()), float(t.max())
    if low < 0.0 or high > 255.0 or high - low < min_levels:
        return img
    return t.round().to(torch.uint8)


class CompactUint8d(MapTransform):
    """Dictionary version of :func:`compact_uint8`; other entries pass through unchanged.

    Args:
        keys: keys of the images.
        min_levels: the least value span that is rounded to ``uint8``.
        allow_missing_keys: do not raise when a key is absent.
    """

    def __init__(self, keys: KeysCollection = "image", min_levels: float = 64.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.min_levels = float(min_levels)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = compact_uint8(d[key], self.min_levels)
        return d
