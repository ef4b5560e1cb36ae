"""DINO's multi-crop views (global and local crops) as one MONAI dictionary transform.

DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers", Section 3.1
"multi-crop" and Appendix, data augmentation; reference ``DataAugmentationDINO`` of
facebookresearch/dino) trains on a set of views of one image: a few *global* crops at high
resolution, which the teacher and the student both see, and several *local* crops at low
resolution, which only the student sees. Each view is a random resized crop of its own size and
area range followed by BYOL's augmentation (Grill et al. 2020, Table 6), with DINO's asymmetry in
the blur and solarization probabilities:

=====================  ==========  ==========  ======
parameter               global 1    global 2    local
=====================  ==========  ==========  ======
crop size (default)     224         224         96
crop area fraction      0.4 - 1     0.4 - 1     0.05 - 0.4
horizontal flip         0.5         0.5         0.5
colour jitter           0.8         0.8         0.8
grayscale               0.2         0.2         0.2
Gaussian blur           1.0         0.1         0.5
solarization            0.0         0.2         0.0
=====================  ==========  ==========  ======

Every view is one :class:`~monai_ssl.transforms.ViewAugmentation`, so pixels, colour handling of
one-channel images (brightness and contrast only) and volumes of slices (one crop shared by all
slices of a view) are exactly those of the BYOL views.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Randomizable
from monai.utils import MAX_SEED

from monai_ssl.transforms.views import ViewAugmentation

__all__ = ["MultiCropViewsd", "multi_crop_view_keys"]

# ViewAugmentation arguments that MultiCropViewsd sets per view kind; augmentation_kwargs may not set them.
_PER_VIEW_SETTINGS = ("spatial_size", "crop_scale", "blur_prob", "solarize_prob")


def multi_crop_view_keys(global_views: int, local_views: int, prefix: str = "view") -> tuple[str, ...]:
    """Output keys of :class:`MultiCropViewsd`: ``prefix1 .. prefixN`` with the global views first.

    Args:
        global_views: number of global views ``N_g``.
        local_views: number of local views ``N_l``.
        prefix: key prefix.

    Returns:
        ``(f"{prefix}1", ..., f"{prefix}{N_g + N_l}")``; the first ``N_g`` keys are the global views.
    """
    return tuple(f"{prefix}{i}" for i in range(1, global_views + local_views + 1))


def _check_count(value: int, name: str, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``name`` when it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"MultiCropViewsd: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_size(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``(H, W)`` of ``value`` (one int or two), or a ValueError naming ``name`` unless both are positive ints."""
    sizes = [value] if isinstance(value, (int, np.integer)) or not isinstance(value, Sequence) else list(value)
    if len(sizes) == 1:
        sizes = sizes * 2
    valid = len(sizes) == 2 and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes)
    if not valid or min(sizes) < 1:
        raise ValueError(f"MultiCropViewsd: {name} must be a positive int or (height, width), got {value!r}.")
    return int(sizes[0]), int(sizes[1])


def _check_scale(value: Sequence[float], name: str) -> tuple[float, float]:
    """``(min, max)`` crop area fraction, or a ValueError naming ``name`` unless ``0 < min <= max <= 1``."""
    try:
        pair = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not 0.0 < pair[0] <= pair[1] <= 1.0:
        raise ValueError(
            f"MultiCropViewsd: {name} must be (min, max) area fractions with 0 < min <= max <= 1, got {value!r}."
        )
    return pair[0], pair[1]


def _check_probs(value: float | Sequence[float], name: str) -> tuple[float, ...]:
    """Probabilities of ``value`` (one or several), or a ValueError naming ``name`` unless each is in [0, 1]."""
    try:
        probs = (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    except (TypeError, ValueError):
        probs = ()
    if not probs or not all(0.0 <= p <= 1.0 for p in probs):
        raise ValueError(f"MultiCropViewsd: {name} must be probabilities in [0, 1], got {value!r}.")
    return probs


class MultiCropViewsd(MapTransform, Randomizable):
    """Make ``global_views`` global and ``local_views`` local views of one image (DINO multi-crop).

    Caron et al. 2021, Section 3.1 and Appendix (``DataAugmentationDINO``): global crops cover
    ``global_scale`` of the image area and are resized to ``global_size``; local crops cover
    ``local_scale`` and are resized to ``local_size``; each view then gets BYOL's flip, colour
    jitter and grayscale, and its own blur and solarization probabilities (see the module table).
    Global view ``i`` (counted from 0) uses ``global_blur_probs[i % len(global_blur_probs)]`` and
    ``global_solarize_probs[i % len(global_solarize_probs)]``, so DINO's pair alternates when there
    are more than two global views.

    Output: the views under ``view1 .. viewN`` (``N = global_views + local_views``, the global views
    first; :func:`multi_crop_view_keys` lists them), each a float32 tensor ``(C, *size)`` or, for a
    volume of slices, ``(C, S, *size)``, and the int ``global_views`` under ``num_global_views_key``.
    Views of one kind have one size for every image, so MONAI's ``list_data_collate`` stacks each key
    into a batch ``(B, C, *size)`` and ``num_global_views`` into a ``(B,)`` tensor. With
    ``local_views=0`` and the default prefix, ``view1`` and ``view2`` are the keys BYOL reads.

    Every view is its own :class:`~monai_ssl.transforms.ViewAugmentation` (``self.views``, global
    views first) with its own random state; ``set_random_state(seed)`` seeds this transform and
    derives one seed per view from it, so a MONAI ``DataLoader`` worker seed fixes all views.

    Args:
        keys: the one source key (for example ``"image"``): ``(C, H, W)`` or ``(C, S, H, W)``,
            C in {1, 3}, values in [0, 1].
        global_views: number of global views (DINO: 2).
        global_size: output ``(H, W)`` of a global view, or one int (DINO: 224).
        global_scale: ``(min, max)`` area fraction of a global crop (DINO: 0.4 - 1).
        local_views: number of local views (DINO: 6 to 10; 0 for none).
        local_size: output ``(H, W)`` of a local view, or one int (DINO: 96).
        local_scale: ``(min, max)`` area fraction of a local crop (DINO: 0.05 - 0.4).
        view_keys_prefix: prefix of the output keys.
        global_blur_probs: blur probability of each global view, cycled (DINO: 1.0, 0.1).
        global_solarize_probs: solarization probability of each global view, cycled (DINO: 0.0, 0.2).
        local_blur_prob: blur probability of a local view (DINO: 0.5).
        local_solarize_prob: solarization probability of a local view (DINO: 0.0).
        crop_ratio: ``(min, max)`` aspect ratio of every crop, log-uniform (DINO: 3/4 - 4/3).
        augmentation_kwargs: other :class:`~monai_ssl.transforms.ViewAugmentation` arguments for every
            view (for example ``{"jitter_prob": 0.0}``); not those set per view kind
            (spatial_size, crop_scale, blur_prob, solarize_prob).
        num_global_views_key: key of the number of global views in the output.
        keep_source: keep the source key; by default it is removed to save memory.

    Raises:
        ValueError: a setting out of range, named in the message.

    Example::

        views = MultiCropViewsd(keys="image", global_size=64, local_size=32).set_random_state(0)
        item = views({"image": image})  # view1, view2: (C, 64, 64); view3 .. view8: (C, 32, 32)
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        global_views: int = 2,
        global_size: int | Sequence[int] = 224,
        global_scale: Sequence[float] = (0.4, 1.0),
        local_views: int = 6,
        local_size: int | Sequence[int] = 96,
        local_scale: Sequence[float] = (0.05, 0.4),
        view_keys_prefix: str = "view",
        global_blur_probs: float | Sequence[float] = (1.0, 0.1),
        global_solarize_probs: float | Sequence[float] = (0.0, 0.2),
        local_blur_prob: float = 0.5,
        local_solarize_prob: float = 0.0,
        crop_ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        augmentation_kwargs: Mapping[str, Any] | None = None,
        num_global_views_key: Hashable = "num_global_views",
        keep_source: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys)
        if len(self.keys) != 1:
            raise ValueError(f"MultiCropViewsd takes exactly one source key, got {self.keys}.")
        self.global_views = _check_count(global_views, "global_views", 1)
        self.local_views = _check_count(local_views, "local_views", 0)
        self.global_size = _check_size(global_size, "global_size")
        self.local_size = _check_size(local_size, "local_size")
        self.global_scale = _check_scale(global_scale, "global_scale")
        self.local_scale = _check_scale(local_scale, "local_scale")
        blur = _check_probs(global_blur_probs, "global_blur_probs")
        solarize = _check_probs(global_solarize_probs, "global_solarize_probs")
        (local_blur,) = _check_probs(local_blur_prob, "local_blur_prob")
        (local_solarize,) = _check_probs(local_solarize_prob, "local_solarize_prob")
        extra = dict(augmentation_kwargs or {})
        reserved = sorted(set(extra) & set(_PER_VIEW_SETTINGS))
        if reserved:
            raise ValueError(
                f"MultiCropViewsd: augmentation_kwargs may not set {reserved}; use the global_/local_ settings."
            )
        self.view_keys = multi_crop_view_keys(self.global_views, self.local_views, view_keys_prefix)
        if self.keys[0] in self.view_keys or num_global_views_key in (self.keys[0], *self.view_keys):
            raise ValueError(
                f"MultiCropViewsd: the source key {self.keys[0]!r}, the view keys {self.view_keys} and "
                f"num_global_views_key {num_global_views_key!r} must all differ (see view_keys_prefix)."
            )
        self.num_global_views_key = num_global_views_key
        self.keep_source = keep_source
        globals_ = [
            ViewAugmentation(
                self.global_size,
                crop_scale=self.global_scale,
                crop_ratio=crop_ratio,
                blur_prob=blur[i % len(blur)],
                solarize_prob=solarize[i % len(solarize)],
                **extra,
            )
            for i in range(self.global_views)
        ]
        locals_ = [
            ViewAugmentation(
                self.local_size,
                crop_scale=self.local_scale,
                crop_ratio=crop_ratio,
                blur_prob=local_blur,
                solarize_prob=local_solarize,
                **extra,
            )
            for _ in range(self.local_views)
        ]
        self.views: tuple[ViewAugmentation, ...] = (*globals_, *locals_)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> MultiCropViewsd:
        """Seed this transform, then each view with its own seed drawn from this transform's ``R``."""
        super().set_random_state(seed=seed, state=state)
        seeds = self.R.randint(MAX_SEED, size=len(self.views), dtype="uint32")
        for view, view_seed in zip(self.views, seeds):
            view.set_random_state(seed=int(view_seed))
        return self

    def randomize(self, data: NdarrayOrTensor | Sequence[int]) -> None:
        """Sample the parameters of every view for ``data`` (the source image or its shape)."""
        for view in self.views:
            view.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add the views and the number of global views to a copy of ``data``; drop the source unless kept."""
        d = dict(data)
        key = self.keys[0]
        img = d[key]
        self.randomize(img)
        for view_key, view in zip(self.view_keys, self.views):
            d[view_key] = view(img, randomize=False)
        d[self.num_global_views_key] = self.global_views
        if not self.keep_source:
            del d[key]
        return d
