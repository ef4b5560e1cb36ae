"""How much of a saliency map falls on the object (e.g. the lesion): the in-mask share and the pointing game.

Two per-image measures of a map against a binary mask of the object, each returned per image and as
a mean over the images (JSON-friendly: plain floats, bools and ``None``):

* the **in-mask share**: the saliency summed inside the mask over the saliency summed over the image
  (the "energy-based pointing game" of Wang et al., "Score-CAM", CVPR workshops 2020). A map
  spread evenly over the image scores the mask's area fraction; 1 means all saliency is on the object.
* the **pointing game** (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016,
  Sec. 5.1): a hit when the maximum of the map lies on the object, optionally within ``tolerance_px``
  pixels of it (Zhang et al. use 15 pixels); the mean is the hit rate.

Confidence intervals across seeds or methods come from :func:`~monai_ssl.metrics.mean_ci95` on these means;
the interval of one hit rate over the images is :func:`wilson_interval95`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["pointing_game", "saliency_in_mask_share", "wilson_interval95"]


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().as_subclass(torch.Tensor).numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name} must be a tensor or a numpy array, got {type(value).__name__}.")


def _batch(value: Any, name: str, what: str) -> np.ndarray:
    """``(B, H, W)`` of ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``."""
    x = _as_numpy(value, f"{what}: `{name}`")
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(
            f"{what}: `{name}` must be (H, W), (B, H, W) or (B, 1, H, W) with B >= 1, got shape {x.shape}."
        )
    return x


def _maps_and_masks(saliency: Any, mask: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(B, H, W)`` float64 saliency and bool masks."""
    s = _batch(saliency, "saliency", what).astype(np.float64)
    m = _batch(mask, "mask", what)
    if s.shape != m.shape:
        raise ValueError(
            f"{what}: `saliency` {tuple(np.shape(saliency))} and `mask` {tuple(np.shape(mask))} differ in shape; "
            "resize the mask to the map (nearest neighbour) first."
        )
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"{what}: `saliency` must be finite and non-negative (a saliency map scaled to [0, 1]).")
    m = m if m.dtype == bool else m > 0.5
    empty = np.flatnonzero(~m.reshape(m.shape[0], -1).any(axis=1))
    if empty.size:
        raise ValueError(
            f"{what}: the mask of image(s) {empty[:10].tolist()} is empty; there is no object to measure "
            "saliency against (leave those images out)."
        )
    return s, m


def _nearest_distance2(points: np.ndarray, targets: np.ndarray, chunk: int = 64) -> float:
    """The smallest squared distance between any of ``points`` (P, 2) and ``targets`` (T, 2), in chunks of points."""
    best = np.inf
    for start in range(0, points.shape[0], chunk):
        d = points[start : start + chunk, None, :] - targets[None, :, :]
        best = min(best, float((d * d).sum(axis=2).min()))
    return best


def saliency_in_mask_share(saliency: Any, mask: Any) -> dict[str, Any]:
    """The share of each map's total saliency that lies inside the mask, and its mean.

    ``share = sum(saliency * mask) / sum(saliency)`` per image. A map that is zero everywhere has no
    share (``None``), and is left out of the mean.

    Args:
        saliency: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` non-negative maps (array or tensor).
        mask: the object masks, the same shape, bool or 0/1 (> 0.5 is the object).

    Returns:
        ``{"per_image": [share or None, ...], "mean": mean share or None, "n": images with a share}``.

    Raises:
        ValueError: shapes differ, a map is negative or not finite, or a mask is empty.
    """
    s, m = _maps_and_masks(saliency, mask, "saliency_in_mask_share")
    total = s.reshape(s.shape[0], -1).sum(axis=1)
    inside = (s * m).reshape(s.shape[0], -1).sum(axis=1)
    per_image = [float(i / t) if t > 0 else None for i, t in zip(inside, total)]
    defined = [v for v in per_image if v is not None]
    return {"per_image": per_image, "mean": float(np.mean(defined)) if defined else None, "n": len(defined)}


def pointing_game(saliency: Any, mask: Any, tolerance_px: float = 0) -> dict[str, Any]:
    """Pointing-game hits (the map's maximum lies on the object) per image, and the hit rate.

    A maximal pixel hits when its Euclidean distance to the nearest mask pixel is at most
    ``tolerance_px`` (0: it lies in the mask). When several pixels share the maximum, the image is a hit
    if any of them hits; a constant map (nothing pointed at) is a miss.

    Args:
        saliency: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` non-negative maps (array or tensor).
        mask: the object masks, the same shape, bool or 0/1 (> 0.5 is the object).
        tolerance_px: distance in pixels within which a maximum still counts (Zhang et al. use 15).

    Returns:
        ``{"per_image": [hit, ...], "mean": hit rate, "n": images}``.

    Raises:
        ValueError: shapes differ, a map is negative or not finite, a mask is empty, or a negative tolerance.
    """
    if not np.isfinite(tolerance_px) or tolerance_px < 0:
        raise ValueError(f"pointing_game: `tolerance_px` must be a number >= 0, got {tolerance_px!r}.")
    s, m = _maps_and_masks(saliency, mask, "pointing_game")
    hits = []
    for image, obj in zip(s, m):
        peak = image.max()
        if peak == image.min():
            hits.append(False)
            continue
        points = np.argwhere(image == peak)  # (P, 2)
        if obj[points[:, 0], points[:, 1]].any():
            hits.append(True)
            continue
        hits.append(tolerance_px > 0 and _nearest_distance2(points, np.argwhere(obj)) <= float(tolerance_px) ** 2)
    return {"per_image": hits, "mean": float(np.mean(hits)), "n": len(hits)}


def wilson_interval95(hits: int, n: int) -> tuple[float, float]:
    """The Wilson score 95 % interval of a proportion ``hits / n`` (e.g. a pointing-game hit rate).

    ``(p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``z = 1.96`` (Wilson, "Probable
    inference, the law of succession, and statistical inference", JASA 1927); unlike the normal
    (Wald) interval it stays in ``[0, 1]`` and is not empty for a rate of 0 or 1.

    Args:
        hits: successes, ``0 <= hits <= n``.
        n: trials, ``>= 1``.

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: ``n`` < 1 or ``hits`` outside ``[0, n]``.
    """
    if int(n) != n or n < 1 or int(hits) != hits or not 0 <= hits <= n:
        raise ValueError(f"wilson_interval95: need integers 0 <= hits <= n and n >= 1, got hits={hits!r}, n={n!r}.")
    z = 1.959963984540054
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
