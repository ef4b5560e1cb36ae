"""Which validation metric to select the best checkpoint on, given the validation labels.

ROC AUC is undefined when the validation labels miss a class (MONAI's ``ROCAUC`` then warns and
returns NaN every epoch), and a NaN score can never be compared: the first epoch would stay "best"
forever. :func:`selection_metric` checks the labels once, before training, and falls back to a
metric that is always defined (accuracy).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["class_counts", "key_metric", "other_metrics", "selection_metric"]

logger = logging.getLogger("monai_ssl")


def _class_index(label: Any, label_key: str) -> int:
    """The class index of one label: a scalar, a one-element array/tensor, or a one-hot vector."""
    if hasattr(label, "detach"):  # torch.Tensor
        label = label.detach().cpu().numpy()
    values = np.asarray(label, dtype=np.float64).reshape(-1)
    if values.size == 1 and values[0] == np.round(values[0]) and values[0] >= 0:
        return int(values[0])
    if values.size > 1 and np.all((values == 0) | (values == 1)) and values.sum() == 1:
        return int(np.argmax(values))
    raise ValueError(f"`{label_key}` must be a class index or a one-hot vector, got {label!r}.")


def class_counts(data: Iterable[Any], label_key: str = "label") -> dict[int, int]:
    """Count the items of each class.

    Args:
        data: a datalist (dicts holding ``label_key``) or the labels themselves. A label is a
            class index (int, float, or an array/tensor holding one) or a one-hot vector.
        label_key: the key of the label in each dict item.

    Returns:
        ``{class index: number of items}``, sorted by class index.

    Raises:
        ValueError: ``data`` is empty or holds a label that is not a class index.
        KeyError: a dict item has no ``label_key``.
    """
    counts: dict[int, int] = {}
    for item in data:
        if isinstance(item, Mapping):
            if label_key not in item:
                raise KeyError(f"a datalist item has no `{label_key}`: it holds {sorted(item)}.")
            item = item[label_key]
        index = _class_index(item, label_key)
        counts[index] = counts.get(index, 0) + 1
    if not counts:
        raise ValueError("no labels: the datalist is empty.")
    return dict(sorted(counts.items()))


def _describe(counts: dict[int, int], missing: list[int]) -> str:
    """What is wrong with the class counts, e.g. ``"holds a single class: all 8 labels are class 0"``."""
    if len(counts) == 1:
        index, n = next(iter(counts.items()))
        return f"holds a single class: all {n} labels are class {index}"
    held = ", ".join(f"{n} of class {index}" for index, n in counts.items())
    return f"has no label of class {', '.join(map(str, missing))} (it holds {held})"


def selection_metric(
    data: Iterable[Any],
    preferred: str = "val_auc",
    fallback: str = "val_accuracy",
    label_key: str = "label",
    num_classes: int = 2,
    split: str = "validation",
) -> str:
    """The name of the metric to select the best checkpoint on: ``preferred`` unless it is undefined.

    ``preferred`` is meant to be a ranking metric such as ROC AUC, which needs every class in the
    labels (one-vs-rest for ``num_classes > 2``). When some class of ``range(num_classes)`` is absent
    from ``data`` (for a binary task: the split holds a single class) this logs one warning naming
    the split, the classes present and their counts, and returns ``fallback``, a metric defined on
    any labels such as accuracy. Call it once, when the run is set up (a bundle does so while it
    builds the evaluator).

    Args:
        data: the split's datalist (dicts with ``label_key``) or its labels; see :func:`class_counts`.
        preferred: the metric to select on when every class is present.
        fallback: the metric to select on otherwise. When it equals ``preferred`` (already a metric
            defined on any labels) the warning is still logged, as AUC metrics will log NaN.
        label_key: the key of the label in each datalist item.
        num_classes: the number of classes of the task (2 for a binary task with 0/1 labels).
        split: the split's name, for the warning.

    Returns:
        ``preferred`` or ``fallback``.

    Raises:
        ValueError: empty ``data``, a label that is not a class index in ``[0, num_classes)``, or
            ``num_classes < 2``.
    """
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2, got {num_classes}.")
    counts = class_counts(data, label_key)
    if max(counts) >= num_classes:
        raise ValueError(f"labels must be class indices in [0, {num_classes - 1}]; found class {max(counts)}.")
    missing = [k for k in range(num_classes) if k not in counts]
    if not missing:
        return preferred
    instead = f" instead of '{preferred}'" if fallback != preferred else ""
    logger.warning(
        "the %s split %s; ROC AUC is undefined (NaN) on it, so the best checkpoint is selected on '%s'%s.",
        split,
        _describe(counts, missing),
        fallback,
        instead,
    )
    return fallback


def key_metric(metrics: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The evaluator's ``key_val_metric``: the metric ``name`` of ``metrics`` (see :func:`selection_metric`).

    Raises:
        KeyError: ``name`` is not one of ``metrics``.
    """
    if name not in metrics:
        raise KeyError(f"key metric {name!r} is not one of the metrics {sorted(metrics)}")
    return {name: metrics[name]}


def other_metrics(metrics: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The evaluator's ``additional_metrics``: every metric of ``metrics`` but ``name``."""
    return {k: v for k, v in metrics.items() if k != name}
