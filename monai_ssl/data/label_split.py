"""Choose the labeled subset of a training datalist: seeded, stratified, nested across sizes.

Label-efficiency experiments train on a few labels per class and treat the rest of the training
split as an unlabeled pool (for BYOL pre-training or pseudo-labeling). :func:`split_labeled`
draws that subset per class, from a random permutation of the class seeded by ``(seed, class)``:
the same seed always gives the same subset whatever the input order, and a larger fraction or
count keeps every image a smaller one chose (1 % of labels is a subset of 10 %).

A budget that a class cannot meet (a fraction that rounds a class to no labeled item, more items
per class than a class holds) raises :class:`LabelBudgetError`, a ``ValueError`` that callers such
as the label-efficiency study (:mod:`monai_ssl.study`) recognise by its type: such a cell is
skipped, not failed. Malformed settings (a fraction outside (0, 1], a count below 1, an unknown
class) stay plain ``ValueError``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["LabelBudgetError", "split_labeled"]

logger = logging.getLogger("monai_ssl")


class LabelBudgetError(ValueError):
    """A label budget that the data cannot meet, although the setting itself is valid.

    Raised when a label fraction leaves a class without a labeled item, when a count per class
    asks for more items than a class holds (:func:`split_labeled`), or when a labeled fraction
    below 1.0 leaves no unlabeled item (:func:`~monai_ssl.data.require_unlabeled_pool`). Another
    dataset, or another budget, would fit; nothing is wrong with the code or the configs.

    It is a ``ValueError``, so code that catches those keeps working; the label-efficiency study
    tells it apart by its type (also when MONAI's config parser wraps it) and records the cell as
    skipped instead of failed.
    """


def _class_of(item: Mapping[str, Any], label_key: str, position: int) -> int:
    """The integer class index of one item (an int, a 0-d or one-element array, or an integral float)."""
    if label_key not in item:
        raise ValueError(f"split_labeled: item {position} ({item.get('id', 'no id')!r}) has no {label_key!r} key")
    value = np.asarray(item[label_key])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise ValueError(
            f"split_labeled: item {item.get('id', position)!r} has {label_key!r} = {item[label_key]!r}; "
            "expected one class index"
        )
    number = value.reshape(-1)[0]
    if number != int(number) or int(number) < 0:
        raise ValueError(f"split_labeled: item {item.get('id', position)!r} has {label_key!r} = {number!r}; "
                         "expected a class index 0, 1, 2, ...")
    return int(number)


def _group_by_class(datalist: Sequence[Mapping[str, Any]], label_key: str) -> dict[int, list[Mapping[str, Any]]]:
    """Items grouped by class index, each group sorted by id (ids must be unique)."""
    groups: dict[int, list[Mapping[str, Any]]] = {}
    seen: set[str] = set()
    for position, item in enumerate(datalist):
        if "id" not in item:
            raise ValueError(f"split_labeled: item {position} has no 'id' key; ids make the choice reproducible")
        key = str(item["id"])
        if key in seen:
            raise ValueError(f"split_labeled: id {key!r} appears more than once in the datalist")
        seen.add(key)
        groups.setdefault(_class_of(item, label_key, position), []).append(item)
    for items in groups.values():
        items.sort(key=lambda item: str(item["id"]))
    return dict(sorted(groups.items()))


def _counts_from_fraction(fraction: float, sizes: dict[int, int]) -> dict[int, int]:
    """``fraction * size`` per class, rounded half up; a class rounding to 0 is a :class:`LabelBudgetError`."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction <= 1:
        raise ValueError(f"split_labeled: fraction must be a number in (0, 1], got {fraction!r}")
    counts = {c: int(math.floor(round(fraction * n, 9) + 0.5)) for c, n in sizes.items()}
    for c, k in counts.items():
        if k == 0:
            raise LabelBudgetError(
                f"split_labeled: fraction={fraction} leaves class {c} ({sizes[c]} items) with no labeled item; "
                f"use a fraction of at least {0.5 / sizes[c]:.3g} or per_class"
            )
    return counts


def _counts_from_per_class(per_class: int | Mapping[int, int], sizes: dict[int, int]) -> dict[int, int]:
    """The per-class counts, checked against the class sizes (a count above one: :class:`LabelBudgetError`)."""
    if isinstance(per_class, Mapping):
        try:
            counts = {int(c): k for c, k in per_class.items()}
        except (TypeError, ValueError):
            raise ValueError(f"split_labeled: per_class keys must be class indices, got {list(per_class)}") from None
        unknown = sorted(set(counts) - set(sizes))
        if unknown:
            raise ValueError(f"split_labeled: per_class names class(es) {unknown} that the datalist does not hold "
                             f"(classes: {list(sizes)})")
        absent = [c for c in sizes if c not in counts]
        if absent:
            raise ValueError(f"split_labeled: per_class gives no count for class(es) {absent}")
    else:
        counts = {c: per_class for c in sizes}
    for c, k in counts.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"split_labeled: per_class count for class {c} must be an integer >= 1, got {k!r}")
        if k > sizes[c]:
            raise LabelBudgetError(
                f"split_labeled: per_class asks for {k} labeled items of class {c}, which has only {sizes[c]}"
            )
    return {c: int(k) for c, k in counts.items()}


def split_labeled(
    datalist: Sequence[Mapping[str, Any]],
    fraction: float | None = None,
    per_class: int | Mapping[int, int] | None = None,
    seed: int = 0,
    label_key: str = "label",
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split a labeled training datalist into a labeled subset and an unlabeled pool.

    Give exactly one of ``fraction`` and ``per_class``.

    Args:
        datalist: items with a unique ``"id"`` and a class index under ``label_key`` (an int, a
            0-d or one-element array, or an integral float such as MRNet's ``[1.0]``).
        fraction: share of every class to label, in (0, 1]; a class of ``n`` items gets
            ``round(fraction * n)`` (halves rounded up). A class that would get none is an error.
        per_class: labeled items per class: one count for every class, or a dict class index ->
            count naming every class; a count above a class's size is an error.
        seed: a non-negative integer; the same seed gives the same subset.
        label_key: where the class index is.

    Returns:
        ``(labeled, unlabeled)``, both sorted by id. The items are the input dicts themselves,
        unchanged: the unlabeled pool keeps its labels, and the caller ignores them.

    Raises:
        LabelBudgetError: a valid fraction that leaves a class without a labeled item, or a count
            above a class's size (the class and its size are named).
        ValueError: both or neither of ``fraction`` and ``per_class``; an empty datalist; an item
            without id or class index; repeated ids; a fraction outside (0, 1], a count below 1, or
            a per-class mapping that names unknown classes or misses one.
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("split_labeled: give exactly one of fraction and per_class")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"split_labeled: seed must be an integer >= 0, got {seed!r}")
    if not datalist:
        raise ValueError("split_labeled: the datalist is empty")
    groups = _group_by_class(datalist, label_key)
    sizes = {c: len(items) for c, items in groups.items()}
    if fraction is not None:
        counts = _counts_from_fraction(fraction, sizes)
    else:
        counts = _counts_from_per_class(per_class, sizes)  # type: ignore[arg-type]

    labeled: list[Mapping[str, Any]] = []
    unlabeled: list[Mapping[str, Any]] = []
    for c, items in groups.items():
        order = np.random.default_rng([int(seed), c]).permutation(len(items))
        chosen = set(order[: counts[c]].tolist())
        for i, item in enumerate(items):
            (labeled if i in chosen else unlabeled).append(item)
    labeled.sort(key=lambda item: str(item["id"]))
    unlabeled.sort(key=lambda item: str(item["id"]))
    logger.info(
        "labeled subset: %d of %d items (%s), seed %d",
        len(labeled),
        len(datalist),
        ", ".join(f"class {c}: {counts[c]}/{sizes[c]}" for c in groups),
        seed,
    )
    return labeled, unlabeled
