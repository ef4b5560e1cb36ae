"""How :class:`~monai_ssl.handlers.ClassificationReportWriter` reads a batch: predictions, labels, class indices.

Split from ``classification_report.py`` to keep one idea per file; the functions accept both MONAI output
layouts (a dict of batched tensors with ``decollate=False``, a list of per-sample dicts with ``decollate=True``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.handlers import from_engine

__all__ = ["default_report_output_transform"]


def default_report_output_transform(output: Any) -> tuple[Any, Any | None]:
    """Read ``(pred, label)`` from ``engine.state.output``; ``label`` is ``None`` when absent.

    Supports both MONAI output layouts: a dict of batched tensors (``decollate=False``) and a list of
    per-sample dicts (``decollate=True``).
    """
    first = output[0] if isinstance(output, list) and output else output
    if not isinstance(first, dict) or "pred" not in first:
        raise ValueError(
            "ClassificationReportWriter: engine.state.output must be a dict or a list of dicts with key 'pred', "
            f"got {type(first).__name__}; pass `output_transform` to read it."
        )
    if first.get("label") is not None:
        return from_engine(["pred", "label"])(output)
    probs = output["pred"] if isinstance(output, dict) else [o["pred"] for o in output]
    return probs, None


def _to_numpy(value: Any) -> np.ndarray:
    """numpy view of a tensor, array or number."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().as_subclass(torch.Tensor)
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return np.asarray(value)


def _per_sample(values: Any, name: str) -> np.ndarray:
    """Flatten a batch (tensor ``(B,)``/``(B, 1)`` or list of one-element items) to a 1-D array."""
    if isinstance(values, (list, tuple)):
        items = [_to_numpy(v) for v in values]
        bad = [i.shape for i in items if i.size != 1]
        if bad:
            raise ValueError(
                f"ClassificationReportWriter: expected one {name} per sample (single-logit output), "
                f"got per-sample shape {bad[0]}."
            )
        return np.concatenate([i.reshape(1) for i in items]) if items else np.zeros(0)
    arr = _to_numpy(values)
    if arr.ndim == 0:
        return arr.reshape(1)
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"ClassificationReportWriter: expected one {name} per sample, shape (B,) or (B, 1), got {arr.shape}."
        )
    return arr


def _rows(values: Any) -> np.ndarray:
    """Predictions of a batch as a 2-D array ``(B, M)``: ``M = 1`` for a single probability per sample.

    A batched tensor/array may be ``()``, ``(B,)``, ``(B, 1)`` or ``(B, K)``; a list holds one prediction per
    sample, each of one element or a vector of ``K``.
    """
    if isinstance(values, (list, tuple)):
        items = [_to_numpy(v).reshape(-1) for v in values]
        sizes = sorted({i.size for i in items})
        if len(sizes) > 1:
            raise ValueError(f"ClassificationReportWriter: per-sample predictions differ in size: {sizes}.")
        return np.stack(items) if items else np.zeros((0, 1))
    arr = _to_numpy(values)
    if arr.ndim == 0:
        return arr.reshape(1, 1)
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            "ClassificationReportWriter: expected predictions of shape (B,), (B, 1) or (B, K) (class probabilities), "
            f"got {arr.shape}."
        )
    return arr


def _class_indices(values: Any, count: int, num_classes: int) -> np.ndarray:
    """Multi-class labels of a batch as int64 indices ``(B,)``, from indices ``(B,)``/``(B, 1)`` or one-hot ``(B, K)``.

    Args:
        values: batched tensor/array or list of per-sample labels.
        count: number of samples of the batch.
        num_classes: ``K``.
    """
    if isinstance(values, (list, tuple)):
        items = [_to_numpy(v).reshape(-1) for v in values]
        sizes = sorted({i.size for i in items})
        if len(sizes) > 1:
            raise ValueError(f"ClassificationReportWriter: per-sample labels differ in size: {sizes}.")
        arr = np.stack(items) if items else np.zeros((0, 1))
    else:
        arr = _to_numpy(values)
        arr = arr.reshape(1, 1) if arr.ndim == 0 else arr[:, None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] != count or arr.shape[1] not in (1, num_classes):
        raise ValueError(
            f"ClassificationReportWriter: expected {count} labels as class indices (B,)/(B, 1) or one-hot "
            f"(B, {num_classes}), got shape {arr.shape}."
        )
    arr = arr.astype(np.float64)
    if arr.shape[1] == num_classes:
        if not (np.all((arr == 0.0) | (arr == 1.0)) and np.all(arr.sum(axis=1) == 1.0)):
            raise ValueError(
                f"ClassificationReportWriter: labels of shape (B, {num_classes}) must be one-hot (a single 1 per row)."
            )
        return np.argmax(arr, axis=1).astype(np.int64)
    idx = arr[:, 0]
    valid = np.isfinite(idx) & (idx == np.round(idx)) & (idx >= 0) & (idx < num_classes)
    if not np.all(valid):
        found = np.unique(idx[~valid])[:5].tolist()
        raise ValueError(
            f"ClassificationReportWriter: labels must be class indices in [0, {num_classes - 1}], got {found}."
        )
    return idx.astype(np.int64)
