"""Evaluating a clustering without training on labels: the cluster/class confusion and the Hungarian match.

An unsupervised segmentation network (PiCIE, Cho et al., CVPR 2021) outputs ``K`` clusters, not classes.
As in the paper (Sec. 4, "Evaluation": clusters are matched to the ground-truth classes by the Hungarian
algorithm) and in its reference code (``evaluate`` in ``commons.py`` of janghyuncho/PiCIE, which counts
a pixel histogram over the evaluated split and runs a linear assignment on it), the masks are used only to
*name* the clusters: one confusion over the whole split, one assignment, then the usual metrics of the
renamed prediction.

The confusion here is ``(K, C)``: row = cluster, column = class (the reference stores it the other way
round; the assignment is the same).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["ClusterConfusion", "cluster_confusion", "match_clusters", "matched_pixel_accuracy"]


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    """A plain tensor (on its own device) of a tensor, MetaTensor or numpy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(f"{name} must be a tensor or a numpy array, got {type(value).__name__}.")


def _checked_count(name: str, value: int, least: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < least:
        raise ValueError(f"`{name}` must be a whole number >= {least}, got {value!r}.")
    return int(value)


def _confusion_tensor(clusters: Any, labels: Any, num_clusters: int, num_classes: int) -> torch.Tensor:
    """The ``(K, C)`` int64 confusion on the clusters' device (no copy to the host but the checks' scalars)."""
    k = _checked_count("num_clusters", num_clusters, 1)
    c = _checked_count("num_classes", num_classes, 1)
    pred, true = _as_tensor(clusters, "clusters"), _as_tensor(labels, "labels")
    if pred.shape != true.shape:
        raise ValueError(f"clusters {tuple(pred.shape)} and labels {tuple(true.shape)} must have the same shape.")
    pred = pred.reshape(-1)
    true = true.reshape(-1).to(pred.device)
    if pred.is_floating_point():
        if pred.numel() and bool((pred != pred.round()).any()):
            raise ValueError("clusters must be cluster indices (whole numbers), got fractional values: arg-max the logits first.")
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= k):
        raise ValueError(
            f"cluster values must lie in [0, {k}) (num_clusters={k}), got values from {int(pred.min())} to {int(pred.max())}."
        )
    pred = pred.long()
    if true.is_floating_point():
        true = true.round()
    true = true.long()
    keep = (true >= 0) & (true < c)  # e.g. an 'ignore' value of 255 is left out
    flat = pred[keep] * c + true[keep]
    return torch.bincount(flat, minlength=k * c).reshape(k, c)


def cluster_confusion(clusters: Any, labels: Any, num_clusters: int, num_classes: int) -> np.ndarray:
    """Pixel counts of every (cluster, class) pair: ``confusion[k, c]`` pixels of cluster ``k`` have class ``c``.

    The pixel histogram of ``evaluate`` in the PiCIE reference code (``commons.py``), transposed. Counted with
    ``torch.bincount`` on the inputs' device, then copied to the host once.

    Args:
        clusters: cluster indices, any shape (a tensor on any device or an array; floats must be whole).
        labels: class indices of the same shape; values outside ``[0, num_classes)`` are ignored.
        num_clusters: ``K``.
        num_classes: ``C``.

    Returns:
        ``(K, C)`` int64 array.

    Raises:
        ValueError: shapes differ, a cluster value outside ``[0, K)`` or not whole, or ``K``/``C`` < 1.
        TypeError: an input that is neither a tensor nor an array.
    """
    return _confusion_tensor(clusters, labels, num_clusters, num_classes).cpu().numpy()


class ClusterConfusion:
    """The cluster/class confusion summed over many images (a split), kept on the images' device.

    Each :meth:`update` counts on the device of its inputs; :attr:`confusion` copies the small ``(K, C)``
    total to the host.

    Args:
        num_clusters: ``K``.
        num_classes: ``C``.
    """

    def __init__(self, num_clusters: int, num_classes: int) -> None:
        self.num_clusters = _checked_count("num_clusters", num_clusters, 1)
        self.num_classes = _checked_count("num_classes", num_classes, 1)
        self._total: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget every count."""
        self._total = None

    def update(self, clusters: Any, labels: Any) -> None:
        """Add the pixels of one image or batch (see :func:`cluster_confusion` for the inputs and errors)."""
        counts = _confusion_tensor(clusters, labels, self.num_clusters, self.num_classes)
        self._total = counts if self._total is None else self._total + counts.to(self._total.device)

    @property
    def device(self) -> torch.device | None:
        """Where the running total is kept (the device of the first update), ``None`` before any update."""
        return None if self._total is None else self._total.device

    @property
    def confusion(self) -> np.ndarray:
        """The ``(K, C)`` int64 total so far (zeros before any update)."""
        if self._total is None:
            return np.zeros((self.num_clusters, self.num_classes), dtype=np.int64)
        return self._total.cpu().numpy()


def _checked_confusion(confusion: Any) -> np.ndarray:
    table = np.asarray(confusion)
    if table.ndim != 2 or table.size == 0:
        raise ValueError(f"the confusion must be a (num_clusters, num_classes) table, got shape {table.shape}.")
    if not np.issubdtype(table.dtype, np.number) or (table < 0).any():
        raise ValueError("the confusion must hold pixel counts (numbers >= 0).")
    if table.sum() == 0:
        raise ValueError("the confusion holds no pixel: there is nothing to match the clusters to (no labeled pixel seen).")
    return table


def match_clusters(confusion: Any) -> list[int]:
    """The class of each cluster, maximising the pixels whose class is their cluster's class.

    ``K == C``: the Hungarian assignment (``scipy.optimize.linear_sum_assignment``, maximising), a one-to-one
    naming, as PiCIE's ``evaluate`` (``commons.py``; paper Sec. 4). ``K > C`` (over-clustering): the same
    assignment gives every class one cluster, and each remaining cluster takes the class it overlaps most
    (majority vote), the usual evaluation of an over-clustered segmentation; a remaining cluster with no
    pixel takes class 0.

    Args:
        confusion: ``(K, C)`` pixel counts, row = cluster, column = class (:func:`cluster_confusion`).

    Returns:
        ``mapping`` of length ``K``: cluster ``k`` is class ``mapping[k]``.

    Raises:
        ValueError: not a 2-D table of counts >= 0, no pixel at all, or ``K < C`` (a class would get no cluster).
    """
    table = _checked_confusion(confusion)
    k, c = table.shape
    if k < c:
        raise ValueError(
            f"{k} clusters cannot name {c} classes: every class needs a cluster (set num_clusters >= num_classes)."
        )
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = [int(v) for v in table.argmax(axis=1)]  # majority, for the clusters left over when K > C
    for row, col in zip(rows, cols):
        mapping[int(row)] = int(col)
    return mapping


def matched_pixel_accuracy(confusion: Any, mapping: list[int]) -> float:
    """Share of the counted pixels whose class is the class named for their cluster (the reference's ``acc``)."""
    table = _checked_confusion(confusion)
    if len(mapping) != table.shape[0] or any(not 0 <= int(m) < table.shape[1] for m in mapping):
        raise ValueError(f"mapping {list(mapping)} must give each of {table.shape[0]} clusters a class in [0, {table.shape[1]}).")
    matched = sum(int(table[k, int(m)]) for k, m in enumerate(mapping))
    return matched / float(table.sum())
