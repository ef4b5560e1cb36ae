"""Class balancing of a labeled datalist by minority oversampling.

The BYOLMed2D recipe for imbalanced tasks such as ACL tears: repeat the items of every smaller
class until each class is as large as the largest one, then shuffle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["oversample_minority"]

logger = logging.getLogger("monai_ssl")


def _describe(item: Mapping) -> str:
    """A short name for an item in error messages: its ``id`` or ``image`` when it has one."""
    for key in ("id", "image"):
        if key in item:
            return f"{key}={item[key]!r}"
    return "no 'id' or 'image'"


def _class_of(value: Any, index: int, item: Mapping, label_key: Hashable) -> float:
    """The class of one label: a scalar or a 1-element list/tuple/array/tensor, as a float."""
    raw = value
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(
                f"datalist item {index} ({_describe(item)}): label {label_key!r} must be a scalar or a "
                f"1-element list, got {raw!r}"
            )
        value = value[0]
        if isinstance(value, (list, tuple)):
            return _class_of(value, index, item, label_key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise ValueError(f"datalist item {index} ({_describe(item)}): label {label_key!r} is not a number: {raw!r}")
    return number


def oversample_minority(datalist: Sequence[Mapping], label_key: Hashable = "label", seed: int = 0) -> list[dict]:
    """Balance classes by repeating the items of smaller classes, then shuffle.

    Every class is brought up to the size of the largest one: first whole copies, then a random
    subset (without replacement) for the remainder. The result is shuffled; all randomness comes
    from ``seed`` (use a different seed per epoch for a fresh draw). Items are shallow copies, so
    transforms may add keys without touching the originals or each other.

    Args:
        datalist: items with a class label under ``label_key``; labels may be scalars (``1``,
            ``0.0``) or 1-element lists/arrays/tensors (``[1.0]``, as from ``mrnet_datalist``).
        label_key: the key holding the label.
        seed: random seed.

    Returns:
        ``n_classes * largest_class_size`` items.

    Raises:
        ValueError: empty datalist; an item without ``label_key`` or with a label that is not a
            single number (the item's index and ``id``/``image`` are named).
        TypeError: an item that is not a mapping.
    """
    if len(datalist) == 0:
        raise ValueError("oversample_minority: the datalist is empty; expected at least one labeled item")
    groups: dict[float, list[int]] = {}
    for index, item in enumerate(datalist):
        if not isinstance(item, Mapping):
            raise TypeError(f"oversample_minority: datalist item {index} must be a dict, got {type(item).__name__}")
        if label_key not in item:
            raise ValueError(
                f"oversample_minority: datalist item {index} ({_describe(item)}) has no label key {label_key!r}"
            )
        groups.setdefault(_class_of(item[label_key], index, item, label_key), []).append(index)

    rng = np.random.default_rng(seed)
    largest = max(len(members) for members in groups.values())
    chosen: list[int] = []
    for label in sorted(groups):
        members = groups[label]
        copies, remainder = divmod(largest, len(members))
        chosen.extend(members * copies)
        chosen.extend(members[i] for i in sorted(rng.choice(len(members), size=remainder, replace=False)))
    order = rng.permutation(len(chosen))
    counts = ", ".join(f"{label:g}: {len(groups[label])}" for label in sorted(groups))
    logger.info("oversample_minority: class sizes {%s} -> %d each, %d items", counts, largest, len(chosen))
    return [dict(datalist[chosen[i]]) for i in order]
