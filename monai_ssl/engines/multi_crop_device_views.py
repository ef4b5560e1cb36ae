"""``MultiCropDeviceViews``: a ``prepare_batch`` that makes any number of views on the training device."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch

from monai_ssl.engines.device_views import finish_view, images_on_device
from monai_ssl.transforms.batched_views import apply_view_params
from monai_ssl.transforms.multi_crop_params import multi_crop_param_keys

__all__ = ["MultiCropDeviceViews"]


class MultiCropDeviceViews:
    """Move a batch of decoded images to the device and make every requested view there, batched.

    The device path of DINO's multi-crop (Caron et al. 2021, Section 3.1): the loader workers read the
    images and draw each view's parameters with :class:`~monai_ssl.transforms.MultiCropViewParamsd`;
    this callable, given to :class:`~monai_ssl.engines.SelfSupervisedTrainer` as ``prepare_batch``, copies
    the images once (``non_blocking`` from pinned memory), scales each one to [0, 1] as
    ``ScaleIntensityd(minv=0, maxv=1)`` does on the CPU path, and makes the views the trainer asks for
    (its ``view_keys``, in that order) with one :func:`~monai_ssl.transforms.apply_view_params` per view,
    so global and local views each come out at their own size. The view of key ``k`` reads the
    parameters under ``f"{k}{param_keys_suffix}"``. The parameter vectors stay on the host.

    Images may arrive as ``uint8`` or float. With ``normalize_red`` (RGB dermoscopy) each view's red channel
    is standardized per image after its intensity augmentation, as
    :class:`~monai_ssl.transforms.NormalizeRedChanneld` does after the views on the CPU path.

    Args:
        image_key: key of the images, ``(B, C, H, W)`` or volumes ``(B, C, S, H, W)``.
        view_keys: the views to make when the caller passes none (the SSL trainer passes its method's).
        param_keys_suffix: suffix that makes a view key its parameter key.
        scale_intensity: min-max scale each image (volume) to [0, 1] first; turn off for images already in [0, 1].
        normalize_red: standardize the red channel of every view
            (:func:`~monai_ssl.transforms.normalize_red_channel_batch`; 3-channel images only).

    Example::

        prepare = MultiCropDeviceViews()
        views = prepare(batch, "cuda", view_keys=("view1", "view2", "view3"))  # [(B, C, 224, 224), ..., (B, C, 96, 96)]
    """

    def __init__(
        self,
        image_key: Hashable = "image",
        view_keys: Sequence[str] = ("view1", "view2"),
        param_keys_suffix: str = "_params",
        scale_intensity: bool = True,
        normalize_red: bool = False,
    ) -> None:
        if len(view_keys) < 1:
            raise ValueError("MultiCropDeviceViews: view_keys must name at least one view.")
        self.image_key = image_key
        self.view_keys = tuple(view_keys)
        self.param_keys_suffix = param_keys_suffix
        self.scale_intensity = scale_intensity
        self.normalize_red = bool(normalize_red)

    def __call__(
        self,
        batchdata: dict[Hashable, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        view_keys: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> list[torch.Tensor]:
        """The views of a collated batch under ``view_keys`` (default: the constructor's), in order, on ``device``.

        ``kwargs`` (the trainer's ``to_kwargs``) are accepted and not needed.

        Raises:
            KeyError: the batch lacks the image or a parameter key (the message names the keys present).
        """
        keys = self.view_keys if view_keys is None else tuple(view_keys)
        param_keys = multi_crop_param_keys(keys, self.param_keys_suffix)
        missing = [k for k in (self.image_key, *param_keys) if k not in batchdata]
        if missing:
            raise KeyError(
                f"views on the device need {missing} in the batch (keys present: {sorted(map(str, batchdata))}); the "
                f"loader transforms must end with monai_ssl.transforms.MultiCropViewParamsd(keys={self.image_key!r}) "
                f"drawing the views {keys}."
            )
        images = images_on_device(batchdata[self.image_key], device, non_blocking, self.scale_intensity)
        return [finish_view(apply_view_params(images, torch.as_tensor(batchdata[k])), self.normalize_red)
                for k in param_keys]
