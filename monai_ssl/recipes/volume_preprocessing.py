"""The loader's transforms of BYOLMed2D knee-MRI exams, named once for pre-training, fine-tuning, evaluation and inference.

An exam is a ``(slices, H, W)`` volume (MRNet ``.npy``, NIfTI, DICOM). Every config of the
``byolmed2d`` bundle names one of these two functions, so the validation inside ``finetune.json``,
``evaluate.json``, ``inference.json`` and MONAI Label (which serves ``inference.json``) apply the very
same evaluation preprocessing, and the two BYOL view paths of ``train.json`` differ only where they must.
As in the BYOLMed2D thesis, an exam is 16 slices in slice order (random distinct slices in training,
evenly spaced in evaluation; :class:`~monai_ssl.transforms.SampleSlicesd`) with intensities scaled to
[0, 1], each slice resized to ``image_size`` (area interpolation); fine-tuning adds a light
augmentation: a left-right flip (p 0.5) and a rotation of up to 15 degrees (p 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from monai.transforms import Compose, EnsureTyped, RandFlipd, RandRotated, Resized, ScaleIntensityd

from monai_ssl.transforms import CompactUint8d, LoadVolumed, SampleSlicesd

from .byol_views import view_transforms
from .pretraining import pretraining_views

__all__ = ["FINE_TUNING_ROTATION", "volume_transforms", "volume_view_transforms"]

FINE_TUNING_ROTATION = round(math.radians(15), 2)  # 0.26 rad: the largest in-plane rotation of fine-tuning


def _check_sizes(num_slices: int, image_size: int) -> None:
    """Refuse sizes that cannot make an exam tensor (naming the setting)."""
    for name, value in (("num_slices", num_slices), ("image_size", image_size)):
        if int(value) < 1:
            raise ValueError(f"`{name}` must be a positive number of voxels, got {value!r}.")


def volume_view_transforms(
    views_on_device: bool,
    num_slices: int,
    image_size: int,
    byol_plus: bool = False,
    method_settings: Mapping[str, Any] | None = None,
) -> Compose:
    """The pre-training loader's transforms: an exam's views (BYOL's two by default), or their parameters.

    Both paths read the exam and sample ``num_slices`` random distinct slices (one view applies the same
    sampled parameters to every slice). In the workers (``views_on_device=False``) the intensities are
    scaled to [0, 1] and :class:`~monai_ssl.transforms.BYOLViewsd` makes ``view1``/``view2`` at
    ``image_size``; on the device the exam stays ``uint8`` (:class:`~monai_ssl.transforms.CompactUint8d`)
    and :class:`~monai_ssl.transforms.BYOLViewParamsd` draws ``view1_params``/``view2_params`` for
    :class:`~monai_ssl.engines.DeviceViews` (see :mod:`monai_ssl.recipes.byol_views`).

    Args:
        views_on_device: the views are made on the training device (``--views gpu``/``batched``).
        num_slices: slices per exam (16).
        image_size: side of the views (224).
        byol_plus: add BYOL+'s cutout, contrast and brightness to the views.
        method_settings: the pre-training method's settings (:func:`~monai_ssl.recipes.method_settings`): its
            views (DINO's multi-crop: every crop takes the same region of every slice) instead of BYOL's.

    Raises:
        ValueError: ``num_slices`` or ``image_size`` below 1.
    """
    _check_sizes(num_slices, image_size)
    settings = method_settings or {"method": "byol_plus" if byol_plus else "byol"}
    load = LoadVolumed(keys="image")
    slices = SampleSlicesd(keys="image", num_slices=int(num_slices), random_sampling=True)
    on_device = [load, CompactUint8d(keys="image"), slices, pretraining_views(settings, image_size, on_device=True)]
    in_workers = [load, slices, ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
                  pretraining_views(settings, image_size, on_device=False)]
    return Compose(view_transforms(views_on_device, on_device, in_workers))


def volume_transforms(num_slices: int, image_size: int, augment: bool = False) -> Compose:
    """An exam as the classifier takes it: ``image`` ``(1, num_slices, image_size, image_size)`` in [0, 1].

    ``augment=False`` (validation, evaluation, inference) takes evenly spaced slices and nothing random,
    so an exam always gives the same tensor; ``label`` is passed on when present (inference has none).
    ``augment=True`` (fine-tuning) samples random slices and adds a flip along the image width and a
    rotation of up to :data:`FINE_TUNING_ROTATION` radians.

    Args:
        num_slices: slices per exam (16).
        image_size: side of each slice after resizing (224).
        augment: the fine-tuning augmentation instead of the deterministic evaluation path.

    Raises:
        ValueError: ``num_slices`` or ``image_size`` below 1.
    """
    _check_sizes(num_slices, image_size)
    transforms = [
        LoadVolumed(keys="image"),
        SampleSlicesd(keys="image", num_slices=int(num_slices), random_sampling=augment),
        ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
        Resized(keys="image", spatial_size=(-1, int(image_size), int(image_size)), mode="area"),
    ]
    if augment:
        transforms += [
            RandFlipd(keys="image", prob=0.5, spatial_axis=2),
            RandRotated(keys="image", range_x=FINE_TUNING_ROTATION, prob=0.5, padding_mode="zeros"),
        ]
    return Compose([*transforms, EnsureTyped(keys=("image", "label"), track_meta=False, allow_missing_keys=True)])
