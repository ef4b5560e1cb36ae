"""PiCIE's two views: photometric per view, one geometric transform for images and feature maps.

PiCIE (Cho et al., CVPR 2021, Sec. 3.3-3.4) makes the features *invariant* to photometric changes and
*equivariant* to geometric ones. Its reference code (``data/coco_train_dataset.py``, ``init_transforms``
and ``transform_inv`` / ``transform_eqv``; ``data/custom_transforms.py``) draws, once per image and epoch
(``reshuffle``):

* per view, the photometric transform ``P1`` / ``P2``: brightness, contrast and saturation factors in
  ``[1 - 0.3, 1 + 0.3]`` and a hue shift in ``[-0.1, 0.1]``, each switched on by its own coin with
  probability 0.8 and applied in that fixed order; grayscale with probability 0.2; Gaussian blur with
  probability 0.5 and sigma in ``[0.1, 2.0]``;
* one geometric transform ``G`` shared by both views: a square crop whose side is ``scale`` in
  ``[0.5, 1]`` of the image side (``RandomResizedCrop.random_crop``: ``res2 = int(scale * res1)``), at a
  uniform position, resized back; then a horizontal flip and a vertical flip, each with probability 0.5.

``G`` goes on view 1's *image* before the network and on view 2's *feature map* after it, so the
features (and cluster labels) of both views lie in the same geometry: ``E(G(P1(x)))`` against
``G(E(P2(x)))``. Here the parameters are drawn by :func:`picie_view_params` (on the host,
deterministic in ``(seed, epoch, index)`` so the clustering pass and the training pass of an epoch see
the same draws in any batch order), the photometric views are made on the device by
:func:`~monai_ssl.transforms.apply_view_params` (:func:`photometric_views`), and ``G`` by
:func:`~monai_ssl.transforms.geometric_transform` (``geometric_transform.py``: one ``affine_grid`` +
``grid_sample`` for the crops, exact flips).

Two departures from the reference, both deliberate: the blur sigma is uniform in ``blur_sigma`` (the
reference maps its coin to ``s = m (u - p) + 0.1``, which is below 0.1 for every blurred image, a
slip); the crop box is kept in exact fractions of the image instead of whole pixels (the reference
rounds to its 320-px image; fractions let the same box serve the image and its feature map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from monai_ssl.transforms.batched_views import apply_view_params
from monai_ssl.transforms.view_params import VIEW_PARAM_FIELDS

__all__ = ["PiCIEAugmentation", "PiCIEViewParams", "photometric_views", "picie_view_params"]

_FIELD = {name: i for i, name in enumerate(VIEW_PARAM_FIELDS)}
_VIEW_DRAWS = 11  # per view: 4 x (coin, factor) for the jitter, grayscale coin, blur coin, blur sigma
_GEOMETRY_DRAWS = 5  # scale, top, left, hflip coin, vflip coin
_DRAWS = 2 * _VIEW_DRAWS + _GEOMETRY_DRAWS
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class PiCIEAugmentation:
    """PiCIE's augmentation settings; the defaults are the reference's ``init_transforms`` values.

    Args:
        brightness, contrast, saturation: jitter strength ``x``; the factor is uniform in
            ``[max(0, 1 - x), 1 + x]`` (``RandomColorBrightness`` etc.), ``x >= 0``.
        hue: hue shift uniform in ``[-hue, hue]`` turns, ``0 <= hue <= 0.5`` (``RandomColorHue``).
        jitter_prob: probability of each of the four jitter operations, drawn separately.
        grayscale_prob: probability of grayscale (``RandomGrayScale``).
        blur_prob: probability of Gaussian blur (``RandomGaussianBlur``).
        blur_sigma: ``(min, max)`` blur standard deviation in pixels, ``0 < min <= max``.
        min_scale: smallest crop side as a fraction of the image side, in ``(0, 1]``
            (``RandomResizedCrop(scale=(min_scale, 1))``: the area share is then ``>= min_scale ** 2``).
        hflip_prob, vflip_prob: flip probabilities (``RandomHorizontalTensorFlip``, ``RandomVerticalFlip``).
    """

    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.1
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    min_scale: float = 0.5
    hflip_prob: float = 0.5
    vflip_prob: float = 0.5

    def __post_init__(self) -> None:
        """Check every range; each error names the field and the expected range."""
        for name in ("brightness", "contrast", "saturation"):
            if not float(getattr(self, name)) >= 0.0:
                raise ValueError(f"PiCIEAugmentation.{name} must be >= 0, got {getattr(self, name)}.")
        if not 0.0 <= float(self.hue) <= 0.5:
            raise ValueError(f"PiCIEAugmentation.hue must be in [0, 0.5] turns, got {self.hue}.")
        for name in ("jitter_prob", "grayscale_prob", "blur_prob", "hflip_prob", "vflip_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"PiCIEAugmentation.{name} must be a probability in [0, 1], got {getattr(self, name)}.")
        sigma = tuple(self.blur_sigma)
        if len(sigma) != 2 or not 0.0 < float(sigma[0]) <= float(sigma[1]):
            raise ValueError(f"PiCIEAugmentation.blur_sigma must be (min, max) with 0 < min <= max, got {self.blur_sigma}.")
        if not 0.0 < float(self.min_scale) <= 1.0:
            raise ValueError(f"PiCIEAugmentation.min_scale must be in (0, 1], got {self.min_scale}.")


@dataclass(frozen=True)
class PiCIEViewParams:
    """The draws of one batch, on the host.

    Attributes:
        photometric: ``(P1, P2)``, each ``(B, len(VIEW_PARAM_FIELDS))`` float64 rows for
            :func:`~monai_ssl.transforms.apply_view_params`; the geometry fields (output size, crop, flip)
            are left at 0 and filled with "whole image, no flip" by :func:`photometric_views`.
        geometric: ``(B, 6)`` float64 rows ``[top, left, height, width, hflip, vflip]``: the crop box as
            fractions of the image (inside ``[0, 1]``) and the flips as 0/1.
    """

    photometric: tuple[torch.Tensor, torch.Tensor]
    geometric: torch.Tensor


def _splitmix64(value: int) -> int:
    """One step of SplitMix64 (Steele et al. 2014): a bijective 64-bit integer mix."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def image_seed(seed: int, epoch: int, index: int) -> int:
    """The generator seed of one image: ``splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index)``, 63 bits.

    Chaining the mix keeps nearby ``(seed, epoch, index)`` triples on unrelated streams.
    """
    return _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ (epoch & _MASK64)) ^ (index & _MASK64)) >> 1


def _photometric_row(u: torch.Tensor, aug: PiCIEAugmentation, rgb: bool) -> list[float]:
    """One view's :data:`VIEW_PARAM_FIELDS` row from its 11 uniform draws (reference ``transform_inv`` order)."""
    row = [0.0] * len(VIEW_PARAM_FIELDS)
    factors = []
    for k, strength in enumerate((aug.brightness, aug.contrast, aug.saturation)):
        low, high = max(0.0, 1.0 - strength), 1.0 + strength
        on = u[2 * k] < aug.jitter_prob and (rgb or k < 2)  # saturation is RGB-only
        factors.append(low + (high - low) * float(u[2 * k + 1]) if on else 1.0)
    hue_on = rgb and u[6] < aug.jitter_prob
    factors.append(-aug.hue + 2.0 * aug.hue * float(u[7]) if hue_on else 0.0)
    row[_FIELD["jitter_on"]] = 1.0
    for k in range(4):  # fixed order brightness, contrast, saturation, hue
        row[_FIELD[f"jitter_op{k}"]] = float(k)
    for name, value in zip(("brightness", "contrast", "saturation", "hue"), factors):
        row[_FIELD[name]] = value
    row[_FIELD["grayscale"]] = float(rgb and u[8] < aug.grayscale_prob)
    row[_FIELD["extra_brightness"]] = row[_FIELD["extra_contrast"]] = 1.0
    if u[9] < aug.blur_prob:
        low, high = aug.blur_sigma
        row[_FIELD["blur_on"]] = 1.0
        row[_FIELD["blur_sigma"]] = low + (high - low) * float(u[10])
    row[_FIELD["solarize_threshold"]] = 0.5
    return row


def picie_view_params(
    indices: Sequence[int] | torch.Tensor,
    epoch: int,
    seed: int,
    augmentation: PiCIEAugmentation | None = None,
    channels: int = 3,
) -> PiCIEViewParams:
    """Draw both views' photometric rows and the geometric row of each image of a batch (host side).

    Follows the reference's ``reshuffle`` (``data/coco_train_dataset.py``): every image keeps its draws
    for the whole epoch. Each image has its own ``torch.Generator`` seeded with
    :func:`image_seed` ``(seed, epoch, index)`` and draws 27 uniforms at once, so its rows depend only
    on ``(seed, epoch, index)``: the clustering pass and the training pass get the same rows for an
    image whatever the batch order, and another epoch gives other rows.

    Args:
        indices: dataset index of each image, ``(B,)`` (a tensor on any device or a sequence of ints).
        epoch: the epoch (the reference reshuffles once per epoch).
        seed: the run's seed.
        augmentation: the settings; default :class:`PiCIEAugmentation` ().
        channels: 3 (RGB) or 1; for one channel only brightness, contrast and blur apply (as in
            :class:`~monai_ssl.transforms.ViewAugmentation`); the draws are the same.

    Returns:
        :class:`PiCIEViewParams` with float64 CPU tensors.

    Raises:
        ValueError: ``channels`` not in {1, 3}, or ``indices`` not one-dimensional.
    """
    aug = augmentation if augmentation is not None else PiCIEAugmentation()
    if channels not in (1, 3):
        raise ValueError(f"picie_view_params: channels must be 1 or 3, got {channels}.")
    idx = torch.as_tensor(indices).detach().cpu()
    if idx.ndim != 1:
        raise ValueError(f"picie_view_params: indices must be a 1-D sequence of dataset indices, got shape {tuple(idx.shape)}.")
    rows1, rows2, geometry = [], [], []
    generator = torch.Generator()
    for index in idx.tolist():
        generator.manual_seed(image_seed(int(seed), int(epoch), int(index)))
        u = torch.rand(_DRAWS, dtype=torch.float64, generator=generator)
        rows1.append(_photometric_row(u[:_VIEW_DRAWS], aug, channels == 3))
        rows2.append(_photometric_row(u[_VIEW_DRAWS : 2 * _VIEW_DRAWS], aug, channels == 3))
        scale_u, top_u, left_u, hflip_u, vflip_u = u[2 * _VIEW_DRAWS :].tolist()
        side = aug.min_scale + (1.0 - aug.min_scale) * scale_u
        geometry.append(
            [(1.0 - side) * top_u, (1.0 - side) * left_u, side, side, float(hflip_u < aug.hflip_prob), float(vflip_u < aug.vflip_prob)]
        )
    dtype = torch.float64
    width = len(VIEW_PARAM_FIELDS)
    p1 = torch.tensor(rows1, dtype=dtype).reshape(-1, width)
    p2 = torch.tensor(rows2, dtype=dtype).reshape(-1, width)
    return PiCIEViewParams(photometric=(p1, p2), geometric=torch.tensor(geometry, dtype=dtype).reshape(-1, 6))


def _whole_image(params: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A copy of photometric rows with the geometry fields set to "whole image, same size, no flip"."""
    rows = params.detach().to("cpu", torch.float64).clone()
    for name, value in (("out_height", height), ("out_width", width), ("crop_top", 0), ("crop_left", 0)):
        rows[:, _FIELD[name]] = float(value)
    rows[:, _FIELD["crop_height"]] = float(height)
    rows[:, _FIELD["crop_width"]] = float(width)
    rows[:, _FIELD["flip"]] = 0.0
    return rows


def photometric_views(images: torch.Tensor, params: PiCIEViewParams) -> tuple[torch.Tensor, torch.Tensor]:
    """PiCIE's photometric views ``P1(x)``, ``P2(x)`` of a batch, on the images' device.

    Reference ``transform_inv(index, image, 0 / 1)``; the pixels are made by
    :func:`~monai_ssl.transforms.apply_view_params` with the crop set to the whole image (no resize,
    no flip), so only jitter, grayscale and blur act. Normalise (mean/std) afterwards if the network
    wants it, as the reference's ``TensorTransform`` does after ``transform_inv``.

    Args:
        images: ``(B, C, H, W)`` float images in ``[0, 1]``, C in {1, 3}, on any device.
        params: :func:`picie_view_params` for these images (same order, ``channels=C``).

    Returns:
        two float32 ``(B, C, H, W)`` views in ``[0, 1]`` on ``images.device``.

    Raises:
        ValueError: ``images`` not ``(B, C, H, W)`` with C in {1, 3}, or rows for another batch size.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"photometric_views: images must be (B, C, H, W) with C in {{1, 3}}, got {tuple(images.shape)}.")
    b, _, h, w = images.shape
    views = []
    for rows in params.photometric:
        if rows.ndim != 2 or rows.shape != (b, len(VIEW_PARAM_FIELDS)):
            raise ValueError(
                f"photometric_views: expected ({b}, {len(VIEW_PARAM_FIELDS)}) photometric rows from picie_view_params "
                f"for a batch of {b}, got {tuple(rows.shape)}."
            )
        views.append(apply_view_params(images, _whole_image(rows, h, w)))
    return views[0], views[1]
