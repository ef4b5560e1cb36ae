"""The loader's transforms of dermoscopy *classification* (S4MI's skin-lesion experiments), named once for every config.

The pair mirrors :mod:`~monai_ssl.recipes.image_preprocessing` (the OCT pair) for RGB dermoscopy:
:func:`skin_lesion_transforms` for fine-tuning (``augment=True``), validation, evaluation and inference,
:func:`skin_lesion_view_transforms` for self-supervised pre-training.

Defaults follow the classification experiments of S4MI (A. Singh et al., "Shifting to Machine
Supervision: Annotation-Efficient Semi and Self-Supervised Learning for Automatic Medical Image
Segmentation and Classification", as summarised by issue 23): images resized to 480 and then to 224,
a random rotation and flip, and the red-channel normalisation of RGB dermoscopy
(:class:`~monai_ssl.transforms.NormalizeRedChanneld`). The rotation range is not stated there; we take
10 degrees from the authors' CASS fine-tuning code (``CASS.ipynb`` of pranavsinghps1/CASS:
``RandomAffine(degrees=10)`` applied with p 0.3, vertical and horizontal flips with p 0.3); we apply the
rotation and each flip with p 0.5.

Images are read as :func:`~monai_ssl.recipes.dermoscopy_training_transforms` reads them
(:class:`~monai_ssl.transforms.LoadDermoscopyd`: 3 channels whatever the file's mode, values 0..255).
Every chain starts with a deterministic prefix (load, resize, keep 8 bits) and puts every random
transform after it, so a MONAI ``CacheDataset`` (which caches up to the first random transform) keeps
the decoded, resized images and an epoch does not decode 4000-pixel JPEGs again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.transforms import (
    CastToTyped,
    Compose,
    CopyItemsd,
    DeleteItemsd,
    EnsureTyped,
    RandFlipd,
    RandRotated,
    Resized,
    ScaleIntensityRanged,
)

from monai_ssl.transforms import (
    BinarizeMaskd,
    CompactUint8d,
    LoadDermoscopyd,
    NormalizeRedChanneld,
    dermoscopy_intensity,
    multi_crop_view_keys,
)

from .pretraining import pretraining_views

__all__ = ["SKIN_LESION_ROTATION", "skin_lesion_prepare_batch", "skin_lesion_transforms", "skin_lesion_view_transforms"]

SKIN_LESION_ROTATION = math.radians(10)  # the largest fine-tuning rotation (CASS.ipynb: RandomAffine(degrees=10))
IMAGE_AND_MASK = ("image", "mask")


def _checked_sizes(image_size: int, working_size: int) -> tuple[int, int]:
    """``(image_size, working_size)`` as ints; a ValueError naming the setting for anything else."""
    sizes = {}
    for name, value in (("image_size", image_size), ("working_size", working_size)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or int(value) < 1:
            raise ValueError(f"skin-lesion transforms: `{name}` must be a positive whole number of pixels, got {value!r}.")
        sizes[name] = int(value)
    if sizes["working_size"] < sizes["image_size"]:
        raise ValueError(f"skin-lesion transforms: `working_size` ({sizes['working_size']}) must be at least "
                         f"`image_size` ({sizes['image_size']}); S4MI resizes to 480, then to 224.")
    return sizes["image_size"], sizes["working_size"]


def skin_lesion_transforms(image_size: int = 224, working_size: int = 480, augment: bool = False,
                           normalize_red: bool = True, display_key: str | None = None) -> Compose:
    """A dermoscopy image as the classifier takes it: ``image`` float32 ``(3, image_size, image_size)``.

    Cached prefix (deterministic): load the RGB image and, when the item has one, its lesion mask under
    ``mask`` (binarized to {0, 1}); resize both to ``working_size`` and then to ``image_size`` (area for
    the image, nearest for the mask), and keep them as ``uint8``. Then, with ``augment=True``
    (fine-tuning), a flip along each spatial axis (p 0.5 each) and a rotation of up to
    :data:`SKIN_LESION_ROTATION` (p 0.5, zero padding), the mask getting the same flips and rotation
    (nearest) so that it stays aligned with the image. Last, intensities 0..255 to [0, 1] and, when
    ``normalize_red``, the red channel standardized per image; tensors without metadata. ``label``
    (a class index or a multi-hot vector) passes through when present (inference has none).

    The random transforms come after the whole deterministic prefix: a ``CacheDataset`` built with this
    chain caches each image decoded and resized to ``image_size`` as ``uint8``. ``augment=False``
    (validation, evaluation, inference) is deterministic.

    Args:
        image_size: side of the network's input (S4MI: 224).
        working_size: side of the first resize (S4MI: 480), at least ``image_size``.
        augment: the fine-tuning augmentation instead of the deterministic evaluation path.
        normalize_red: standardize the red channel (:class:`~monai_ssl.transforms.NormalizeRedChanneld`).
        display_key: also keep the ``uint8`` image as a person sees it under this key (after any
            augmentation, before the intensity steps), for the pictures of
            :class:`~monai_ssl.handlers.SaliencyWriter`; ``None`` keeps none.

    Returns:
        A MONAI ``Compose`` of dictionary transforms reading ``image`` (and ``mask``) file paths.

    Raises:
        ValueError: a size that is not a positive whole number, or ``working_size < image_size``.
    """
    size, working = _checked_sizes(image_size, working_size)
    keys = {"keys": list(IMAGE_AND_MASK), "allow_missing_keys": True}
    modes = {"mode": ["area", "nearest"]}
    transforms: list[Any] = [
        LoadDermoscopyd(label_key="mask"),
        BinarizeMaskd(keys="mask", allow_missing_keys=True),
        Resized(spatial_size=[working, working], **modes, **keys),
        Resized(spatial_size=[size, size], **modes, **keys),
        CompactUint8d(keys="image"),
        CastToTyped(keys="mask", dtype=torch.uint8, allow_missing_keys=True),
    ]
    if augment:
        transforms += [
            RandFlipd(prob=0.5, spatial_axis=0, **keys),
            RandFlipd(prob=0.5, spatial_axis=1, **keys),
            RandRotated(range_x=SKIN_LESION_ROTATION, prob=0.5, mode=["bilinear", "nearest"], padding_mode="zeros",
                        **keys),
        ]
    if display_key is not None:
        transforms.append(CopyItemsd(keys="image", names=display_key))
    return Compose([
        *transforms,
        *dermoscopy_intensity(normalize_red),
        EnsureTyped(dtype=torch.float32, track_meta=False, **keys),
        EnsureTyped(keys="label", track_meta=False, allow_missing_keys=True),
    ])


def _view_keys(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys :func:`~monai_ssl.recipes.pretraining_views` writes the views under, for ``settings``."""
    name = settings["method"]
    if name in ("byol", "byol_plus"):
        return ("view1", "view2")
    if name == "dino":
        return multi_crop_view_keys(int(settings.get("global_views", 2)), int(settings.get("local_views", 0)))
    return multi_crop_view_keys(1, 0)


def skin_lesion_view_transforms(views_on_device: bool, image_size: int = 224, working_size: int = 480,
                                method_settings: Mapping[str, Any] | None = None,
                                normalize_red: bool = True) -> Compose:
    """The pre-training loader's transforms of dermoscopy images: the method's views, or their parameters.

    Cached prefix: load the RGB image (masks are not read) and resize it to ``working_size`` (area).
    In the workers (``views_on_device=False``) the image is scaled from 0..255 to [0, 1] (cached as
    float32), :func:`~monai_ssl.recipes.pretraining_views` makes the method's views at ``image_size``
    (BYOL: ``view1``/``view2``; DINO: ``view1 .. viewN``, the global views first; CASS: ``view1``) and,
    when ``normalize_red``, each view's red channel is standardized, so pre-training sees the inputs
    fine-tuning sees (after the views, because the views' colour transforms work in [0, 1]). On the
    device, the image is kept ``uint8`` (:class:`~monai_ssl.transforms.CompactUint8d`, a quarter of the
    cache and of the copy to the device) and only the view parameters are drawn; the views, and with
    ``normalize_red`` their red channels, are then made on the device by the trainer's ``prepare_batch``:
    :func:`skin_lesion_prepare_batch` with the same ``normalize_red`` gives it. ``label`` and ``mask``
    are dropped (pre-training uses neither).

    Args:
        views_on_device: the views are made on the training device (``--views gpu``/``batched``).
        image_size: side of the (global) views (224).
        working_size: side of the cached image the views are cropped from (S4MI: 480).
        method_settings: the pre-training method's settings (:func:`~monai_ssl.recipes.method_settings`);
            ``None`` is BYOL.
        normalize_red: standardize the red channel of every view (in the workers, or, with
            ``views_on_device``, by :func:`skin_lesion_prepare_batch` on the device; the chain is then the
            same either way).

    Returns:
        A MONAI ``Compose`` of dictionary transforms reading ``image`` file paths.

    Raises:
        ValueError: a size that is not a positive whole number, or ``working_size < image_size``.
    """
    size, working = _checked_sizes(image_size, working_size)
    settings = method_settings or {"method": "byol"}
    prefix = [LoadDermoscopyd(label_key=None), Resized(keys="image", spatial_size=[working, working], mode="area")]
    dropped = DeleteItemsd(keys=["label", "mask"])
    if views_on_device:
        return Compose([*prefix, CompactUint8d(keys="image"), pretraining_views(settings, size, on_device=True), dropped])
    red = [NormalizeRedChanneld(keys=_view_keys(settings))] if normalize_red else []
    return Compose([
        *prefix,
        ScaleIntensityRanged(keys="image", a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
        pretraining_views(settings, size, on_device=False),
        *red,
        dropped,
    ])


def skin_lesion_prepare_batch(method_settings: Mapping[str, Any] | None, views_on_device: bool,
                              normalize_red: bool = True) -> Callable:
    """The pre-training trainer's ``prepare_batch`` that goes with :func:`skin_lesion_view_transforms`.

    In the workers it is :func:`~monai_ssl.engines.prepare_view_list` (the views, red channel included,
    are made there). On the device it is :class:`~monai_ssl.engines.DeviceViews` (BYOL, BYOL+) or
    :class:`~monai_ssl.engines.MultiCropDeviceViews` (DINO, CASS) with ``normalize_red``, which standardizes
    each view's red channel after its intensity augmentation, as
    :class:`~monai_ssl.transforms.NormalizeRedChanneld` does on the CPU path.

    Args:
        method_settings: the pre-training method's settings; ``None`` is BYOL.
        views_on_device: the views are made on the training device.
        normalize_red: standardize every view's red channel (the value given to
            :func:`skin_lesion_view_transforms`).
    """
    from monai_ssl.engines import DeviceViews, MultiCropDeviceViews, prepare_view_list

    if not views_on_device:
        return prepare_view_list
    method = (method_settings or {"method": "byol"})["method"]
    if method in ("byol", "byol_plus"):
        return DeviceViews(normalize_red=normalize_red)
    return MultiCropDeviceViews(normalize_red=normalize_red)
