"""Multi-class classification metrics as plain numpy functions.

``probabilities`` have shape ``(N, K)`` with ``K >= 2`` (one row per sample, softmax already applied:
each row lies in ``[0, 1]`` and sums to 1); ``labels`` are class indices in ``[0, K)`` of shape ``(N,)``
or ``(N, 1)``. Lists, numpy arrays and torch tensors are accepted. The predicted class is the arg-max
of a row (ties go to the lowest index). Results are plain Python values with ``None`` instead of NaN,
so they can go straight into ``json.dumps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .binary import _as_1d, _ratio, roc_auc, roc_curve

__all__ = ["ROW_SUM_TOLERANCE", "multiclass_classification_metrics", "one_vs_rest_roc_curves"]

ROW_SUM_TOLERANCE = 1e-2
"""Largest accepted ``|sum(row) - 1|`` of a probability row (loose enough for float16/bfloat16 softmax)."""


def float_rows(values: Any, name: str, shape: str = "(N, K)") -> np.ndarray:
    """Convert ``values`` (tensor, array, list of rows or of tensors) to a float64 array, refusing non-numbers.

    The multi-class and multi-label reports check the shape they need on the result.
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().float().numpy()
    elif isinstance(values, (list, tuple)):
        values = [v.detach().cpu().float().numpy() if hasattr(v, "detach") else v for v in values]
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be a numeric array of shape {shape}: {e}") from e


def _as_2d(values: Any, name: str) -> np.ndarray:
    """Convert ``values`` (tensor, array, list of rows) to a float64 array of shape ``(N, K)``."""
    arr = float_rows(values, name)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (N, K), got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty.")
    if arr.shape[1] < 2:
        raise ValueError(
            f"`{name}` must have K >= 2 columns, got shape {arr.shape}; "
            "for a single probability per sample use `binary_classification_metrics`."
        )
    return arr


def _validate(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(probabilities (N, K) float64, labels (N,) int64)`` after checking shapes and ranges."""
    p = _as_2d(probabilities, "probabilities")
    y = _as_1d(labels, "labels")
    n, k = p.shape
    if y.shape[0] != n:
        raise ValueError(f"`probabilities` and `labels` differ in length: {n} != {y.shape[0]}.")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        bad = p[~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))]
        raise ValueError(
            f"`probabilities` must lie in [0, 1]; found {bad[:5].tolist()} (for logits, apply a softmax first)."
        )
    sums = p.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if off.size:
        raise ValueError(
            f"every row of `probabilities` must sum to 1; row {int(off[0])} sums to {float(sums[off[0]]):.4f} "
            f"({off.size} of {n} rows off; apply a softmax first)."
        )
    try:
        y_float = y.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`labels` must be integer class indices: {e}") from e
    valid = np.isfinite(y_float) & (y_float == np.round(y_float)) & (y_float >= 0) & (y_float < k)
    if not np.all(valid):
        found = np.unique(y_float[~valid])[:5].tolist()
        raise ValueError(f"`labels` must be integer class indices in [0, {k - 1}]; found {found}.")
    return p, y_float.astype(np.int64)


def _class_names(class_names: Sequence[str] | None, k: int, setting: str = "class_names", what: str = "classes") -> list[str]:
    """``class_names`` as a list of ``k`` distinct strings (default ``"0"``, ``"1"``, ...); errors name ``setting``."""
    if class_names is None:
        return [str(i) for i in range(k)]
    if isinstance(class_names, str):
        raise ValueError(f"`{setting}` must be a sequence of strings, got the string {class_names!r}.")
    names = [str(c) for c in class_names]
    if len(names) != k:
        raise ValueError(f"`{setting}` has {len(names)} names for {k} {what} (columns of `probabilities`).")
    if len(set(names)) != k:
        raise ValueError(f"`{setting}` must be distinct, got {names}.")
    return names


def one_vs_rest_roc_curves(
    probabilities: Any, labels: Any
) -> list[tuple[np.ndarray, np.ndarray, float] | None]:
    """One-vs-rest ROC curve of every class: class ``k`` positive, all others negative, score ``p[:, k]``.

    Args:
        probabilities: shape ``(N, K)``, rows summing to 1.
        labels: class indices in ``[0, K)``, shape ``(N,)`` or ``(N, 1)``.

    Returns:
        A list of ``K`` entries: ``(fpr, tpr, auc)`` (see :func:`monai_ssl.metrics.roc_curve`), or ``None``
        for a class whose curve is undefined because it is absent from ``labels`` or is every label.

    Raises:
        ValueError: on invalid input.
    """
    p, y = _validate(probabilities, labels)
    curves: list[tuple[np.ndarray, np.ndarray, float] | None] = []
    for k in range(p.shape[1]):
        positive = (y == k).astype(np.int64)
        if 0 < positive.sum() < positive.shape[0]:
            fpr, tpr, _ = roc_curve(p[:, k], positive)
            curves.append((fpr, tpr, roc_auc(p[:, k], positive)))
        else:
            curves.append(None)
    return curves


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def multiclass_classification_metrics(
    probabilities: Any, labels: Any, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Accuracy, per-class and macro precision/recall/F1, one-vs-rest AUC and the confusion matrix.

    Per class ``k`` (one-vs-rest counts ``tp``, ``fp``, ``fn``): ``precision = tp / (tp + fp)`` (``None`` when
    ``k`` is never predicted), ``recall = tp / (tp + fn)`` (``None`` when ``k`` is absent from the labels),
    ``f1 = 2 tp / (2 tp + fp + fn)`` (``None`` when ``k`` is neither present nor predicted), and ``auc``, the
    one-vs-rest ROC AUC of ``p[:, k]`` (``None`` when ``k`` is absent from the labels or is every label).

    ``macro_precision``, ``macro_recall``, ``macro_f1`` and ``macro_auc`` are each the mean over the classes
    where that per-class value is defined; an undefined value (``None``, a ``0 / 0``) is left out of the
    mean, not counted as ``0``, and the macro value is ``None`` (NaN) when no class has one. So a class that
    is never predicted drops out of ``macro_precision`` (its recall, ``0``, still counts in
    ``macro_recall``), and a class predicted but absent from the labels drops out of ``macro_recall``
    (its precision, ``0``, still counts). This is scikit-learn's ``average="macro", zero_division=np.nan``.
    A classifier that never predicts a present class is still penalised, by its recall and F1 of ``0``.
    When a class that occurs in the labels or the predictions is left out of ``macro_precision`` or
    ``macro_recall``, a ``macro_note`` names it; when some AUCs are undefined an ``auc_note`` names the
    classes left out.

    Args:
        probabilities: shape ``(N, K)``, ``K >= 2``, rows in ``[0, 1]`` summing to 1
            (within :data:`ROW_SUM_TOLERANCE`).
        labels: integer class indices in ``[0, K)``, shape ``(N,)`` or ``(N, 1)``.
        class_names: ``K`` distinct names, the keys of ``per_class``; default ``"0"``, ..., ``"K-1"``.

    Returns:
        A JSON-serialisable dict with keys ``accuracy``, ``per_class`` (``{name: {precision, recall, f1,
        support, auc}}``, in class order), ``macro_precision``, ``macro_recall``, ``macro_f1``, ``macro_auc``
        (each ``None`` when undefined for every class),
        ``confusion_matrix`` (``K x K`` ints, rows = true class, columns = predicted class),
        ``class_names``, ``n``, and only when needed ``macro_note`` and ``auc_note``.

    Raises:
        ValueError: on invalid input (shapes, lengths, probabilities outside ``[0, 1]`` or rows not summing
            to 1, labels outside ``[0, K)``, wrong or repeated class names).
    """
    p, y = _validate(probabilities, labels)
    n, k = p.shape
    names = _class_names(class_names, k)
    pred = np.argmax(p, axis=1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)

    per_class: dict[str, dict[str, Any]] = {}
    macro: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    aucs: list[float] = []
    no_auc: list[str] = []
    never_predicted: list[str] = []  # present in the labels, never predicted: precision undefined
    never_labeled: list[str] = []  # predicted, absent from the labels: recall undefined
    for c, name in enumerate(names):
        tp = int(cm[c, c])
        support = int(cm[c, :].sum())
        predicted = int(cm[:, c].sum())
        fp, fn = predicted - tp, support - tp
        auc = roc_auc(p[:, c], (y == c).astype(np.int64)) if 0 < support < n else None
        stats = {
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "support": support,
            "auc": auc,
        }
        per_class[name] = stats
        if support and not predicted:
            never_predicted.append(name)
        if predicted and not support:
            never_labeled.append(name)
        for key in macro:
            if stats[key] is not None:  # an undefined (0 / 0) value is left out of the macro mean
                macro[key].append(stats[key])
        if auc is None:
            no_auc.append(name)
        else:
            aucs.append(auc)

    result: dict[str, Any] = {
        "accuracy": float(np.trace(cm)) / n,
        "per_class": per_class,
        "macro_precision": _mean_or_none(macro["precision"]),
        "macro_recall": _mean_or_none(macro["recall"]),
        "macro_f1": _mean_or_none(macro["f1"]),
        "macro_auc": _mean_or_none(aucs),
        "confusion_matrix": cm.tolist(),
        "class_names": names,
        "n": int(n),
    }
    left_out = [f"precision for {never_predicted} (never predicted)"] if never_predicted else []
    left_out += [f"recall for {never_labeled} (absent from the labels)"] if never_labeled else []
    if left_out:
        result["macro_note"] = (
            f"undefined (0 / 0) and left out of the macro means: {' and '.join(left_out)}; "
            "macro_precision and macro_recall average the other classes."
        )
    if no_auc:
        result["auc_note"] = (
            f"one-vs-rest AUC is undefined for classes {no_auc} (absent from the labels, or every label); "
            + ("macro_auc averages the other classes." if aucs else "macro_auc is undefined.")
        )
    return result
