"""Sample DINO's multi-crop view parameters in the loader workers, and leave the pixels to the device.

The device path of :class:`~monai_ssl.transforms.MultiCropViewsd` (Caron et al. 2021, Section 3.1
"multi-crop"), split as BYOL's GPU path is (:class:`~monai_ssl.transforms.BYOLViewParamsd`): the loader
workers read the image and draw the parameters of every global and local view exactly as
``MultiCropViewsd`` does (the same :class:`~monai_ssl.transforms.ViewAugmentation` objects, the same
per-view random streams), and put them in the item as one small vector per view
(:func:`~monai_ssl.transforms.view_params_vector`). The views of the whole batch are then made on the
training device, one :func:`~monai_ssl.transforms.apply_view_params` per view key, so global and local
views each come out at their own size. A seed gives the same parameters, hence the same views, on both
paths.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection

from monai_ssl.transforms.multi_crop import MultiCropViewsd
from monai_ssl.transforms.view_params import view_params_vector

__all__ = ["MultiCropViewParamsd", "multi_crop_param_keys"]


def multi_crop_param_keys(view_keys: Sequence[Hashable], suffix: str = "_params") -> tuple[str, ...]:
    """Keys of the parameter vectors of ``view_keys``: ``f"{key}{suffix}"`` for each, in order.

    Example::

        multi_crop_param_keys(("view1", "view2"))  # ("view1_params", "view2_params")
    """
    return tuple(f"{key}{suffix}" for key in view_keys)


class MultiCropViewParamsd(MultiCropViewsd):
    """Draw the parameters of DINO's global and local views of an image, for the device path.

    Takes the arguments of :class:`~monai_ssl.transforms.MultiCropViewsd` (Caron et al. 2021,
    Section 3.1 and Appendix, ``DataAugmentationDINO``: global crops of area ``global_scale`` resized
    to ``global_size``, local crops of area ``local_scale`` resized to ``local_size``, then BYOL's
    augmentation with DINO's per-view blur and solarization probabilities) and samples exactly as it
    does, but leaves the image as it is (uint8 from :class:`~monai_ssl.transforms.CompactUint8d`
    travels as a quarter of the float copy) and adds, for view ``viewK``, the float64 vector
    :func:`~monai_ssl.transforms.view_params_vector` under ``viewK_params`` (``param_keys``, in the
    order of ``view_keys``: global views first), plus the number of global views under
    ``num_global_views_key``. For a volume ``(C, S, H, W)`` one vector serves every slice, as on the CPU
    path. MONAI's ``list_data_collate`` stacks each parameter key into ``(B, len(VIEW_PARAM_FIELDS))``.

    ``set_random_state(seed)`` seeds the views as ``MultiCropViewsd`` does, so both transforms built
    with the same arguments and seed draw the same parameters in the same order.

    Args:
        keys: the one source key, as in :class:`~monai_ssl.transforms.MultiCropViewsd`.
        param_keys_suffix: suffix that makes a view key its parameter key.
        kwargs: every other argument of :class:`~monai_ssl.transforms.MultiCropViewsd` (``global_views``,
            ``global_size``, ``local_views``...) except ``keep_source``: the source key is always kept.

    Raises:
        ValueError: a setting out of range, or a parameter key equal to the source key.

    Example::

        params = MultiCropViewParamsd(keys="image", global_size=224, local_size=96).set_random_state(0)
        item = params({"image": image})  # item["view1_params"] .. item["view8_params"]: (30,) float64
    """

    def __init__(self, keys: KeysCollection = "image", param_keys_suffix: str = "_params", **kwargs: Any) -> None:
        if "keep_source" in kwargs:
            raise ValueError("MultiCropViewParamsd always keeps the source image (the views are made from it later).")
        super().__init__(keys=keys, keep_source=True, **kwargs)
        self.param_keys = multi_crop_param_keys(self.view_keys, param_keys_suffix)
        if self.keys[0] in self.param_keys or self.num_global_views_key in self.param_keys:
            raise ValueError(
                f"MultiCropViewParamsd: the parameter keys {self.param_keys} must differ from the source key "
                f"{self.keys[0]!r} and num_global_views_key {self.num_global_views_key!r} (see param_keys_suffix)."
            )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add every view's parameter vector and the number of global views to a copy of ``data``.

        Raises:
            ValueError: the image is not ``(C, H, W)`` or ``(C, S, H, W)`` with C in {1, 3}.
        """
        d = dict(data)
        shape = tuple(d[self.keys[0]].shape)
        if len(shape) not in (3, 4) or shape[0] not in (1, 3):
            raise ValueError(
                f"MultiCropViewParamsd: {self.keys[0]!r} must be (C, H, W) or (C, S, H, W) with C in {{1, 3}}, "
                f"got {shape}."
            )
        self.randomize(shape)
        for param_key, view in zip(self.param_keys, self.views):
            d[param_key] = view_params_vector(view)
        d[self.num_global_views_key] = self.global_views
        return d
