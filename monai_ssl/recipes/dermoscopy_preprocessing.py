"""The preprocessing of the dermoscopy (ISIC) bundle: one chain for training, one for evaluation and inference.

Training caches each image and mask resized to ``working_size`` as 8-bit, then takes a random
``patch_size`` crop with rotations and flips (the augmentation of Luo et al., MIDL 2022, for
cross-teaching). Evaluation, the validation inside training and inference share the deterministic
chain: the image is resized to ``working_size`` while the mask stays at the image's original size, so
that a prediction brought back with ``Invertd`` (:func:`~monai_ssl.recipes.lesion_postprocessing`) is
scored at full resolution, as ``evaluate.json`` reports it.
"""

from __future__ import annotations

import torch
from monai.transforms import (
    CastToTyped,
    Compose,
    CopyItemsd,
    EnsureTyped,
    RandFlipd,
    RandRotate90d,
    RandRotated,
    RandSpatialCropd,
    Resized,
)

from monai_ssl.transforms import BinarizeMaskd, LoadDermoscopyd, dermoscopy_intensity

__all__ = ["dermoscopy_evaluation_transforms", "dermoscopy_training_transforms"]

IMAGE_AND_MASK = ["image", "label"]
MAX_ROTATION = 0.35  # radians, about 20 degrees


def _checked_size(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"`{name}` must be a positive whole number of pixels, got {value!r}.")
    return int(value)


def dermoscopy_training_transforms(working_size: int, patch_size: int, normalize_red_channel: bool = False) -> Compose:
    """The training chain; images without a mask (the unlabeled stream) pass through it too.

    Deterministic and cached by a ``CacheDataset``: load (RGB image, one-channel mask), binarize the mask,
    resize both to ``working_size`` (bilinear / nearest), keep them as uint8. Random: a ``patch_size`` crop,
    90-degree rotations, flips along both axes, a rotation of up to ±0.35 rad; then intensities to [0, 1]
    (and the red-channel normalisation when asked) and float32 tensors without metadata.

    Raises:
        ValueError: a size that is not a positive whole number, or ``patch_size > working_size``.
    """
    working, patch = _checked_size("working_size", working_size), _checked_size("patch_size", patch_size)
    if patch > working:
        raise ValueError(f"`patch_size` ({patch}) must not exceed `working_size` ({working}).")
    keys = {"keys": IMAGE_AND_MASK, "allow_missing_keys": True}
    return Compose([
        LoadDermoscopyd(),
        BinarizeMaskd(keys="label", allow_missing_keys=True),
        Resized(spatial_size=[working, working], mode=["bilinear", "nearest"], **keys),
        CastToTyped(dtype=torch.uint8, **keys),
        RandSpatialCropd(roi_size=[patch, patch], random_size=False, **keys),
        RandRotate90d(prob=0.5, **keys),
        RandFlipd(prob=0.5, spatial_axis=0, **keys),
        RandFlipd(prob=0.5, spatial_axis=1, **keys),
        RandRotated(range_x=MAX_ROTATION, prob=0.5, mode=["bilinear", "nearest"], padding_mode="zeros", **keys),
        *dermoscopy_intensity(normalize_red_channel),
        EnsureTyped(dtype=torch.float32, track_meta=False, **keys),
    ])


def dermoscopy_evaluation_transforms(working_size: int, normalize_red_channel: bool = False, labeled: bool = True) -> Compose:
    """The deterministic chain of evaluation, of the validation inside training and of inference.

    Load the image (and, when ``labeled``, its mask, binarized, with a copy of the original image as
    ``image_original`` for the report's pictures), resize the image alone to ``working_size`` (bilinear,
    recorded so that ``Invertd`` can undo it) and scale its intensities. The first transform is the file
    loader, so ``Compose(chain.transforms[1:])`` applies the rest to images already in memory.

    Raises:
        ValueError: ``working_size`` is not a positive whole number.
    """
    working = _checked_size("working_size", working_size)
    loader = LoadDermoscopyd() if labeled else LoadDermoscopyd(label_key=None)
    mask = [BinarizeMaskd(keys="label"), CopyItemsd(keys="image", names="image_original")] if labeled else []
    return Compose([
        loader,
        *mask,
        Resized(keys="image", spatial_size=[working, working], mode="bilinear"),
        *dermoscopy_intensity(normalize_red_channel),
    ])
