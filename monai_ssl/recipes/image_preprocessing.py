"""The loader's transforms of 2D images (OCT B-scans, MedMNIST, any image folder), named once for every config.

Every config of the ``oct_byol_pseudolabel`` bundle names one of these two functions: the validation
inside ``finetune.json`` (and the pseudo-label scoring, which reuses it), ``evaluate.json``,
``inference.json`` and MONAI Label apply the very same evaluation preprocessing. An image is read as
``in_channels`` channels (:class:`~monai_ssl.transforms.LoadImage2Dd` converts grayscale and RGB),
scaled to [0, 1] and resized to ``image_size`` x ``image_size`` (area interpolation); fine-tuning adds
a light augmentation (our choice): a left-right flip (p 0.5) and a rotation of up to 10 degrees (p 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from monai.transforms import Compose, DeleteItemsd, EnsureTyped, RandFlipd, RandRotated, Resized, ScaleIntensityd

from monai_ssl.transforms import CompactUint8d, LoadImage2Dd

from .byol_views import view_transforms, working_spatial_size
from .pretraining import pretraining_views

__all__ = ["FINE_TUNING_ROTATION", "image_transforms", "image_view_transforms"]

FINE_TUNING_ROTATION = round(math.radians(10), 2)  # 0.17 rad: the largest rotation of fine-tuning


def _check(in_channels: int, image_size: int) -> None:
    """Refuse settings that cannot make an image tensor (naming the setting)."""
    if int(in_channels) not in (1, 3):
        raise ValueError(f"`in_channels` must be 1 (grayscale) or 3 (RGB), got {in_channels!r}.")
    if int(image_size) < 1:
        raise ValueError(f"`image_size` must be a positive number of pixels, got {image_size!r}.")


def image_view_transforms(
    views_on_device: bool,
    in_channels: int,
    image_size: int,
    byol_plus: bool = False,
    working_size: int | None = 0,
    method_settings: Mapping[str, Any] | None = None,
) -> Compose:
    """The pre-training loader's transforms: an image's views (BYOL's two by default), or their parameters.

    Labels are dropped (BYOL uses none). In the workers (``views_on_device=False``) the image is scaled to
    [0, 1] and :class:`~monai_ssl.transforms.BYOLViewsd` makes ``view1``/``view2`` at ``image_size``. On the
    device, the workers resize the image to ``working_size`` x ``working_size`` (0 or ``None``: each image
    keeps its own size), keep it ``uint8`` and draw ``view1_params``/``view2_params``
    (:class:`~monai_ssl.transforms.BYOLViewParamsd`) for :class:`~monai_ssl.engines.DeviceViews`.

    Args:
        views_on_device: the views are made on the training device (``--views gpu``/``batched``).
        in_channels: 1 (grayscale) or 3 (RGB).
        image_size: side of the views (224).
        byol_plus: add BYOL+'s cutout, contrast and brightness to the views.
        working_size: side the workers resize to before the device views; 0 or ``None`` keeps each image's size.
        method_settings: the pre-training method's settings (:func:`~monai_ssl.recipes.method_settings`): its
            views (DINO's multi-crop, CASS's one view) instead of BYOL's; ``byol_plus`` is then unused.

    Raises:
        ValueError: ``in_channels`` other than 1 or 3, ``image_size`` below 1.
    """
    _check(in_channels, image_size)
    settings = method_settings or {"method": "byol_plus" if byol_plus else "byol"}
    load = LoadImage2Dd(keys="image", channels=int(in_channels))
    no_label = DeleteItemsd(keys="label")
    on_device = [load, Resized(keys="image", spatial_size=working_spatial_size(working_size), mode="area"),
                 CompactUint8d(keys="image"), pretraining_views(settings, image_size, on_device=True), no_label]
    in_workers = [load, ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
                  pretraining_views(settings, image_size, on_device=False), no_label]
    return Compose(view_transforms(views_on_device, on_device, in_workers))


def image_transforms(in_channels: int, image_size: int, augment: bool = False) -> Compose:
    """An image as the classifier takes it: ``image`` ``(in_channels, image_size, image_size)`` in [0, 1].

    ``augment=False`` (validation, evaluation, inference, pseudo-label scoring) is deterministic; ``label``
    is passed on when present (inference has none). ``augment=True`` (fine-tuning) adds a flip along the
    image width and a rotation of up to :data:`FINE_TUNING_ROTATION` radians.

    Args:
        in_channels: 1 (grayscale) or 3 (RGB).
        image_size: side after resizing (224).
        augment: the fine-tuning augmentation instead of the deterministic evaluation path.

    Raises:
        ValueError: ``in_channels`` other than 1 or 3, ``image_size`` below 1.
    """
    _check(in_channels, image_size)
    transforms = [
        LoadImage2Dd(keys="image", channels=int(in_channels)),
        ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
        Resized(keys="image", spatial_size=(int(image_size), int(image_size)), mode="area"),
    ]
    if augment:
        transforms += [
            RandFlipd(keys="image", prob=0.5, spatial_axis=1),
            RandRotated(keys="image", range_x=FINE_TUNING_ROTATION, prob=0.5, padding_mode="zeros"),
        ]
    return Compose([*transforms, EnsureTyped(keys=("image", "label"), track_meta=False, allow_missing_keys=True)])
