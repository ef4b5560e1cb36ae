"""The pieces of :class:`~monai_ssl.handlers.SaliencyWriter` that do not need the engine.

Which saliency method suits a network, one evaluated image as the writer keeps it, and the summary of
the in-mask shares and pointing-game hits (gathered over the ranks) that goes into ``saliency.json``
and ``metrics.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from monai.data import decollate_batch
from monai.networks.nets import ViT
from monai.utils import evenly_divisible_all_gather, string_list_all_gather
from torch import nn

from monai_ssl.metrics import mean_ci95
from monai_ssl.metrics.saliency_overlap import wilson_interval95
from monai_ssl.visualize.saliency import SALIENCY_METHODS, gradcam_target_layer

__all__ = ["SaliencySample", "measurement_summary", "per_sample", "resolve_saliency_method", "safe_file_name"]


def resolve_saliency_method(network: nn.Module, method: str = "auto", slice_axis: int | None = None) -> str:
    """The saliency method for ``network``: ``"auto"`` picks ``"vit_gradcam"`` for a network holding a MONAI
    ``ViT``, ``"gradcam"`` for one holding a ResNet (:func:`~monai_ssl.visualize.gradcam_target_layer`),
    else ``"gradient"``; volumes (``slice_axis`` set) always use ``"gradient"`` (Grad-CAM on a per-slice
    encoder mixes the slices of the batch).

    Raises:
        ValueError: an unknown ``method``, or a Grad-CAM method for volumes.
    """
    if method not in ("auto", *SALIENCY_METHODS):
        raise ValueError(f"SaliencyWriter: `method` must be 'auto' or one of {SALIENCY_METHODS}, got {method!r}.")
    if slice_axis is not None:
        if method not in ("auto", "gradient"):
            raise ValueError(
                f"SaliencyWriter: method={method!r} with slice_axis={slice_axis} (volumes): only 'gradient' "
                "saliency is computed on volumes; use method='gradient' or 'auto'."
            )
        return "gradient"
    if method != "auto":
        return method
    if any(isinstance(m, ViT) for m in network.modules()):
        return "vit_gradcam"
    try:
        gradcam_target_layer(network)
    except ValueError:
        return "gradient"
    return "gradcam"


@dataclass
class SaliencySample:
    """One evaluated image: its running index, id, CPU tensors and prediction."""

    index: int
    id: str
    image: torch.Tensor
    mask: torch.Tensor | None
    probs: np.ndarray
    label: np.ndarray | None
    predicted: int
    confidence: float
    display: torch.Tensor | None = None


def per_sample(data: Any) -> list[dict]:
    """A list of per-sample dicts from a batched dict or MONAI's decollated list."""
    if isinstance(data, dict):
        return decollate_batch(data, detach=True)
    if isinstance(data, (list, tuple)) and all(isinstance(d, dict) for d in data):
        return list(data)
    raise ValueError(f"SaliencyWriter: expected a dict or a list of dicts from the evaluator, got {type(data).__name__}.")


def as_numpy(value: Any) -> np.ndarray:
    """A float numpy copy of a tensor, array or number."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().as_subclass(torch.Tensor).float().numpy()
    return np.asarray(value, dtype=np.float64)


def safe_file_name(name: str) -> str:
    """A file-name-safe form of an id (its image suffix dropped)."""
    stem = re.sub(r"\.(png|jpe?g|bmp|tiff?|nii(\.gz)?|npy|npz)$", "", str(name), flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "image"


def measurement_summary(method: str, measured: list[tuple[str, float | None, bool]], no_object: list[str]) -> dict | None:
    """Mean in-mask share (Student t 95 % interval) and pointing-game hit rate (Wilson 95 % interval).

    Args:
        method: the saliency method, recorded in the summary.
        measured: ``(id, in-mask share or None, pointing-game hit)`` of this rank's measured images.
        no_object: ids of this rank's images whose mask was empty (not measured).

    Returns:
        The summary over every rank (gathered when distributed), or ``None`` when nothing was measured.
    """
    ids = [v[0] for v in measured]
    shares = torch.tensor([np.nan if v[1] is None else v[1] for v in measured], dtype=torch.float64)
    hits = torch.tensor([float(v[2]) for v in measured], dtype=torch.float64)
    no_object = list(no_object)
    if idist.get_world_size() > 1:
        ids, no_object = string_list_all_gather(ids), string_list_all_gather(no_object)
        shares = evenly_divisible_all_gather(shares.to(idist.device()), concat=True).cpu()
        hits = evenly_divisible_all_gather(hits.to(idist.device()), concat=True).cpu()
    if not ids:
        return None
    defined = [float(v) for v in shares.tolist() if np.isfinite(v)]
    mean, half, _ = mean_ci95(defined) if defined else (None, None, 0)
    n_hits = int(hits.sum().item())
    return {
        "method": method,
        "in_mask_share_mean": mean,
        "in_mask_share_ci": None if half is None else [max(0.0, mean - half), min(1.0, mean + half)],
        "in_mask_share_ci_kind": "Student t 95% interval of the mean (monai_ssl.metrics.mean_ci95)",
        "pointing_game_hit_rate": n_hits / len(ids),
        "pointing_game_ci": list(wilson_interval95(n_hits, len(ids))),
        "pointing_game_ci_kind": "Wilson score 95% interval",
        "n": len(ids),
        "n_without_object": len(no_object),
        "per_image": [
            {"id": i, "in_mask_share": None if not np.isfinite(v) else float(v), "pointing_game_hit": bool(h)}
            for i, v, h in zip(ids, shares.tolist(), hits.tolist())
        ],
    }
