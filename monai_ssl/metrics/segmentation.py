"""Per-image overlap of a binary segmentation: IoU and Dice of the foreground (e.g. the lesion).

**Empty masks.** An image whose true and predicted masks are both empty scores IoU = Dice = 1.0 (the
prediction is right: there is nothing to find); an empty truth with a non-empty prediction, or the
reverse, scores 0.0. This is what MONAI's ``compute_iou``/``compute_dice`` give with
``ignore_empty=False``; their default ``ignore_empty=True`` gives NaN for *every* image with an empty
truth, whatever the prediction, which would drop false positives on lesion-free images from a mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["EMPTY_MASKS_NOTE", "binary_iou_dice", "foreground_mask"]

EMPTY_MASKS_NOTE = (
    "an image whose true and predicted masks are both empty scores IoU = Dice = 1; "
    "an empty truth with a non-empty prediction scores 0"
)


def _plain_cpu(value: Any, name: str) -> torch.Tensor:
    """Plain CPU tensor of an array, tensor or MetaTensor (on any device)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().as_subclass(torch.Tensor)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(f"{name} must be a tensor or a numpy array, got {type(value).__name__}.")


def foreground_mask(value: Any, name: str = "pred") -> np.ndarray:
    """The foreground (class 1, e.g. the lesion) of a two-class segmentation as an ``(H, W)`` bool array.

    Args:
        value: a label map ``(H, W)`` or ``(1, H, W)`` of 0/1 (or a foreground probability: > 0.5 is
            foreground), or two channels ``(2, H, W)``, one-hot, probabilities or logits (the foreground is
            where channel 1 wins the arg-max). Tensor (moved to the CPU) or array.
        name: the item key the value came from, for error messages.

    Raises:
        ValueError: on another shape.
    """
    x = _plain_cpu(value, f"`{name}`")
    if x.ndim == 3 and x.shape[0] == 2:
        return (x[1] > x[0]).numpy()
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(
            f"`{name}` must be a label map (H, W)/(1, H, W) or two channels (2, H, W) (background, foreground), "
            f"got shape {tuple(x.shape)}."
        )
    return (x if x.dtype == torch.bool else x > 0.5).numpy()


def binary_iou_dice(pred: Any, truth: Any) -> tuple[float, float]:
    """IoU and Dice of one image's predicted and true foreground masks.

    ``iou = |P & T| / |P | T|`` and ``dice = 2 |P & T| / (|P| + |T|)``; both masks empty gives ``(1.0, 1.0)``
    (see the module docstring). Equal to MONAI's ``compute_iou``/``compute_dice`` with ``ignore_empty=False``
    on the masks as ``(1, 1, H, W)`` tensors (the tests check it), counted on bool arrays instead: about 35
    times faster on a 12-megapixel dermoscopy image, where MONAI's float path takes half a second.

    Args:
        pred: predicted mask, ``(H, W)`` bool (or 0/1) array or tensor.
        truth: true mask, same shape.

    Returns:
        ``(iou, dice)``, each in ``[0, 1]``.

    Raises:
        ValueError: the masks are not 2-D or differ in shape.
    """
    p = _plain_cpu(pred, "`pred`")
    t = _plain_cpu(truth, "`truth`")
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(
            f"binary_iou_dice: expected two (H, W) masks of the same shape, got pred {tuple(p.shape)} "
            f"and truth {tuple(t.shape)}."
        )
    p = (p if p.dtype == torch.bool else p > 0.5).numpy()
    t = (t if t.dtype == torch.bool else t > 0.5).numpy()
    both = np.count_nonzero(p & t)
    union = np.count_nonzero(p | t)
    total = np.count_nonzero(p) + np.count_nonzero(t)
    if total == 0:
        return 1.0, 1.0
    return float(both / union), float(2.0 * both / total)
