"""MRNet's splits for fine-tuning: select on a hold-out of ``train``, report on ``valid``.

MRNet (Bien et al. 2018) publishes ``train`` (1,130 exams) and ``valid`` (120 exams); its test set is
not public, so papers report on ``valid``. A model chosen on ``valid`` would then be reported on the
images it was chosen on. :func:`mrnet_splits` holds out a seeded share of every class of ``train``
for model selection, and keeps ``valid`` for the report, checked by
:class:`~monai_ssl.data.splits.Splits`.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from typing import Any

from .label_split import _class_of, split_labeled
from .mrnet import mrnet_datalist
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


def mrnet_splits(
    data_root: str | os.PathLike,
    plane: str = "sagittal",
    task: str = "acl",
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
        task: ``"abnormal"``, ``"acl"`` or ``"meniscus"``.
        val_fraction: the share of each class of ``train`` held out for model selection, in (0, 1).
        val_seed: the seed of the hold-out.
        skip_unreadable: drop unreadable exams with a count instead of failing.

    Raises:
        ValueError: a bad ``val_fraction``, a class too small to hold out, or ids shared between splits.
    """
    train = mrnet_datalist(data_root, split="train", plane=plane, task=task, skip_unreadable=skip_unreadable)
    test = mrnet_datalist(data_root, split="valid", plane=plane, task=task, skip_unreadable=skip_unreadable)
    val, train = split_labeled(train, per_class=hold_out_counts(train, val_fraction), seed=val_seed)
    Splits.from_datalists(train, val, test, sources={
        "train": "MRNet 'train' less the hold-out", "validation": f"a {val_fraction:g} hold-out of 'train'",
        "test": "MRNet 'valid'"})
    logger.info(f"MRNet {plane}/{task}: {len(train)} exams to train on, {len(val)} held out of 'train' for model "
                f"selection (val_seed {val_seed}), {len(test)} in 'valid' for the report")
    return {"train": list(train), "val": list(val), "test": list(test)}
