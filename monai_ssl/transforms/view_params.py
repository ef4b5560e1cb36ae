"""Sample the BYOL view parameters in the loader workers, and leave the pixels to the GPU.

The GPU path of BYOL pre-training splits :class:`~monai_ssl.transforms.BYOLViewsd` in two: the loader
workers read the image and draw the parameters of ``T`` and ``T'`` exactly as ``BYOLViewsd`` does (the
same :class:`~monai_ssl.transforms.ViewAugmentation` objects, the same random streams), and put them in
the item as two small vectors; :func:`~monai_ssl.transforms.apply_view_params` then makes the views of
the whole batch at once on the training device. A seed gives the same parameters on both paths.

One vector holds the fields of :data:`VIEW_PARAM_FIELDS`, in float64 (pixel positions and factors are
exact). A field that is switched off (no jitter, no blur, ...) has its ``*_on`` flag at 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection

from monai_ssl.transforms.views import BYOLViewsd, ViewAugmentation

__all__ = ["BYOLViewParamsd", "VIEW_PARAM_FIELDS", "view_params_vector"]

VIEW_PARAM_FIELDS: tuple[str, ...] = (
    "out_height",
    "out_width",
    "crop_top",
    "crop_left",
    "crop_height",
    "crop_width",
    "flip",
    "jitter_on",
    "jitter_op0",
    "jitter_op1",
    "jitter_op2",
    "jitter_op3",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "grayscale",
    "extra_brightness_on",
    "extra_brightness",
    "extra_contrast_on",
    "extra_contrast",
    "blur_on",
    "blur_sigma",
    "solarize",
    "solarize_threshold",
    "cutout_on",
    "cutout_top",
    "cutout_left",
    "cutout_height",
    "cutout_width",
)
"""The entries of one view's parameter vector, in order."""


def view_params_vector(view: ViewAugmentation) -> torch.Tensor:
    """The parameters ``view`` sampled last, as a float64 vector laid out as :data:`VIEW_PARAM_FIELDS`.

    Raises:
        RuntimeError: ``view`` has not sampled parameters yet.
    """
    p = view.sampled_params
    if p is None:
        raise RuntimeError("view_params_vector needs a ViewAugmentation that has run randomize().")
    order = p.jitter_order if p.jitter_order is not None else (0, 1, 2, 3)
    cutout = p.cutout if p.cutout is not None else (0, 0, 0, 0)
    values = (
        *view.spatial_size,
        *p.crop,
        p.flip,
        p.jitter_order is not None,
        *order,
        *p.factors,
        p.grayscale,
        p.extra_brightness is not None,
        p.extra_brightness if p.extra_brightness is not None else 1.0,
        p.extra_contrast is not None,
        p.extra_contrast if p.extra_contrast is not None else 1.0,
        p.blur_sigma is not None,
        p.blur_sigma if p.blur_sigma is not None else 0.0,
        p.solarize,
        view.solarize_threshold,
        p.cutout is not None,
        *cutout,
    )
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


class BYOLViewParamsd(BYOLViewsd):
    """Draw the parameters of both BYOL views of an image, for :func:`~monai_ssl.transforms.apply_view_params`.

    Takes the arguments of :class:`~monai_ssl.transforms.BYOLViewsd` and samples exactly as it does
    (Grill et al. 2020, Table 6; BYOL+ extras), but leaves the image as it is and adds two vectors
    (:func:`view_params_vector`) under ``param_keys``. The batched views are then made on the training
    device by :class:`~monai_ssl.engines.DeviceViews`. For a volume ``(C, S, H, W)`` one vector serves
    every slice, as on the CPU path.

    A batch is one tensor, so for images of mixed sizes collate with
    ``monai.transforms.PadListDataCollate(method="end", mode="edge")``: each image is padded at its
    bottom and right edges, its crop box (drawn for its own size) never reaches the padding, and
    replicated edge values leave its minimum and maximum (the intensity scaling) unchanged. The views
    are then exactly those of the CPU path. (Or resize to a working size in the workers first.)

    Args:
        keys: the one source key (for example ``"image"``); it is kept.
        param_keys: output keys of the ``T`` and ``T'`` parameter vectors.
        spatial_size, byol_plus, view1, view2: as in :class:`~monai_ssl.transforms.BYOLViewsd`.

    Example::

        params = BYOLViewParamsd(keys="image", spatial_size=224).set_random_state(0)
        item = params({"image": image})  # item["view1_params"].shape == (len(VIEW_PARAM_FIELDS),)
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        param_keys: Sequence[Hashable] = ("view1_params", "view2_params"),
        spatial_size: int | Sequence[int] = 224,
        byol_plus: bool = False,
        view1: ViewAugmentation | None = None,
        view2: ViewAugmentation | None = None,
    ) -> None:
        super().__init__(
            keys=keys,
            view_keys=param_keys,
            spatial_size=spatial_size,
            byol_plus=byol_plus,
            view1=view1,
            view2=view2,
            keep_source=True,
        )

    @property
    def param_keys(self) -> tuple[Hashable, ...]:
        """Keys of the two parameter vectors."""
        return self.view_keys

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add the ``T`` and ``T'`` parameter vectors for ``data[key]`` to a copy of ``data``.

        Raises:
            ValueError: the image is not ``(C, H, W)`` or ``(C, S, H, W)`` with C in {1, 3}.
        """
        d = dict(data)
        img = d[self.keys[0]]
        shape = tuple(img.shape)
        if len(shape) not in (3, 4) or shape[0] not in (1, 3):
            raise ValueError(
                f"BYOLViewParamsd: {self.keys[0]!r} must be (C, H, W) or (C, S, H, W) with C in {{1, 3}}, got {shape}."
            )
        self.randomize(shape)
        d[self.view_keys[0]] = view_params_vector(self.view1)
        d[self.view_keys[1]] = view_params_vector(self.view2)
        return d
