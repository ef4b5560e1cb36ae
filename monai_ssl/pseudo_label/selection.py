"""Choosing which unlabeled images become pseudo-labels: the most confident predictions.

Follows the pseudo-labeling step of "Integration of Self-Supervised BYOL in Semi-Supervised
Medical Image Recognition": after each round the classifier predicts the unlabeled pool and the
``N`` most confident predictions (paper default ``N = 2000``) join the training set with their
predicted class as label. A confidence threshold and per-class balancing are offered as options.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["check_selection_args", "select_pseudo_labels"]

logger = logging.getLogger("monai_ssl")

_ROW_SUM_TOLERANCE = 1e-3


def check_selection_args(num_samples: int | None, threshold: float | None, balance: bool) -> None:
    """Validate the selection options (also used by the round loop, to fail at construction).

    Raises:
        ValueError: ``num_samples`` is not a non-negative integer or None, ``threshold`` is not in
            [0, 1] or None, or ``balance`` is asked without a ``num_samples`` to split.
    """
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 0
    ):
        raise ValueError(f"`num_samples` must be a non-negative integer or None (no cap), got {num_samples!r}.")
    if threshold is not None and (isinstance(threshold, bool) or not 0.0 <= float(threshold) <= 1.0):
        raise ValueError(f"`threshold` must be a probability in [0, 1] or None, got {threshold!r}.")
    if not isinstance(balance, (bool, np.bool_)):
        raise ValueError(f"`balance` must be True or False, got {balance!r}.")


def _check_probabilities(probabilities: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Validate the (N, K) class-probability matrix against the ids; return it as float64."""
    probs = np.asarray(probabilities)
    if probs.ndim != 2:
        raise ValueError(f"`probabilities` must be a (N, K) matrix of class probabilities, got shape {probs.shape}.")
    n, k = probs.shape
    if len(ids) != n:
        raise ValueError(f"got {n} rows of probabilities but {len(ids)} ids; they must match one to one.")
    if n and k < 2:
        raise ValueError(f"`probabilities` must have at least 2 class columns, got shape {probs.shape}.")
    if len(set(ids)) != len(ids):
        dup = sorted(i for i, count in Counter(ids).items() if count > 1)
        raise ValueError(f"ids must be unique; repeated: {dup[:5]}{' ...' if len(dup) > 5 else ''}.")
    probs = probs.astype(np.float64, copy=False)
    if n == 0:
        return probs
    if not np.all(np.isfinite(probs)):
        raise ValueError("`probabilities` holds NaN or infinite values.")
    if probs.min() < 0.0 or probs.max() > 1.0:
        raise ValueError(
            f"`probabilities` must lie in [0, 1], got values in [{probs.min():.4g}, {probs.max():.4g}]; "
            "pass softmax outputs, not logits."
        )
    sums = probs.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOLERANCE)
    if bad.size:
        raise ValueError(
            f"each row of `probabilities` must sum to 1 (within {_ROW_SUM_TOLERANCE}); row {int(bad[0])} "
            f"(id {ids[int(bad[0])]!r}) sums to {sums[bad[0]]:.6g} ({bad.size} such rows)."
        )
    return probs


def select_pseudo_labels(
    probabilities: np.ndarray,
    ids: Sequence[str],
    num_samples: int | None = 2000,
    threshold: float | None = None,
    balance: bool = False,
) -> list[tuple[str, int, float]]:
    """Pick the most confident predictions of the unlabeled pool as pseudo-labels.

    Confidence is the largest class probability of a row and the pseudo-label its class (the
    lowest class index on a tie). The rules apply in this order:

    1. ``threshold``: keep only rows with confidence ``>= threshold``;
    2. ``num_samples``: keep the ``num_samples`` most confident of those (``None``: no cap). With
       ``balance=True`` instead take the ``num_samples // K`` most confident rows of each predicted
       class; a class with fewer rows gives what it has and the shortfall is *not* filled from
       other classes, so fewer than ``num_samples`` items may come back (also when
       ``num_samples`` is not a multiple of ``K``). ``balance`` has no effect when
       ``num_samples`` is ``None``.

    Equal confidences are ordered by id, so the result does not depend on the pool's order. Asking
    for more items than the pool holds takes the whole pool and logs one warning.

    Args:
        probabilities: (N, K) class probabilities (softmax outputs), rows summing to 1.
        ids: the N unique item ids, in row order.
        num_samples: how many pseudo-labels to take (paper default 2000); ``None`` for all.
        threshold: minimum confidence, or ``None`` for none.
        balance: split ``num_samples`` equally among the predicted classes.

    Returns:
        ``(id, predicted class, confidence)`` for each chosen item, most confident first (ties by id).

    Raises:
        ValueError: a bad shape, probabilities outside [0, 1] or rows not summing to 1, repeated
            ids, or invalid options (``balance=True`` with ``num_samples < K`` included).
    """
    check_selection_args(num_samples, threshold, balance)
    ids = [str(i) for i in ids]
    probs = _check_probabilities(probabilities, ids)
    n = probs.shape[0]
    if n == 0:
        return []
    k = probs.shape[1]
    if num_samples is not None and num_samples > n:
        logger.warning(f"asked for {num_samples} pseudo-labels, only {n} unlabeled images; taking {n}")
        num_samples = n

    confidence = probs.max(axis=1)
    label = probs.argmax(axis=1)
    # most confident first, ties by id: lexsort sorts by the last key first
    order = np.lexsort((np.asarray(ids, dtype=object).astype(str), -confidence))
    if threshold is not None:
        order = order[confidence[order] >= threshold]

    if num_samples is None:
        chosen = order
    elif balance:
        per_class = num_samples // k
        if num_samples > 0 and per_class == 0:
            raise ValueError(
                f"balance=True splits num_samples={num_samples} over {k} classes, which leaves 0 per class; "
                f"ask for at least {k}."
            )
        chosen = np.concatenate([order[label[order] == c][:per_class] for c in range(k)])
        chosen = chosen[np.lexsort((np.asarray(ids, dtype=object)[chosen].astype(str), -confidence[chosen]))]
    else:
        chosen = order[:num_samples]
    return [(ids[i], int(label[i]), float(confidence[i])) for i in chosen]
