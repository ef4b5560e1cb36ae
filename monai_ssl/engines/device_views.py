"""``DeviceViews``: a BYOL trainer's ``prepare_batch`` that makes both views on the training device."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any

import torch

from monai_ssl.transforms.batched_views import apply_view_params, scale_intensity_batch
from monai_ssl.transforms.red_channel import normalize_red_channel_batch

__all__ = ["DeviceViews", "finish_view", "images_on_device", "views_on_device"]


def images_on_device(
    images: Any, device: str | torch.device | None, non_blocking: bool = False, scale_intensity: bool = True
) -> torch.Tensor:
    """A batch of images (a MONAI ``MetaTensor`` or tensor, often ``uint8``) on ``device`` as float, in [0, 1] if asked.

    The one copy to the device of the views-on-device paths (:class:`DeviceViews`, ``MultiCropDeviceViews``);
    ``scale_intensity`` scales each image to [0, 1] there (``ScaleIntensityd`` of the CPU path).
    """
    if hasattr(images, "as_tensor"):  # MONAI MetaTensor: plain tensor, no metadata tracking
        images = images.as_tensor()
    images = torch.as_tensor(images).to(device=device, non_blocking=non_blocking)
    return scale_intensity_batch(images) if scale_intensity else images.float()


def finish_view(view: torch.Tensor, normalize_red: bool) -> torch.Tensor:
    """A batch of views as the network takes it: the red channel standardized per image when ``normalize_red``.

    Raises:
        ValueError: ``normalize_red`` on views that do not have 3 channels (the message names the setting).
    """
    if not normalize_red:
        return view
    if view.ndim < 3 or view.shape[1] != 3:
        raise ValueError(f"normalize_red=True standardizes the red channel of RGB views, but the views have shape "
                         f"{tuple(view.shape)} (expected 3 channels); set normalize_red to false for other images.")
    return normalize_red_channel_batch(view)


class DeviceViews:
    """Move a batch of decoded images to the device and make the two BYOL views there, batched.

    The GPU path of BYOL pre-training: the loader workers only read (and, for folders of mixed sizes,
    resize) the images and draw the view parameters with :class:`~monai_ssl.transforms.BYOLViewParamsd`;
    this callable, given to :class:`~monai_ssl.engines.BYOLTrainer` as ``prepare_batch``, copies the
    images (``non_blocking`` from pinned memory), scales each one to [0, 1] as ``ScaleIntensityd(minv=0,
    maxv=1)`` does on the CPU path, and applies the parameters of ``T`` and ``T'`` to the whole batch with
    :func:`~monai_ssl.transforms.apply_view_params`. The parameter vectors stay on the host, so nothing
    here waits for the device.

    Images may arrive as ``uint8`` (a quarter of the float32 copy) or float.

    With ``normalize_red`` (RGB dermoscopy, S4MI's skin-lesion pre-training), each view's red channel is
    standardized per image *after* the view's intensity augmentation, as
    :class:`~monai_ssl.transforms.NormalizeRedChanneld` does after the views on the CPU path
    (:func:`~monai_ssl.transforms.normalize_red_channel_batch`: the same formula and epsilon).

    Args:
        image_key: key of the images, ``(B, C, H, W)`` or volumes ``(B, C, S, H, W)``.
        param_keys: keys of the ``T`` and ``T'`` parameter vectors.
        scale_intensity: min-max scale each image (volume) to [0, 1] first; turn off for images already in [0, 1].
        normalize_red: standardize the red channel of every view (3-channel images only).
    """

    def __init__(
        self,
        image_key: Hashable = "image",
        param_keys: Sequence[Hashable] = ("view1_params", "view2_params"),
        scale_intensity: bool = True,
        normalize_red: bool = False,
    ) -> None:
        if len(param_keys) != 2:
            raise ValueError(f"param_keys must name the two views' parameters, got {param_keys}.")
        self.image_key = image_key
        self.param_keys = tuple(param_keys)
        self.scale_intensity = scale_intensity
        self.normalize_red = bool(normalize_red)

    def __call__(
        self,
        batchdata: dict[Hashable, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(view1, view2)`` of a collated batch, on ``device``.

        ``kwargs`` (the trainer's ``view_keys`` and ``to_kwargs``) are accepted and not needed.

        Raises:
            KeyError: the batch lacks the image or a parameter key (the message names the keys present).
        """
        missing = [k for k in (self.image_key, *self.param_keys) if k not in batchdata]
        if missing:
            raise KeyError(
                f"GPU views need {missing} in the batch (keys present: {sorted(map(str, batchdata))}); the loader "
                f"transforms must end with monai_ssl.transforms.BYOLViewParamsd(keys={self.image_key!r}, "
                f"param_keys={self.param_keys})."
            )
        images = images_on_device(batchdata[self.image_key], device, non_blocking, self.scale_intensity)
        params = [torch.as_tensor(batchdata[k]) for k in self.param_keys]
        view1, view2 = (finish_view(apply_view_params(images, p), self.normalize_red) for p in params)
        return view1, view2


_FELL_BACK = False


def views_on_device(views: str, device: str | torch.device) -> bool:
    """Whether a BYOL bundle makes its views batched on the training device (True) or per image in the loader workers.

    Args:
        views: ``"auto"`` (on the device where it is a GPU, else in the workers), ``"gpu"`` (on the GPU; on a
            machine without CUDA this falls back to the workers with one warning), ``"cpu"`` (in the workers),
            or ``"batched"`` (batched on the training device whatever it is: the GPU path run on a CPU, for tests).
        device: the training device.

    Raises:
        ValueError: an unknown ``views`` value (the message lists the choices).
    """
    global _FELL_BACK
    choice = str(views).lower()
    if choice not in ("auto", "gpu", "cpu", "batched"):
        raise ValueError(f"--views must be one of 'auto', 'gpu', 'cpu' or 'batched', got {views!r}.")
    on_cuda = torch.device(device).type == "cuda"
    if choice == "gpu" and not on_cuda:
        if not _FELL_BACK:
            _FELL_BACK = True
            logging.getLogger("monai_ssl").warning(
                f"--views gpu asked for, but training runs on {torch.device(device)} (no CUDA GPU): making the BYOL "
                "views on the CPU in the loader workers instead."
            )
        return False
    return choice == "batched" or (choice in ("gpu", "auto") and on_cuda)
