"""Binary classification metrics as plain numpy functions.

Every function accepts Python lists, numpy arrays or torch tensors of shape ``(N,)`` or ``(N, 1)``.
``probs`` are probabilities of class 1 in ``[0, 1]``; ``labels`` are ``0``/``1``.
Results are plain Python ``float``/``int`` (or ``None`` where a ratio has a zero denominator), so
they can go straight into ``json.dumps``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.metrics import compute_roc_auc

__all__ = ["binary_classification_metrics", "roc_auc", "roc_curve"]


def _as_1d(values: Any, name: str) -> np.ndarray:
    """Convert ``values`` to a 1-D numpy array, accepting shapes ``(N,)`` and ``(N, 1)``."""
    if hasattr(values, "detach"):  # torch.Tensor
        values = values.detach().cpu().numpy()
    elif isinstance(values, (list, tuple)):
        values = [v.detach().cpu().numpy() if hasattr(v, "detach") else v for v in values]
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must have shape (N,) or (N, 1), got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty.")
    return arr


def _validate(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(probs as float64, labels as int64)`` after checking shapes, ranges and classes."""
    p = _as_1d(probs, "probs")
    y = _as_1d(labels, "labels")
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"`probs` and `labels` differ in length: {p.shape[0]} != {y.shape[0]}.")
    try:
        p = p.astype(np.float64)
        y_float = y.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`probs` and `labels` must be numeric: {e}") from e
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        bad = p[~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))]
        raise ValueError(
            f"`probs` must be probabilities in [0, 1]; found {bad[:5].tolist()} "
            "(for logits, apply a sigmoid first)."
        )
    if not np.all((y_float == 0.0) | (y_float == 1.0)):
        found = sorted(set(np.unique(y_float).tolist()) - {0.0, 1.0})
        raise ValueError(f"`labels` must be 0 or 1; found {found[:5]}.")
    return p, y_float.astype(np.int64)


def _single_class_message(y: np.ndarray) -> str:
    """Explain why a ROC curve / AUC is undefined for ``y``."""
    return (
        f"ROC AUC is undefined when only one class is present: all {y.shape[0]} labels are {int(y[0])}; "
        "both classes 0 and 1 are needed."
    )


def roc_curve(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic curve (MONAI computes the AUC but has no ROC curve function).

    Samples with equal scores are grouped into one step, so ties produce a diagonal segment instead
    of an order-dependent staircase. A sample is called positive at threshold ``t`` when
    ``prob >= t``. No intermediate point is dropped.

    Args:
        probs: probabilities of class 1, shape ``(N,)`` or ``(N, 1)``.
        labels: ground-truth labels in ``{0, 1}``, same length.

    Returns:
        ``(fpr, tpr, thresholds)``: float64 arrays of equal length. The first point is ``(0, 0)`` with
        threshold ``inf``; the last point is ``(1, 1)`` with the lowest score as threshold.
        Thresholds decrease strictly.

    Raises:
        ValueError: on invalid input or when ``labels`` hold only one class.
    """
    p, y = _validate(probs, labels)
    n_pos = int(y.sum())
    n_neg = int(y.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(_single_class_message(y))
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    # index of the last sample of every group of equal scores
    group_ends = np.r_[np.flatnonzero(np.diff(p_sorted) != 0.0), p_sorted.shape[0] - 1]
    tps = np.cumsum(y_sorted)[group_ends]
    fps = (group_ends + 1) - tps
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, p_sorted[group_ends]]
    return fpr.astype(np.float64), tpr.astype(np.float64), thresholds.astype(np.float64)


def roc_auc(probs: Any, labels: Any) -> float:
    """Area under the ROC curve, computed by :func:`monai.metrics.compute_roc_auc`.

    Equal to the Mann-Whitney probability that a random positive scores higher than a random
    negative, ties counted as one half. Unlike MONAI's function, which warns and returns NaN, an
    undefined AUC (one class only) is an error here; :func:`binary_classification_metrics` reports
    it as ``None``.

    Args:
        probs: probabilities of class 1, shape ``(N,)`` or ``(N, 1)``.
        labels: ground-truth labels in ``{0, 1}``, same length.

    Returns:
        The AUC in ``[0, 1]`` as a Python float.

    Raises:
        ValueError: on invalid input or when ``labels`` hold only one class.
    """
    p, y = _validate(probs, labels)
    if np.all(y == y[0]):
        raise ValueError(_single_class_message(y))
    return float(compute_roc_auc(torch.from_numpy(p), torch.from_numpy(y)))


def _ratio(num: int, den: int) -> float | None:
    """``num / den`` as a float, or ``None`` when ``den`` is zero."""
    return None if den == 0 else float(num) / float(den)


def binary_classification_metrics(probs: Any, labels: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Threshold-based and ranking metrics of a binary classifier.

    A sample is predicted positive when ``prob >= threshold``. Ratios whose denominator is zero are
    ``None`` (never NaN). ``f1`` is ``2 tp / (2 tp + fp + fn)``, which equals the harmonic mean of
    precision and sensitivity when both exist, and is ``0.0`` when positives exist but none is found.

    Args:
        probs: probabilities of class 1, shape ``(N,)`` or ``(N, 1)``.
        labels: ground-truth labels in ``{0, 1}``, same length.
        threshold: decision threshold on ``probs``.

    Returns:
        A JSON-serialisable dict with keys ``accuracy``, ``auc`` (``None`` when only one class is
        present, and then an extra ``auc_note`` explains why), ``sensitivity``, ``specificity``,
        ``precision``, ``f1``, ``confusion_matrix`` (``[[tn, fp], [fn, tp]]``), ``n``, ``n_positive``
        and ``threshold``.

    Raises:
        ValueError: on invalid input (shapes, lengths, labels outside ``{0, 1}``, probs outside ``[0, 1]``).
    """
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be a finite number, got {threshold}.")
    p, y = _validate(probs, labels)
    pred = (p >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    n = int(y.shape[0])
    n_pos = tp + fn
    result: dict[str, Any] = {
        "accuracy": _ratio(tp + tn, n),
        "auc": None,
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n": n,
        "n_positive": n_pos,
        "threshold": threshold,
    }
    if 0 < n_pos < n:
        result["auc"] = roc_auc(p, y)
    else:
        result["auc_note"] = _single_class_message(y)
    return result
