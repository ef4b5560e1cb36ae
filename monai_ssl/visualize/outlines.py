"""Pictures of segmentations: an image with the outline of the true mask in green and of the predicted one in red.

Outlines rather than filled masks leave the image under them visible, which is what a reader of a
dermoscopy report needs to judge a lesion border. The morphology is MONAI's
(:func:`monai.transforms.utils_morphological_ops.erode`, a torch convolution), so neither SciPy nor
scikit-image is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms.utils_morphological_ops import erode

__all__ = ["TRUTH_COLOR", "PREDICTION_COLOR", "OVERLAP_COLOR", "OUTLINE_LEGEND", "mask_outline", "outline_overlay"]

TRUTH_COLOR = (0, 255, 0)
"""Green: the outline of the true (reference) mask."""
PREDICTION_COLOR = (255, 0, 0)
"""Red: the outline of the predicted mask."""
OVERLAP_COLOR = (255, 255, 0)
"""Yellow: pixels on both outlines."""
OUTLINE_LEGEND = "green: truth outline, red: prediction outline, yellow: both"

_SPATIAL_ORDERS = ("HW", "WH")


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    """Plain CPU tensor of an array, tensor or MetaTensor (on any device)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().as_subclass(torch.Tensor)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(f"{name} must be a tensor or a numpy array, got {type(value).__name__}.")


def _mask_2d(mask: Any, name: str) -> torch.Tensor:
    """``(H, W)`` bool tensor of a mask given as ``(H, W)`` or ``(1, H, W)``."""
    m = _as_tensor(mask, name)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"{name} must be a mask of shape (H, W) or (1, H, W), got {tuple(m.shape)}.")
    return m if m.dtype == torch.bool else m > 0.5


def mask_outline(mask: Any, thickness: int = 1) -> np.ndarray:
    """The boundary band of a mask: the mask minus its erosion by a ``(2 * thickness + 1)`` square.

    Pixels outside the image count as background, so a mask that reaches the image border is outlined
    along that border too (a lesion cut by the picture's edge is closed by the outline).

    Args:
        mask: ``(H, W)`` or ``(1, H, W)`` bool (or 0/1) array or tensor.
        thickness: width of the band in pixels, inside the mask (>= 1).

    Returns:
        ``(H, W)`` bool array, True on the band; all False for an empty mask.
    """
    if int(thickness) < 1:
        raise ValueError(f"mask_outline: `thickness` must be >= 1, got {thickness}.")
    m = _mask_2d(mask, "mask_outline: `mask`")
    if not bool(m.any()):
        return np.zeros(tuple(m.shape), dtype=bool)
    inner = erode(m[None, None].float(), filter_size=2 * int(thickness) + 1, pad_value=0.0)[0, 0] > 0.5
    return (m & ~inner).numpy()


def _intensity_window(image: torch.Tensor, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """The values of ``image`` shown as black and white.

    ``(0, 255)`` for uint8 and for a float image holding only whole numbers in ``[0, 255]`` (a JPEG read
    by MONAI's ``LoadImage``, which gives float32); ``(0, 1)`` for bool; else the ``low`` and ``high``
    percentiles of all channels together (so colours keep their balance), taken on at most about a
    million pixels (a regular subsample), and the minimum and maximum when those two are equal.
    """
    if image.dtype == torch.uint8:
        return 0.0, 255.0
    if image.dtype == torch.bool:
        return 0.0, 1.0
    x = image.float()
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        x = x[finite]
    if x.numel() == 0:
        return 0.0, 1.0
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and 1.0 < hi <= 255.0 and torch.equal(x, x.round()):
        return 0.0, 255.0
    step = max(1, int(np.ceil(np.sqrt(x.numel() / 1e6))))
    sample = (x[..., ::step, ::step] if x.ndim == 3 else x[::step * step]).reshape(-1).double().numpy()
    p_lo, p_hi = np.percentile(sample, [low, high])
    return (float(p_lo), float(p_hi)) if p_hi > p_lo else (lo, hi)


def _resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an ``(H, W)`` bool mask."""
    if tuple(mask.shape) == size:
        return mask
    return F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0] > 0.5


def outline_overlay(
    image: Any,
    truth: Any | None = None,
    prediction: Any | None = None,
    spatial_order: str = "HW",
    max_side: int | None = 1024,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw the outlines of the true and predicted masks on an image.

    The image is shown as it is when uint8 (or float holding whole numbers in ``[0, 255]``), else
    rescaled to ``0..255`` between its 1st and 99th percentiles (clipping the rest). It is downscaled
    (area average) so that its longer side is at most ``max_side``; the masks are resized (nearest
    neighbour) to the size of the image shown, then outlined: truth in green, prediction in red, pixels
    on both in yellow.

    Args:
        image: ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)`` array or tensor (channel first, any device).
        truth: true mask, ``(H', W')`` or ``(1, H', W')`` bool or 0/1; ``None`` draws none.
        prediction: predicted mask, same forms; ``None`` draws none.
        spatial_order: ``"HW"`` when the last two axes are (height, width), ``"WH"`` when they are
            (width, height), as MONAI's ``PILReader`` gives them; ``"WH"`` swaps the last two axes of the
            image and of the masks so that the picture looks like the original file.
        max_side: largest side of the picture in pixels; ``None`` keeps the image size.
        thickness: outline width in pixels; ``None`` scales it with the picture,
            ``max(1, round(max(h, w) / 256))`` (4 pixels at 1024).

    Returns:
        ``(h, w, 3)`` uint8 RGB array.

    Raises:
        ValueError: on an image that is not 2-D with 1 or 3 channels, an unknown ``spatial_order``, or a
            ``max_side``/``thickness`` below 1.
    """
    if spatial_order not in _SPATIAL_ORDERS:
        raise ValueError(f"outline_overlay: `spatial_order` must be 'HW' or 'WH', got {spatial_order!r}.")
    if max_side is not None and int(max_side) < 1:
        raise ValueError(f"outline_overlay: `max_side` must be >= 1 or None, got {max_side}.")
    img = _as_tensor(image, "outline_overlay: `image`")
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(
            f"outline_overlay: `image` must have shape (H, W), (1, H, W) or (3, H, W), got {tuple(img.shape)}."
        )
    named = (("truth", truth), ("prediction", prediction))
    masks = [None if m is None else _mask_2d(m, f"outline_overlay: `{n}`") for n, m in named]
    if spatial_order == "WH":
        img = img.transpose(-1, -2)
        masks = [None if m is None else m.transpose(-1, -2) for m in masks]
    lo, hi = _intensity_window(img)
    pic = torch.nan_to_num(img.float(), nan=lo, posinf=hi, neginf=lo)
    h, w = pic.shape[-2:]
    if max_side is not None and max(h, w) > int(max_side):
        scale = int(max_side) / max(h, w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
        pic = F.interpolate(pic[None], size=(h, w), mode="area")[0]
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    pic = ((pic - lo) * scale).round().clamp(0, 255).to(torch.uint8)
    rgb = pic.expand(3, h, w) if pic.shape[0] == 1 else pic
    out = rgb.permute(1, 2, 0).numpy().copy()
    width = max(1, round(max(h, w) / 256)) if thickness is None else int(thickness)
    edges = [None if m is None else mask_outline(_resize_mask(m, (h, w)), width) for m in masks]
    truth_edge, pred_edge = edges
    if truth_edge is not None:
        out[truth_edge] = TRUTH_COLOR
    if pred_edge is not None:
        out[pred_edge] = PREDICTION_COLOR
    if truth_edge is not None and pred_edge is not None:
        out[truth_edge & pred_edge] = OVERLAP_COLOR
    return out
