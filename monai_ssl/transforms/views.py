"""The two stochastic BYOL views ``T`` and ``T'`` as MONAI transforms.

BYOL (Grill et al. 2020, "Bootstrap your own latent: A new approach to self-supervised
learning", Section 3.3, Table 6 and Appendix B) trains on two views of one image, drawn from two
augmentation distributions that differ only in how often they blur and solarize:

=====================  ======  ======
parameter               T       T'
=====================  ======  ======
random resized crop     1.0     1.0
horizontal flip         0.5     0.5
colour jitter           0.8     0.8
grayscale               0.2     0.2
Gaussian blur           1.0     0.1
solarization            0.0     0.2
=====================  ======  ======

Colour jitter uses brightness 0.4, contrast 0.4, saturation 0.2 and hue 0.1, in a random order;
the blur kernel is 23x23 for a 224x224 image (10% of the side) with sigma uniform in [0.1, 2.0].

BYOL+ ("Leveraging BYOL for Image Classification in Limited-Labeled Medical Domains") adds
cutout and stronger contrast and brightness changes; it gives no numeric ranges, so the ranges
and probabilities used here are ours (see :func:`byol_view_pair`).

Images are channel-first ``(C, H, W)``; volumes stored as slices are ``(C, S, H, W)`` and every
slice of one view gets the same sampled parameters. The slices are processed as one batch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable, Transform
from monai.utils import MAX_SEED

__all__ = ["BYOLViewsd", "ViewAugmentation", "ViewParams", "byol_view_pair"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601
_JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


@dataclass
class ViewParams:
    """Parameters sampled once per view and shared by every slice of a volume."""

    crop: tuple[int, int, int, int]  # top, left, height, width in input pixels
    flip: bool
    jitter_order: tuple[int, ...] | None  # None: no colour jitter
    factors: tuple[float, float, float, float]  # brightness, contrast, saturation, hue shift
    grayscale: bool
    extra_brightness: float | None
    extra_contrast: float | None
    blur_sigma: float | None
    solarize: bool
    cutout: tuple[int, int, int, int] | None  # top, left, height, width in output pixels


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """Return ``(value, value)`` for an int, else the first two entries as ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    h, w = value
    return int(h), int(w)


def _factor_range(value: float | Sequence[float], name: str) -> tuple[float, float]:
    """Turn a jitter strength ``b`` into the factor range ``[max(0, 1 - b), 1 + b]``."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}.")
        return max(0.0, 1.0 - value), 1.0 + value
    low, high = (float(v) for v in value)
    if not 0 <= low <= high:
        raise ValueError(f"{name} range must satisfy 0 <= min <= max, got {value}.")
    return low, high


def _range(value: Sequence[float], name: str) -> tuple[float, float]:
    """Validate a ``(min, max)`` pair."""
    low, high = (float(v) for v in value)
    if low > high:
        raise ValueError(f"{name} must be (min, max) with min <= max, got {value}.")
    return low, high


def _blur_kernel_size(side: int) -> int:
    """Odd kernel size nearest 10% of ``side`` (23 for 224), at least 3, valid for reflect padding."""
    size = 2 * round((0.1 * side - 1) / 2) + 1
    size = max(3, size)
    return min(size, 2 * side - 1)  # reflect padding needs size // 2 < side


def _luma(x: torch.Tensor) -> torch.Tensor:
    """Grayscale ``(N, 1, H, W)`` of RGB ``(N, 3, H, W)`` with the ITU-R 601 weights."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _adjust_contrast_(x: torch.Tensor, factor: float) -> torch.Tensor:
    """In place: blend with the mean gray value over the whole view (all slices), clamp to [0, 1]."""
    mean = (_luma(x) if x.shape[1] == 3 else x).mean()
    return x.mul_(factor).add_(mean * (1.0 - factor)).clamp_(0.0, 1.0)


def _adjust_saturation_(x: torch.Tensor, factor: float) -> torch.Tensor:
    """In place: blend RGB ``x`` with its grayscale image, clamp to [0, 1]."""
    gray = _luma(x)
    return x.mul_(factor).add_(gray, alpha=1.0 - factor).clamp_(0.0, 1.0)


def _adjust_hue(x: torch.Tensor, shift: float | torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB ``x`` ``(N, 3, ...)`` by ``shift`` turns (RGB -> HSV -> RGB).

    ``shift`` is one number, or a tensor broadcastable to ``x`` without its channel axis (one shift
    per image of a batch: shape ``(N, 1, ...)``).
    """
    r, g, b = x.unbind(1)
    value = x.amax(1)
    delta = value - x.amin(1)
    sat = delta / value.clamp_min(1e-12)
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        value == r, (g - b) / safe, torch.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue))
    hue = (hue + shift) % 1.0
    # HSV -> RGB: channel n in (R, G, B) = (5, 3, 1) is V - V S clamp(min(k, 4 - k), 0, 1), k = (n + 6H) mod 6.
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, *([1] * (x.ndim - 2)))
    k = (n + 6.0 * hue.unsqueeze(1)) % 6.0
    weight = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    value, sat = value.unsqueeze(1), sat.unsqueeze(1)
    return (value - value * sat * weight).clamp(0.0, 1.0)


def _blur_matrix(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(size, size)`` matrix of a 1D Gaussian blur with reflect padding folded in.

    Row ``i`` holds the weights of the kernel centred on pixel ``i``; taps that fall outside the
    image are reflected back (``-1 -> 1``, ``size -> size - 2``), as ``F.pad(mode="reflect")`` does.
    """
    radius = _blur_kernel_size(size) // 2
    offsets = torch.arange(-radius, radius + 1, device=device)
    weights = torch.exp(-(offsets.to(dtype) ** 2) / (2.0 * sigma * sigma))
    weights = weights / weights.sum()
    rows = torch.arange(size, device=device).unsqueeze(1).expand(size, offsets.numel())
    cols = (rows + offsets).abs()
    cols = torch.where(cols > size - 1, 2 * (size - 1) - cols, cols)
    matrix = torch.zeros(size, size, dtype=dtype, device=device)
    return matrix.index_put_((rows, cols), weights.expand(size, -1).contiguous(), accumulate=True)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)``, kernel ~10% of each side, reflect padding.

    Each 1D pass is one matrix product with a banded blur matrix, which is several times faster
    on CPU than a single-channel ``conv2d`` and gives the same result.
    """
    n, c, h, w = x.shape
    blur_h = _blur_matrix(h, sigma, x.dtype, x.device)
    blur_w = _blur_matrix(w, sigma, x.dtype, x.device)
    rows = (blur_h @ x.reshape(n * c, h, w)).reshape(n * c * h, w)
    return (rows @ blur_w.T).reshape(n, c, h, w)


def _as_float_tensor(img: NdarrayOrTensor) -> torch.Tensor:
    """Plain float32 tensor of ``img`` (MetaTensor metadata dropped, device kept)."""
    if isinstance(img, MetaTensor):
        img = img.as_tensor()
    if isinstance(img, np.ndarray):
        img = np.ascontiguousarray(img)
    return torch.as_tensor(img, dtype=torch.float32)


class ViewAugmentation(Randomizable, Transform):
    """One stochastic BYOL view (``T`` or ``T'`` of Grill et al. 2020, Table 6 / Appendix B).

    Pipeline, in order: random resized crop and bilinear resize to ``spatial_size``; horizontal
    flip; colour jitter (brightness, contrast, saturation, hue in a random order); grayscale;
    BYOL+ extra brightness and extra contrast; Gaussian blur; solarization; BYOL+ cutout. The
    output is clamped to [0, 1].

    Input is channel-first ``(C, H, W)`` or a volume of slices ``(C, S, H, W)``, ``C`` in {1, 3},
    intensities in [0, 1], as numpy array, tensor or MetaTensor. All slices of a volume share one
    set of sampled parameters (crop box, flip, jitter factors and order, blur sigma, ...), and the
    contrast reference is the mean gray value over all slices, so the slices stay consistent.
    The result is a plain float32 ``torch.Tensor`` on the input's device.

    Colour handling for 1-channel images: brightness and contrast apply; saturation, hue and
    grayscale are defined only for RGB and are skipped (no-ops). The random numbers are drawn all
    the same, so a seed gives the same crops whatever ``C`` is.

    Differences from the BYOL reference worth knowing: contrast blends with the mean *gray*
    value (as torchvision does) rather than the per-channel mean, and values are clamped to
    [0, 1] after each colour operation. ``blur_sigma`` is in pixels of the output image, as in
    BYOL for 224x224 outputs; for smaller outputs consider scaling it by ``spatial_size / 224``.

    All randomness comes from ``self.R``, so ``set_random_state(seed)`` makes it reproducible.

    Args:
        spatial_size: output ``(H, W)``, or one int for a square output.
        crop_scale: range of the crop area as a fraction of the input area.
        crop_ratio: range of the crop aspect ratio (width / height), sampled log-uniformly.
        flip_prob: probability of a horizontal (last axis) flip.
        jitter_prob: probability of applying colour jitter.
        brightness: brightness factor drawn from ``[max(0, 1 - b), 1 + b]`` (multiplies), or a range.
        contrast: contrast factor drawn from ``[max(0, 1 - c), 1 + c]``, or a range.
        saturation: saturation factor drawn from ``[max(0, 1 - s), 1 + s]``, or a range (RGB only).
        hue: hue shift drawn from ``[-hue, hue]`` in turns, ``0 <= hue <= 0.5`` (RGB only).
        grayscale_prob: probability of converting RGB to ITU-R 601 luma replicated to 3 channels.
        blur_prob: probability of a Gaussian blur.
        blur_sigma: range of the blur standard deviation, in output pixels.
        solarize_prob: probability of solarization.
        solarize_threshold: pixels ``x >= threshold`` become ``1 - x``.
        cutout_prob: BYOL+ probability of zeroing one rectangle (all channels and slices).
        cutout_scale: range of the rectangle area as a fraction of the output area (ours).
        cutout_ratio: range of the rectangle aspect ratio, log-uniform (ours, as random erasing).
        extra_contrast_prob: BYOL+ probability of a second, stronger contrast change.
        extra_contrast: range of that contrast factor (ours).
        extra_brightness_prob: BYOL+ probability of a second, stronger brightness change.
        extra_brightness: range of that brightness factor (ours).

    Example::

        view = ViewAugmentation(spatial_size=224).set_random_state(0)
        out = view(volume)  # (1, 16, 256, 256) -> (1, 16, 224, 224)
    """

    def __init__(
        self,
        spatial_size: int | Sequence[int] = 224,
        crop_scale: Sequence[float] = (0.08, 1.0),
        crop_ratio: Sequence[float] = (3.0 / 4.0, 4.0 / 3.0),
        flip_prob: float = 0.5,
        jitter_prob: float = 0.8,
        brightness: float | Sequence[float] = 0.4,
        contrast: float | Sequence[float] = 0.4,
        saturation: float | Sequence[float] = 0.2,
        hue: float = 0.1,
        grayscale_prob: float = 0.2,
        blur_prob: float = 1.0,
        blur_sigma: Sequence[float] = (0.1, 2.0),
        solarize_prob: float = 0.0,
        solarize_threshold: float = 0.5,
        cutout_prob: float = 0.0,
        cutout_scale: Sequence[float] = (0.02, 0.2),
        cutout_ratio: Sequence[float] = (0.3, 3.3),
        extra_contrast_prob: float = 0.0,
        extra_contrast: Sequence[float] = (0.5, 1.5),
        extra_brightness_prob: float = 0.0,
        extra_brightness: Sequence[float] = (0.5, 1.5),
    ) -> None:
        self.spatial_size = _pair(spatial_size)
        if min(self.spatial_size) < 1:
            raise ValueError(f"spatial_size must be positive, got {spatial_size}.")
        self.crop_scale = _range(crop_scale, "crop_scale")
        self.crop_ratio = _range(crop_ratio, "crop_ratio")
        if self.crop_scale[0] <= 0 or self.crop_ratio[0] <= 0:
            raise ValueError("crop_scale and crop_ratio must be positive.")
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}.")
        self.flip_prob = float(flip_prob)
        self.jitter_prob = float(jitter_prob)
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        self.hue = (-float(hue), float(hue))
        self.grayscale_prob = float(grayscale_prob)
        self.blur_prob = float(blur_prob)
        self.blur_sigma = _range(blur_sigma, "blur_sigma")
        if self.blur_sigma[0] <= 0:
            raise ValueError(f"blur_sigma must be positive, got {blur_sigma}.")
        self.solarize_prob = float(solarize_prob)
        self.solarize_threshold = float(solarize_threshold)
        self.cutout_prob = float(cutout_prob)
        self.cutout_scale = _range(cutout_scale, "cutout_scale")
        self.cutout_ratio = _range(cutout_ratio, "cutout_ratio")
        self.extra_contrast_prob = float(extra_contrast_prob)
        self.extra_contrast = _range(extra_contrast, "extra_contrast")
        self.extra_brightness_prob = float(extra_brightness_prob)
        self.extra_brightness = _range(extra_brightness, "extra_brightness")
        self._params: ViewParams | None = None

    @property
    def sampled_params(self) -> ViewParams | None:
        """The parameters of the last :meth:`randomize` (None before the first)."""
        return self._params

    # ----------------------------------------------------------------------------- sampling
    def _sample_box(
        self, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
    ) -> tuple[int, int, int, int] | None:
        """Sample ``(top, left, h, w)`` with area fraction in ``scale`` and log-uniform ``ratio``.

        Returns None when the sampled box does not fit.
        """
        area = height * width * self.R.uniform(*scale)
        aspect = math.exp(self.R.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = int(round(math.sqrt(area * aspect)))
        h = int(round(math.sqrt(area / aspect)))
        if not (0 < w <= width and 0 < h <= height):
            return None
        return int(self.R.randint(0, height - h + 1)), int(self.R.randint(0, width - w + 1)), h, w

    def _sample_crop(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Random resized crop box: 10 tries, then the central crop clipped to ``crop_ratio``."""
        for _ in range(10):
            box = self._sample_box(height, width, self.crop_scale, self.crop_ratio)
            if box is not None:
                return box
        in_ratio = width / height
        if in_ratio < self.crop_ratio[0]:
            w, h = width, min(height, max(1, int(round(width / self.crop_ratio[0]))))
        elif in_ratio > self.crop_ratio[1]:
            h, w = height, min(width, max(1, int(round(height * self.crop_ratio[1]))))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def _sample_cutout(self) -> tuple[int, int, int, int]:
        """Cutout rectangle in output pixels, clipped to the output."""
        out_h, out_w = self.spatial_size
        area = out_h * out_w * self.R.uniform(*self.cutout_scale)
        aspect = math.exp(self.R.uniform(math.log(self.cutout_ratio[0]), math.log(self.cutout_ratio[1])))
        h = min(out_h, max(1, int(round(math.sqrt(area / aspect)))))
        w = min(out_w, max(1, int(round(math.sqrt(area * aspect)))))
        return int(self.R.randint(0, out_h - h + 1)), int(self.R.randint(0, out_w - w + 1)), h, w

    def randomize(self, data: NdarrayOrTensor | Sequence[int]) -> None:
        """Sample the parameters of one view for an input image (or its shape).

        Args:
            data: the channel-first image/volume, or its shape; only the last two sizes are used.
        """
        shape = tuple(data.shape) if hasattr(data, "shape") else tuple(data)  # type: ignore[union-attr]
        height, width = int(shape[-2]), int(shape[-1])
        if height < 1 or width < 1:
            raise ValueError(f"Image must have a non-empty spatial shape, got {shape}.")
        R = self.R
        crop = self._sample_crop(height, width)
        flip = R.rand() < self.flip_prob
        jitter = R.rand() < self.jitter_prob
        order = tuple(int(i) for i in R.permutation(len(_JITTER_OPS)))
        factors = (
            float(R.uniform(*self.brightness)),
            float(R.uniform(*self.contrast)),
            float(R.uniform(*self.saturation)),
            float(R.uniform(*self.hue)),
        )
        grayscale = R.rand() < self.grayscale_prob
        extra_brightness = float(R.uniform(*self.extra_brightness)) if R.rand() < self.extra_brightness_prob else None
        extra_contrast = float(R.uniform(*self.extra_contrast)) if R.rand() < self.extra_contrast_prob else None
        blur_sigma = float(R.uniform(*self.blur_sigma)) if R.rand() < self.blur_prob else None
        solarize = R.rand() < self.solarize_prob
        cutout = self._sample_cutout() if R.rand() < self.cutout_prob else None
        self._params = ViewParams(
            crop=crop,
            flip=bool(flip),
            jitter_order=order if jitter else None,
            factors=factors,
            grayscale=bool(grayscale),
            extra_brightness=extra_brightness,
            extra_contrast=extra_contrast,
            blur_sigma=blur_sigma,
            solarize=bool(solarize),
            cutout=cutout,
        )

    # ---------------------------------------------------------------------------- applying
    def _apply(self, x: torch.Tensor, p: ViewParams) -> torch.Tensor:
        """Apply sampled parameters to a batch of slices ``(N, C, H, W)``.

        ``x`` may be a view of the caller's input; it is never written to: the resize makes the
        first new tensor, and only tensors made here are changed in place.
        """
        rgb = x.shape[1] == 3
        top, left, h, w = p.crop
        out_h, out_w = self.spatial_size
        x = x[..., top : top + h, left : left + w]
        # Antialiasing only changes the result when shrinking, and costs more: use it only then.
        shrink = h > out_h or w > out_w
        x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=shrink)
        if p.flip:
            x = x.flip(-1)
        if p.jitter_order is not None:
            brightness, contrast, saturation, hue = p.factors
            for op in p.jitter_order:
                if op == 0:
                    x.mul_(brightness).clamp_(0.0, 1.0)
                elif op == 1:
                    _adjust_contrast_(x, contrast)
                elif op == 2 and rgb:
                    _adjust_saturation_(x, saturation)
                elif op == 3 and rgb and hue != 0.0:
                    x = _adjust_hue(x, hue)
        if p.grayscale and rgb:
            x = _luma(x).repeat(1, 3, 1, 1)
        if p.extra_brightness is not None:
            x.mul_(p.extra_brightness).clamp_(0.0, 1.0)
        if p.extra_contrast is not None:
            _adjust_contrast_(x, p.extra_contrast)
        if p.blur_sigma is not None:
            x = _gaussian_blur(x, p.blur_sigma)
        if p.solarize:
            x = torch.where(x >= self.solarize_threshold, 1.0 - x, x)
        if p.cutout is not None:
            ctop, cleft, ch, cw = p.cutout
            x[..., ctop : ctop + ch, cleft : cleft + cw] = 0.0
        return x.clamp_(0.0, 1.0)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> torch.Tensor:
        """Return one augmented view of ``img``.

        Args:
            img: ``(C, H, W)`` image or ``(C, S, H, W)`` volume of slices, C in {1, 3}, values in [0, 1].
            randomize: sample new parameters first; False reuses those of the last ``randomize``.

        Returns:
            float32 tensor ``(C, *spatial_size)`` or ``(C, S, *spatial_size)``.
        """
        x = _as_float_tensor(img)
        if x.ndim not in (3, 4) or x.shape[0] not in (1, 3):
            raise ValueError(f"Expected a (C, H, W) or (C, S, H, W) input with C in {{1, 3}}, got {tuple(x.shape)}.")
        if randomize:
            self.randomize(x)
        if self._params is None:
            raise RuntimeError("randomize=False needs a previous call to randomize().")
        if x.ndim == 3:
            return self._apply(x.unsqueeze(0), self._params)[0].contiguous()
        out = self._apply(x.transpose(0, 1), self._params)  # slices as the batch: (S, C, H, W)
        return out.transpose(0, 1).contiguous()


def byol_view_pair(
    spatial_size: int | Sequence[int] = 224, byol_plus: bool = False
) -> tuple[ViewAugmentation, ViewAugmentation]:
    """The two BYOL augmentation distributions ``T`` and ``T'`` (Grill et al. 2020, Table 6).

    Both share crop, flip (0.5), colour jitter (0.8; 0.4, 0.4, 0.2, 0.1) and grayscale (0.2);
    ``T`` blurs always and never solarizes, ``T'`` blurs with probability 0.1 and solarizes with
    probability 0.2.

    With ``byol_plus=True`` both views also get the BYOL+ extras, each with probability 0.5 (our
    choice; the paper gives no probabilities): cutout of 2-20% of the area, an extra contrast
    factor in [0.5, 1.5] and an extra brightness factor in [0.5, 1.5].

    Args:
        spatial_size: output ``(H, W)`` or one int.
        byol_plus: add the BYOL+ extras.

    Returns:
        ``(T, T')``, two independent :class:`ViewAugmentation` objects.
    """
    extras: dict[str, Any] = {}
    if byol_plus:
        extras = {"cutout_prob": 0.5, "extra_contrast_prob": 0.5, "extra_brightness_prob": 0.5}
    view1 = ViewAugmentation(spatial_size, blur_prob=1.0, solarize_prob=0.0, **extras)
    view2 = ViewAugmentation(spatial_size, blur_prob=0.1, solarize_prob=0.2, **extras)
    return view1, view2


class BYOLViewsd(MapTransform, Randomizable):
    """Make the two BYOL views of one image: ``data[view_keys[0]] = T(img)``, ``data[view_keys[1]] = T'(img)``.

    Grill et al. 2020, Section 3.3: two views drawn independently from ``T`` and ``T'``. The views
    use their own random states; ``set_random_state(seed)`` seeds this transform and derives one
    seed for each view from it, so a MONAI ``DataLoader`` worker seed fixes both views.

    Args:
        keys: the one source key (for example ``"image"``).
        view_keys: output keys for the ``T`` and ``T'`` views.
        spatial_size: output ``(H, W)`` of the default views.
        byol_plus: use the BYOL+ extras in the default views (see :func:`byol_view_pair`).
        view1: custom ``T`` (replaces the default).
        view2: custom ``T'`` (replaces the default); must be a different object from ``view1``.
        keep_source: keep the source key; by default it is removed to save memory.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        view_keys: Sequence[Hashable] = ("view1", "view2"),
        spatial_size: int | Sequence[int] = 224,
        byol_plus: bool = False,
        view1: ViewAugmentation | None = None,
        view2: ViewAugmentation | None = None,
        keep_source: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys)
        if len(self.keys) != 1:
            raise ValueError(f"BYOLViewsd takes exactly one source key, got {self.keys}.")
        if len(view_keys) != 2:
            raise ValueError(f"view_keys must name two outputs, got {view_keys}.")
        self.view_keys = tuple(view_keys)
        if view1 is None or view2 is None:
            default1, default2 = byol_view_pair(spatial_size, byol_plus)
            view1 = default1 if view1 is None else view1
            view2 = default2 if view2 is None else view2
        if view1 is view2:
            raise ValueError("view1 and view2 must be two different ViewAugmentation objects.")
        self.view1: ViewAugmentation = view1
        self.view2: ViewAugmentation = view2
        self.keep_source = keep_source

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> BYOLViewsd:
        """Seed this transform, then each view with a seed drawn from this transform's ``R``."""
        super().set_random_state(seed=seed, state=state)
        seed1, seed2 = (int(s) for s in self.R.randint(MAX_SEED, size=2, dtype="uint32"))
        self.view1.set_random_state(seed=seed1)
        self.view2.set_random_state(seed=seed2)
        return self

    def randomize(self, data: NdarrayOrTensor | Sequence[int]) -> None:
        """Sample the parameters of both views for ``data`` (the source image or its shape)."""
        self.view1.randomize(data)
        self.view2.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add both views to a copy of ``data``; drop the source unless ``keep_source``."""
        d = dict(data)
        key = self.keys[0]
        img = d[key]
        self.randomize(img)
        d[self.view_keys[0]] = self.view1(img, randomize=False)
        d[self.view_keys[1]] = self.view2(img, randomize=False)
        if not self.keep_source:
            del d[key]
        return d
