"""Normalisation of the red channel of RGB dermoscopy images."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["NormalizeRedChanneld", "dermoscopy_intensity", "normalize_red_channel", "normalize_red_channel_batch"]

def normalize_red_channel(image: Any, eps: float = 1e-6, name: str | None = None) -> Any:
    """Standardize the red channel of a channel-first RGB image; green and blue are kept.

    ``R' = (R - mean(R)) / max(std(R), eps)`` over the image's pixels (population std), so the
    red channel has zero mean and unit standard deviation (a constant red channel becomes 0).

    Args:
        image: a float tensor (MetaTensor meta kept) or numpy array ``(3, ...)``.
        eps: the smallest standard deviation divided by.
        name: the image's name for errors.

    Returns:
        A float32 copy of the same kind.

    Raises:
        ValueError: not three channels.
    """
    if image.shape[0] != 3:
        file = str(image.meta.get("filename_or_obj", "")) if isinstance(image, MetaTensor) else ""
        label = file or name or "the image"
        raise ValueError(
            f"normalize_red_channel: {label} has shape {tuple(image.shape)}; expected 3 channels first (RGB)"
        )
    if isinstance(image, torch.Tensor):
        out = image.to(torch.float32).clone()
        red = out[0].double()
        out[0] = ((red - red.mean()) / max(float(red.std(unbiased=False)), eps)).to(torch.float32)
        return out
    out = np.array(image, dtype=np.float32, copy=True)
    red = out[0].astype(np.float64)
    out[0] = (red - red.mean()) / max(float(red.std()), eps)
    return out


def normalize_red_channel_batch(images: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """:func:`normalize_red_channel` of every image of a batch at once, on the batch's device.

    The views-on-device path's step (``DeviceViews(normalize_red=True)``, ``MultiCropDeviceViews``): per image,
    ``R' = (R - mean(R)) / max(std(R), eps)`` over its pixels (population std, computed in float64 as the
    per-image function does); green and blue are kept.

    Args:
        images: a float batch ``(B, 3, ...)`` (images or volumes), channel 0 red.
        eps: the smallest standard deviation divided by (the same default as :class:`NormalizeRedChanneld`).

    Returns:
        A new tensor of the batch's dtype and device.

    Raises:
        ValueError: not a batch of 3-channel images.
    """
    if images.ndim < 3 or images.shape[1] != 3:
        raise ValueError(f"normalize_red_channel_batch: the batch has shape {tuple(images.shape)}; expected "
                         "(batch, 3 channels RGB, spatial...)")
    red = images[:, 0].double().flatten(1)
    mean = red.mean(dim=1, keepdim=True)
    std = red.std(dim=1, unbiased=False, keepdim=True).clamp(min=eps)
    out = images.clone()
    out[:, 0] = ((red - mean) / std).to(images.dtype).view_as(images[:, 0])
    return out


class NormalizeRedChanneld(MapTransform):
    """Dictionary transform: standardize the red channel of RGB dermoscopy images (see :func:`normalize_red_channel`).

    Reference: D. N. H. Thanh, N. H. Hai, L. M. Hieu, P. Tiwari and V. B. S. Prasath, "Skin lesion
    segmentation method for dermoscopic images with convolutional neural networks and semantic
    segmentation" (U-Net with a VGG-16 encoder on ISIC images), named by the cross-teaching
    bundle's design for a red-channel normalization of RGB dermoscopy. We could not read the
    paper's description of that step (only its abstract was reachable), so this transform is our
    reading: per image, the red channel gets zero mean and unit standard deviation
    (epsilon-guarded), green and blue keep their values. The standardized red channel does not
    depend on an earlier linear intensity scaling, so it may come before or after
    ``ScaleIntensityRanged``; it is an option, not part of the default ISIC pipeline.
    """

    def __init__(self, keys: KeysCollection = "image", eps: float = 1e-6, allow_missing_keys: bool = False) -> None:
        """Set up the transform.

        Args:
            keys: the image keys (channel-first RGB).
            eps: the smallest standard deviation divided by.
            allow_missing_keys: do not raise when a key is absent.
        """
        super().__init__(keys, allow_missing_keys)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"NormalizeRedChanneld: eps must be a positive number, got {eps!r}")
        self.eps = float(eps)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Normalize every image under ``keys``."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = normalize_red_channel(d[key], self.eps, name=f"{key!r} of item {d.get('id', '(no id)')!r}")
        return d


def dermoscopy_intensity(normalize_red_channel: bool = False, keys: KeysCollection = "image") -> list[MapTransform]:
    """The intensity transforms of the dermoscopy bundles: 0-255 to 0-1, then optionally
    :class:`NormalizeRedChanneld` (the ``normalize_red_channel`` setting)."""
    from monai.transforms import ScaleIntensityRanged

    transforms: list[MapTransform] = [ScaleIntensityRanged(keys=keys, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True)]
    if normalize_red_channel:
        transforms.append(NormalizeRedChanneld(keys=keys))
    return transforms
