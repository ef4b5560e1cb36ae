"""The ``class_balance`` setting of a single-label classification bundle: ``"none"``, ``"sampler"`` or ``"loss_weights"``.

S4MI's skin-lesion sets are imbalanced (ISIC 2017 Part 3: about 4 nevi for each melanoma and 5 for each
seborrheic keratosis), and its models are selected by macro recall (balanced accuracy); issue 23 asks
for the imbalance to be handled by a class-balanced sampler or by loss weights, one setting:

* ``"sampler"``: a :class:`torch.utils.data.WeightedRandomSampler` over the datalist whose item weights
  are ``1 / n_c`` (``n_c`` items in the item's class), so that each draw is of each class with
  probability ``1 / C``; ``num_samples`` is the datalist's length (an epoch as long as the data) and
  it draws with replacement from a seeded generator (reproducible, a fresh draw each epoch).
  :func:`monai_ssl.data.oversample_minority` is not reused: it builds a fixed, larger datalist
  (``C`` times the largest class) once, so every epoch repeats the same copies and lasts longer, while
  the sampler keeps the datalist and epoch length and redraws each epoch.
* ``"loss_weights"``: per-class weights for ``torch.nn.CrossEntropyLoss(weight=...)``, the inverse class
  frequency normalised to mean 1 over the classes, ``w_c = C / (n_c * sum_k 1 / n_k)``: the
  class-balanced weights of Cui et al., "Class-Balanced Loss Based on Effective Number of Samples"
  (CVPR 2019, Sec. 4), at ``beta -> 1`` (effective number = ``n_c``), which they normalise to sum to
  ``C``. scikit-learn's ``compute_class_weight("balanced")`` (``N / (C * n_c)``) differs by a constant
  factor only, which the ``"mean"`` reduction of ``CrossEntropyLoss`` cancels (it divides by the
  summed weights of the batch's targets).
* ``"none"``: neither; the loader shuffles.

Labels are class indices ``0 .. C-1`` (an int, or a 1-element list/array/tensor), as the project's
readers give single-label items. Multi-label (0/1 vector) labels are refused: their imbalance is a
per-label ``pos_weight`` of ``BCEWithLogitsLoss``, not a class balance.

Not covered: the sampler does not shard across processes (multi-GPU training needs a distributed
weighted sampler; use ``"loss_weights"`` there).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import WeightedRandomSampler

__all__ = ["CLASS_BALANCE_MODES", "class_balance", "class_balanced_sampler", "class_counts", "class_labels",
           "class_loss_weights"]

logger = logging.getLogger("monai_ssl")

CLASS_BALANCE_MODES = ("none", "sampler", "loss_weights")
"""The values of the ``class_balance`` setting."""


def _item_name(item: Mapping) -> str:
    for key in ("id", "image"):
        if key in item:
            return f"{key}={item[key]!r}"
    return "no 'id' or 'image'"


def _class_index(label: Any, index: int, item: Mapping, label_key: Hashable, num_classes: int) -> int:
    """The class index of one item's label, or a ValueError naming the item and what was expected."""
    value = label.tolist() if hasattr(label, "tolist") else label
    while isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    where = f"class_balance: datalist item {index} ({_item_name(item)}), label {label_key!r}"
    if isinstance(value, (list, tuple)):
        raise ValueError(
            f"{where} is a {len(value)}-element vector {label!r}; class balancing needs one class index per item "
            "(single-label). For multi-label tasks set class_balance='none' (or weight BCEWithLogitsLoss per label)."
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ValueError(f"{where} must be a class index 0..{num_classes - 1}, got {label!r}.")
    if not 0 <= int(value) < num_classes:
        raise ValueError(f"{where} is {int(value)}, outside the classes 0..{num_classes - 1} (num_classes={num_classes}).")
    return int(value)


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Real) or num_classes != int(num_classes) \
            or num_classes < 2:
        raise ValueError(
            f"class_balance: `num_classes` must be an integer of at least 2, got {num_classes!r} "
            "(a binary task with one logit has 2 classes)."
        )
    return int(num_classes)


def class_labels(datalist: Sequence[Mapping], num_classes: int, label_key: Hashable = "label") -> list[int]:
    """The class index of every item of ``datalist``.

    Raises:
        ValueError: an empty datalist, ``num_classes`` below 2, an item without ``label_key`` or whose label is
            not a class index in ``0..num_classes-1`` (the item's index and ``id``/``image`` are named).
        TypeError: an item that is not a mapping.
    """
    num_classes = _check_num_classes(num_classes)
    if len(datalist) == 0:
        raise ValueError("class_balance: the datalist is empty; expected at least one labeled item.")
    labels = []
    for index, item in enumerate(datalist):
        if not isinstance(item, Mapping):
            raise TypeError(f"class_balance: datalist item {index} must be a dict, got {type(item).__name__}.")
        if label_key not in item:
            raise ValueError(f"class_balance: datalist item {index} ({_item_name(item)}) has no label key {label_key!r}.")
        labels.append(_class_index(item[label_key], index, item, label_key, num_classes))
    return labels


def class_counts(
    datalist: Sequence[Mapping],
    num_classes: int,
    label_key: Hashable = "label",
    class_names: Sequence[str] | None = None,
    require_all: bool = True,
) -> list[int]:
    """The number of items of each class ``0..num_classes-1``.

    Args:
        datalist: items with a class index under ``label_key``.
        num_classes: ``C``.
        label_key: the key of the label.
        class_names: names of the classes, for messages (``None``: the indices).
        require_all: raise when a class has no item (balancing it is impossible).

    Raises:
        ValueError: see :func:`class_labels`; with ``require_all``, a class with no item (named).
    """
    labels = class_labels(datalist, num_classes, label_key)
    counts = [0] * int(num_classes)
    for label in labels:
        counts[label] += 1
    empty = [c for c, n in enumerate(counts) if n == 0]
    if require_all and empty:
        names = [f"{c} ({class_names[c]!r})" if class_names is not None and c < len(class_names) else str(c) for c in empty]
        raise ValueError(
            f"class_balance: class {', '.join(names)} has no item among the {len(labels)} of the datalist "
            f"(counts {counts}); a class-balanced sampler or loss weights need every one of the {num_classes} classes. "
            "Check `num_classes` and the labels, or set class_balance='none'."
        )
    return counts


def class_loss_weights(
    datalist: Sequence[Mapping],
    num_classes: int,
    label_key: Hashable = "label",
    class_names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Inverse-frequency class weights normalised to mean 1: ``w_c = C / (n_c * sum_k 1 / n_k)`` (module docstring).

    Returns:
        a float32 tensor of ``num_classes`` weights for ``torch.nn.CrossEntropyLoss(weight=...)`` (move the
        loss to the training device with ``.to(device)``: the weight is a buffer of the loss module).

    Raises:
        ValueError: see :func:`class_counts`.
    """
    counts = torch.tensor(class_counts(datalist, num_classes, label_key, class_names), dtype=torch.float64)
    inverse = 1.0 / counts
    return (inverse * len(counts) / inverse.sum()).to(torch.float32)


def class_balanced_sampler(
    datalist: Sequence[Mapping],
    num_classes: int,
    label_key: Hashable = "label",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> WeightedRandomSampler:
    """A sampler drawing each class with probability ``1 / C`` per draw, ``len(datalist)`` draws with replacement.

    Item ``i`` of class ``c`` has weight ``1 / n_c``, so every class totals weight 1. The sampler's
    generator is seeded with ``seed``: two samplers of the same seed draw the same epochs, and each epoch
    (each iteration over the sampler) continues the generator, so epochs differ.

    Raises:
        ValueError: see :func:`class_counts`.
    """
    labels = class_labels(datalist, num_classes, label_key)
    counts = class_counts(datalist, num_classes, label_key, class_names)
    weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.float64)
    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True, generator=generator)


def class_balance(
    mode: str,
    datalist: Sequence[Mapping],
    num_classes: int,
    label_key: Hashable = "label",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The training loader's and loss's parts for the ``class_balance`` setting (module docstring).

    A config reads the three entries: ``DataLoader(..., sampler=@balance['sampler'],
    shuffle=@balance['shuffle'])`` (a DataLoader refuses ``shuffle=True`` beside a sampler) and
    ``CrossEntropyLoss(weight=@balance['loss_weight'])``.

    Args:
        mode: one of :data:`CLASS_BALANCE_MODES`.
        datalist: the training items, with a class index under ``label_key``.
        num_classes: ``C``, at least 2.
        label_key: the key of the label.
        seed: the sampler's seed (``"sampler"`` only).
        class_names: names of the classes, for messages.

    Returns:
        ``{"sampler": WeightedRandomSampler | None, "shuffle": bool, "loss_weight": Tensor | None}``:
        ``"none"`` gives ``(None, True, None)``, ``"sampler"`` ``(sampler, False, None)``, ``"loss_weights"``
        ``(None, True, weights)``.

    Raises:
        ValueError: an unknown ``mode`` (the choices are listed); under ``"sampler"``/``"loss_weights"`` a class
            with no item (named), a label that is not a class index, an empty datalist.
    """
    if mode not in CLASS_BALANCE_MODES:
        raise ValueError(f"`class_balance` must be one of {CLASS_BALANCE_MODES}, got {mode!r}.")
    if mode == "none":
        return {"sampler": None, "shuffle": True, "loss_weight": None}
    counts = class_counts(datalist, num_classes, label_key, class_names)
    if mode == "sampler":
        sampler = class_balanced_sampler(datalist, num_classes, label_key, seed, class_names)
        logger.info("class_balance='sampler': class counts %s, each class drawn with probability 1/%d, %d draws an epoch",
                    counts, num_classes, len(datalist))
        return {"sampler": sampler, "shuffle": False, "loss_weight": None}
    weights = class_loss_weights(datalist, num_classes, label_key, class_names)
    logger.info("class_balance='loss_weights': class counts %s, weights %s", counts,
                [round(w, 4) for w in weights.tolist()])
    return {"sampler": None, "shuffle": True, "loss_weight": weights}
