"""Multi-label classification metrics and per-label decision thresholds, as plain numpy functions.

In a multi-label task every sample may carry any subset of ``K`` labels (the multi-label
immunofluorescence set in the classification experiments of S4MI, Singh et al., reported as F1). The network has one sigmoid
output per label, so ``probabilities`` are an ``(N, K)`` array of independent probabilities in
``[0, 1]`` (rows need not sum to 1) and ``targets`` an ``(N, K)`` array of ``0``/``1``. Label ``k`` is
predicted for a sample when ``probabilities[:, k] >= thresholds[k]``, the rule of
:func:`monai_ssl.metrics.binary_classification_metrics`.

:func:`multilabel_report` gives per-label, macro and micro precision, recall, F1 and per-label ROC AUC
(the definitions of scikit-learn's ``precision_recall_fscore_support`` with ``zero_division=np.nan``
and ``roc_auc_score``); :func:`choose_thresholds` picks one threshold per label maximising F1 on
validation data (issue 23, item 3: "a threshold per label chosen on validation, 0.5 by default").
For single-label tasks, the macro recall (balanced accuracy) the paper reports on ISIC 2017 is
``macro_recall`` of :func:`monai_ssl.metrics.multiclass_classification_metrics`.

Lists, numpy arrays and torch tensors are accepted. Results are plain Python values with ``None``
instead of NaN, so they can go straight into ``json.dumps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .binary import _ratio, _single_class_message, roc_auc
from .multiclass import _class_names, float_rows

__all__ = ["DEFAULT_THRESHOLD", "THRESHOLD_CRITERIA", "choose_thresholds", "multilabel_report"]

DEFAULT_THRESHOLD = 0.5
"""Threshold of a label when none is given or chosen (the sigmoid's midpoint)."""

THRESHOLD_CRITERIA = ("f1",)
"""Criteria :func:`choose_thresholds` can maximise."""


def _as_2d(values: Any, name: str) -> np.ndarray:
    """Convert ``values`` (tensor, array, list of rows) to a float64 array of shape ``(N, K)``."""
    arr = float_rows(values, name, "(N, K) (samples x labels)")
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (N, K) (samples x labels), got shape {arr.shape}; "
            "for one binary label use shape (N, 1) or `binary_classification_metrics`."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape}).")
    return arr


def _validate(probabilities: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(probabilities (N, K) float64, targets (N, K) int64)`` after checking shapes and values."""
    p = _as_2d(probabilities, "probabilities")
    y = _as_2d(targets, "targets")
    if p.shape != y.shape:
        raise ValueError(
            f"`probabilities` and `targets` must have the same shape (N, K), got {p.shape} and {y.shape}."
        )
    nan = np.argwhere(np.isnan(p))
    if nan.size:
        row, col = (int(v) for v in nan[0])
        raise ValueError(
            f"`probabilities` hold {nan.shape[0]} NaN value(s), first at sample {row}, label {col}; "
            "check the network output (a diverged model or a NaN input)."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        bad = p[~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))]
        raise ValueError(
            f"`probabilities` must lie in [0, 1]; found {bad[:5].tolist()} (for logits, apply a sigmoid first)."
        )
    if not np.all((y == 0.0) | (y == 1.0)):
        found = np.unique(y[~((y == 0.0) | (y == 1.0))])[:5].tolist()
        raise ValueError(f"`targets` must be 0 or 1 (one column per label); found {found}.")
    return p, y.astype(np.int64)


def _label_names(label_names: Sequence[str] | None, k: int) -> list[str]:
    """``label_names`` as a list of ``k`` distinct strings (default ``"0"``, ``"1"``, ...)."""
    return _class_names(label_names, k, setting="label_names", what="labels")


def _check_threshold(value: Any, name: str) -> float:
    """``value`` as a float in ``[0, 1]``, or a ValueError naming ``name``."""
    try:
        t = float(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}.") from e
    if not (np.isfinite(t) and 0.0 <= t <= 1.0):
        raise ValueError(f"`{name}` must be a number in [0, 1], got {t}.")
    return t


def _thresholds(thresholds: Any, k: int) -> np.ndarray:
    """Broadcast ``None`` / a number / ``K`` numbers to a float64 array of ``K`` thresholds in ``[0, 1]``."""
    if thresholds is None:
        return np.full(k, DEFAULT_THRESHOLD)
    if hasattr(thresholds, "detach"):
        thresholds = thresholds.detach().cpu().numpy()
    arr = np.asarray(thresholds, dtype=object)
    if arr.ndim == 0:
        return np.full(k, _check_threshold(arr.item(), "thresholds"))
    flat = arr.reshape(-1)
    if arr.ndim != 1 or flat.shape[0] != k:
        raise ValueError(
            f"`thresholds` must be one number or one per label: expected {k} values, got shape {arr.shape}."
        )
    return np.array([_check_threshold(v, f"thresholds[{i}]") for i, v in enumerate(flat)], dtype=np.float64)


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def multilabel_report(
    probabilities: Any,
    targets: Any,
    thresholds: float | Sequence[float] | np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-label, macro and micro precision/recall/F1, per-label ROC AUC and exact-match ratio.

    Per label ``k``, with counts ``tp``, ``fp``, ``fn`` of ``probabilities[:, k] >= thresholds[k]``
    against ``targets[:, k]``: ``precision = tp / (tp + fp)`` (``None`` when ``k`` is never predicted),
    ``recall = tp / (tp + fn)`` (``None`` when ``k`` has no positive target), ``f1 = 2 tp / (2 tp + fp + fn)``
    (``None`` when ``k`` is neither a target nor predicted), ``auc``, the ROC AUC of ``probabilities[:, k]``
    (threshold-free; ``None`` with a reason in ``auc_note`` when the targets of ``k`` are all 0 or all 1),
    and ``support``, the number of positive targets.

    ``macro_*`` is the unweighted mean of the per-label values over the labels where the value is
    defined (an undefined ``0 / 0`` is left out, not counted as 0; ``macro_note`` names such labels),
    as scikit-learn's ``average="macro", zero_division=np.nan``. ``micro_*`` pools the counts of all
    labels first: ``micro_precision = sum tp / sum (tp + fp)``, ``micro_recall = sum tp / sum (tp + fn)``,
    ``micro_f1 = 2 sum tp / (2 sum tp + sum fp + sum fn)`` (``average="micro"``). ``exact_match`` is the
    share of samples whose whole predicted label set equals the target set (scikit-learn's
    ``accuracy_score`` on multi-label input).

    Args:
        probabilities: shape ``(N, K)``, independent per-label probabilities in ``[0, 1]`` (sigmoid outputs).
        targets: shape ``(N, K)``, ``0``/``1`` (bool accepted).
        thresholds: ``None`` (:data:`DEFAULT_THRESHOLD` for every label), one number for every label, or
            ``K`` numbers (e.g. from :func:`choose_thresholds`), each in ``[0, 1]``.
        label_names: ``K`` distinct names, the keys of ``per_label``; default ``"0"``, ..., ``"K-1"``.

    Returns:
        A JSON-serialisable dict with keys ``per_label`` (``{name: {precision, recall, f1, auc, support,
        predicted, threshold}}`` in label order), ``macro_precision``, ``macro_recall``, ``macro_f1``,
        ``macro_auc``, ``micro_precision``, ``micro_recall``, ``micro_f1`` (each ``None`` when undefined),
        ``exact_match``, ``thresholds`` (the ``K`` thresholds used), ``label_names``, ``n``, and only
        when needed ``macro_note`` and ``auc_note``.

    Raises:
        ValueError: on invalid input: shapes other than ``(N, K)`` or differing, NaN or probabilities
            outside ``[0, 1]``, targets outside ``{0, 1}``, a threshold count other than ``K`` or a
            threshold outside ``[0, 1]``, wrong or repeated label names.
    """
    p, y = _validate(probabilities, targets)
    n, k = p.shape
    names = _label_names(label_names, k)
    thr = _thresholds(thresholds, k)
    pred = (p >= thr[None, :]).astype(np.int64)
    tp = np.sum((pred == 1) & (y == 1), axis=0)
    fp = np.sum((pred == 1) & (y == 0), axis=0)
    fn = np.sum((pred == 0) & (y == 1), axis=0)

    per_label: dict[str, dict[str, Any]] = {}
    macro: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    undefined: dict[str, list[str]] = {"precision": [], "recall": [], "f1": []}
    aucs: list[float] = []
    no_auc: list[str] = []
    for j, name in enumerate(names):
        t, f_p, f_n = int(tp[j]), int(fp[j]), int(fn[j])
        support = t + f_n
        auc = roc_auc(p[:, j], y[:, j]) if 0 < support < n else None
        stats: dict[str, Any] = {
            "precision": _ratio(t, t + f_p),
            "recall": _ratio(t, t + f_n),
            "f1": _ratio(2 * t, 2 * t + f_p + f_n),
            "auc": auc,
            "support": support,
            "predicted": t + f_p,
            "threshold": float(thr[j]),
        }
        per_label[name] = stats
        for key in macro:
            if stats[key] is None:
                undefined[key].append(name)
            else:
                macro[key].append(stats[key])
        if auc is None:
            no_auc.append(f"{name!r} ({_single_class_message(y[:, j])})")
        else:
            aucs.append(auc)

    sum_tp, sum_fp, sum_fn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    result: dict[str, Any] = {
        "per_label": per_label,
        "macro_precision": _mean_or_none(macro["precision"]),
        "macro_recall": _mean_or_none(macro["recall"]),
        "macro_f1": _mean_or_none(macro["f1"]),
        "macro_auc": _mean_or_none(aucs),
        "micro_precision": _ratio(sum_tp, sum_tp + sum_fp),
        "micro_recall": _ratio(sum_tp, sum_tp + sum_fn),
        "micro_f1": _ratio(2 * sum_tp, 2 * sum_tp + sum_fp + sum_fn),
        "exact_match": float(np.mean(np.all(pred == y, axis=1))),
        "thresholds": [float(v) for v in thr],
        "label_names": names,
        "n": int(n),
    }
    reasons = {"precision": "never predicted", "recall": "no positive target", "f1": "neither target nor predicted"}
    left_out = [f"{key} of {undefined[key]} ({reasons[key]})" for key in macro if undefined[key]]
    if left_out:
        result["macro_note"] = (
            f"undefined (0 / 0) and left out of the macro means: {'; '.join(left_out)}; "
            "the macro values average the other labels."
        )
    if no_auc:
        result["auc_note"] = (
            f"ROC AUC is undefined for labels {'; '.join(no_auc)}; "
            + ("macro_auc averages the other labels." if aucs else "macro_auc is undefined.")
        )
    return result


def _best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The smallest observed probability ``t`` maximising the F1 of ``p >= t`` against ``y`` (positives exist)."""
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    # last index of every group of equal scores: thresholds in decreasing order
    group_ends = np.r_[np.flatnonzero(np.diff(p_sorted) != 0.0), p_sorted.shape[0] - 1]
    tp = np.cumsum(y_sorted)[group_ends]
    predicted = group_ends + 1
    # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (predicted + positives); equal ratios of integers are
    # equal floats (IEEE division rounds correctly), so ties compare exactly
    f1 = 2.0 * tp / (predicted + int(y.sum()))
    best = np.flatnonzero(f1 == f1.max())[-1]  # the last = the smallest threshold among the ties
    return float(p_sorted[group_ends[best]])


def choose_thresholds(
    probabilities: Any, targets: Any, criterion: str = "f1", default: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """One decision threshold per label, maximising the label's F1 on the given (validation) data.

    The candidates of label ``k`` are its observed probabilities ``probabilities[:, k]`` (a threshold
    between two observed values predicts the same as the upper one, so no other value scores higher on
    these data). Among the candidates reaching the best F1 the **smallest** is returned: for equal F1 it
    predicts the label most often, so its recall is the highest, the safer side for screening (a missed
    melanoma costs more than a second look). A label without any positive target, where F1 cannot be
    above 0, gets ``default``. Issue 23, item 3, asks for this per-label validation threshold, 0.5 by
    default; the rule ``p >= t`` is that of :func:`multilabel_report`, which takes the result.

    Args:
        probabilities: shape ``(N, K)``, independent per-label probabilities in ``[0, 1]``.
        targets: shape ``(N, K)``, ``0``/``1``.
        criterion: what to maximise; only ``"f1"`` (see :data:`THRESHOLD_CRITERIA`).
        default: threshold in ``[0, 1]`` of a label with no positive target.

    Returns:
        A float64 array of ``K`` thresholds in ``[0, 1]``.

    Raises:
        ValueError: on invalid input (as :func:`multilabel_report`), an unknown ``criterion`` or a
            ``default`` outside ``[0, 1]``.
    """
    if criterion not in THRESHOLD_CRITERIA:
        raise ValueError(f"`criterion` must be one of {list(THRESHOLD_CRITERIA)}, got {criterion!r}.")
    default = _check_threshold(default, "default")
    p, y = _validate(probabilities, targets)
    chosen = np.full(p.shape[1], default, dtype=np.float64)
    for j in range(p.shape[1]):
        if y[:, j].any():
            chosen[j] = _best_f1_threshold(p[:, j], y[:, j])
    return chosen
