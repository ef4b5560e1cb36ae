"""MRNet's splits for fine-tuning: select on a hold-out of ``train``, report on ``valid``.

MRNet (Bien et al. 2018) publishes ``train`` (1,130 exams) and ``valid`` (120 exams); its test set is
not public, so papers report on ``valid``. A model chosen on ``valid`` would then be reported on the
images it was chosen on. :func:`mrnet_splits` holds out a seeded share of every class of ``train``
for model selection, and keeps ``valid`` for the report, checked by
:class:`~monai_ssl.data.splits.Splits`.

A multi-label task (``task="all"`` or a list of findings) is stratified on the combination of its
labels (the "label powerset" of multi-label learning, Tsoumakas & Katakis 2007): exams with the same
multi-hot label form one stratum. A stratum of a single exam cannot be split and stays in ``train``.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .label_split import _class_of, split_labeled
from .mrnet import mrnet_datalist, mrnet_findings, mrnet_multi_label
from .splits import Splits

__all__ = ["mrnet_splits"]

logger = logging.getLogger("monai_ssl")


def hold_out_counts(items: list[dict[str, Any]], fraction: float) -> dict[int, int]:
    """Items per class to hold out: ``round(fraction * n)``, at least 1 and at most ``n - 1`` (one left to train on).

    Raises:
        ValueError: a fraction outside (0, 1), or a class with a single item (nothing to hold out).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {fraction!r}")
    sizes = Counter(_class_of(item, "label", i) for i, item in enumerate(items))
    small = sorted(c for c, n in sizes.items() if n < 2)
    if small:
        raise ValueError(f"class(es) {small} of the training split have fewer than 2 exams: none can be held out "
                         "for validation while one is left to train on.")
    return {c: min(n - 1, max(1, math.floor(fraction * n + 0.5))) for c, n in sorted(sizes.items())}


def _stratum(label: Any) -> int:
    """The multi-hot label ``[1, 0, 1]`` as the integer ``0b101``: one stratum per label combination."""
    return int("".join(str(int(v)) for v in label), 2)


def multi_label_hold_out(
    items: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(val, train)``: a ``fraction`` of every label combination of ``items`` held out (at least one of each).

    Combinations of a single exam stay in ``train``; each other combination of ``n`` exams gives
    ``round(fraction * n)`` of them, at least 1 and at most ``n - 1`` (:func:`hold_out_counts`).

    Args:
        items: datalist items with a unique ``"id"`` and a multi-hot ``"label"``.
        fraction: the share held out, in (0, 1).
        seed: the seed of the draw.

    Raises:
        ValueError: a bad ``fraction``, or no label combination with two exams (nothing to hold out).
    """
    hold_out_counts([], fraction)  # checks the fraction
    strata = [{"id": item["id"], "label": _stratum(item["label"])} for item in items]
    sizes = Counter(s["label"] for s in strata)
    splittable = [s for s in strata if sizes[s["label"]] >= 2]
    if not splittable:
        raise ValueError(f"no label combination of the {len(items)} training exams occurs twice: none can be held "
                         "out for validation while one of it is left to train on.")
    held, _ = split_labeled(splittable, per_class=hold_out_counts(splittable, fraction), seed=seed)
    held_ids = {s["id"] for s in held}
    kept = sorted(c for c, n in sizes.items() if n < 2)
    if kept:
        logger.info(f"{len(kept)} label combination(s) with a single exam stay in 'train' (none held out)")
    return [i for i in items if i["id"] in held_ids], [i for i in items if i["id"] not in held_ids]


def mrnet_splits(
    data_root: str | os.PathLike,
    plane: str = "sagittal",
    task: str | Sequence[str] = "acl",
    val_fraction: float = 0.1,
    val_seed: int = 0,
    skip_unreadable: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """``{"train", "val", "test"}`` exams of one MRNet plane and task.

    ``val`` is a stratified ``val_fraction`` of every class of ``train`` (at least one exam per class),
    drawn with ``val_seed`` (independent of the fine-tuning seed, so every run sets the same exams
    aside); ``train`` is the rest; ``test`` is MRNet's ``valid`` split, which the results are reported on.

    Args:
        data_root: the MRNet-v1.0 folder.
        plane: ``"sagittal"``, ``"coronal"`` or ``"axial"``.
        task: ``"abnormal"``, ``"acl"`` or ``"meniscus"``; ``"all"`` or a list of them for multi-hot labels
            (stratified on the label combination, see the module notes).
        val_fraction: the share of each class of ``train`` held out for model selection, in (0, 1).
        val_seed: the seed of the hold-out.
        skip_unreadable: drop unreadable exams with a count instead of failing.

    Raises:
        ValueError: an unknown task, a bad ``val_fraction``, a class too small to hold out (a multi-label task: no
            label combination with two exams), or ids shared between splits.
    """
    train = mrnet_datalist(data_root, split="train", plane=plane, task=task, skip_unreadable=skip_unreadable)
    test = mrnet_datalist(data_root, split="valid", plane=plane, task=task, skip_unreadable=skip_unreadable)
    if mrnet_multi_label(task):
        val, train = multi_label_hold_out(train, val_fraction, val_seed)
    else:
        val, train = split_labeled(train, per_class=hold_out_counts(train, val_fraction), seed=val_seed)
    Splits.from_datalists(train, val, test, sources={
        "train": "MRNet 'train' less the hold-out", "validation": f"a {val_fraction:g} hold-out of 'train'",
        "test": "MRNet 'valid'"})
    logger.info(f"MRNet {plane}/{'+'.join(mrnet_findings(task))}: {len(train)} exams to train on, {len(val)} held out of 'train' for model "
                f"selection (val_seed {val_seed}), {len(test)} in 'valid' for the report")
    return {"train": list(train), "val": list(val), "test": list(test)}
