"""The labeled subset and the unlabeled pool of a segmentation training split, for semi-supervised training.

:func:`split_labeled_pool` keeps a seeded, nested share of the training images labeled and turns the
rest into an unlabeled pool; :func:`unlabeled_stream_datalist` builds the datalist of the trainer's
unlabeled stream from that pool and optional extra images.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .label_split import LabelBudgetError, split_labeled
from .mrnet import _first

__all__ = ["require_unlabeled_pool", "seeded_share", "split_labeled_pool", "unlabeled_stream_datalist"]

logger = logging.getLogger("monai_ssl")


def _check_fraction(fraction: float, who: str) -> float:
    """Validate a labeled fraction in (0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction <= 1:
        raise ValueError(f"{who}: fraction must be a number in (0, 1], got {fraction!r}")
    return float(fraction)


def _without_label(item: Mapping[str, Any], label_key: str) -> dict:
    """A copy of ``item`` without its label."""
    return {k: v for k, v in item.items() if k != label_key}


def split_labeled_pool(
    datalist: Sequence[Mapping[str, Any]], fraction: float, seed: int = 0, label_key: str = "label"
) -> tuple[list[Mapping[str, Any]], list[dict]]:
    """Keep a seeded share of a training datalist labeled; the rest becomes the unlabeled pool.

    The labeled images are the first ``max(1, round(fraction * n))`` (halves rounded up) of a
    permutation of the ids seeded by ``seed`` (through :func:`~monai_ssl.data.split_labeled`
    with one stratum), so the choice does not depend on the input order and is nested across
    fractions: for the same seed, the 10 % subset is part of the 30 % one.

    Args:
        datalist: items with a unique ``"id"`` (e.g. from :func:`segmentation_datalist`).
        fraction: share of the images to keep labeled, in (0, 1]; at least one image is labeled;
            at 1.0 every image is and the pool is empty.
        seed: a non-negative integer; the same seed gives the same subset.
        label_key: the key dropped from the unlabeled pool's items.

    Returns:
        ``(labeled, unlabeled)`` sorted by id: the labeled items as given, the pool's items as
        copies without ``label_key`` (``{"id", "image"}`` for a segmentation datalist).

    Raises:
        ValueError: a bad fraction or seed, an empty datalist, a missing or repeated id.
    """
    labeled, rest = seeded_share(datalist, fraction, seed, "split_labeled_pool")
    return labeled, [_without_label(item, label_key) for item in rest]


def seeded_share(
    datalist: Sequence[Mapping[str, Any]], fraction: float, seed: int = 0, who: str = "seeded_share"
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """``(chosen, rest)``, both sorted by id: ``max(1, round(fraction * n))`` items chosen by a permutation of the ids.

    The permutation is seeded by ``seed`` (:func:`~monai_ssl.data.split_labeled` with one stratum), so the
    choice does not depend on the input order and is nested across fractions. Items are returned as given.

    Raises:
        ValueError: a bad fraction or seed, an empty datalist, a missing or repeated id (named with ``who``).
    """
    fraction = _check_fraction(fraction, who)
    if not datalist:
        raise ValueError(f"{who}: the datalist is empty")
    count = max(1, int(math.floor(round(fraction * len(datalist), 9) + 0.5)))
    strata = []
    for position, item in enumerate(datalist):
        if "id" not in item:
            raise ValueError(f"{who}: item {position} has no 'id' key; ids make the choice reproducible")
        strata.append({"id": str(item["id"]), "stratum": 0})
    chosen, _ = split_labeled(strata, per_class=count, seed=seed, label_key="stratum")
    chosen_ids = {entry["id"] for entry in chosen}
    ordered = sorted(datalist, key=lambda item: str(item["id"]))
    return (
        [item for item in ordered if str(item["id"]) in chosen_ids],
        [item for item in ordered if str(item["id"]) not in chosen_ids],
    )


def require_unlabeled_pool(unlabeled: Sequence[Mapping[str, Any]], fraction: float) -> Sequence[Mapping[str, Any]]:
    """Return the unlabeled pool, refusing an empty one below a labeled fraction of 1.0.

    Args:
        unlabeled: the pool from :func:`split_labeled_pool`.
        fraction: the labeled fraction it was made with.

    Returns:
        ``unlabeled`` itself.

    Raises:
        LabelBudgetError: ``fraction < 1.0`` and the pool is empty: too few training images for that
            fraction (every image was labeled), so the semi-supervised term would have no data. A
            ``ValueError``; the label-efficiency study records such a cell as skipped.
        ValueError: a fraction outside (0, 1].
    """
    fraction = _check_fraction(fraction, "require_unlabeled_pool")
    if fraction < 1.0 and not unlabeled:
        raise LabelBudgetError(
            f"the unlabeled pool is empty at labeled fraction {fraction}: too few training images for this fraction "
            "(every image was labeled); use a smaller fraction or more training images, or fraction 1.0 for the "
            "fully labeled run"
        )
    return unlabeled


def unlabeled_stream_datalist(
    labeled: Sequence[Mapping[str, Any]],
    unlabeled: Sequence[Mapping[str, Any]],
    extra: Sequence[Mapping[str, Any]] | None = None,
    *,
    fraction: float,
    exclude_ids: Iterable[str] = (),
    label_key: str = "label",
) -> list[dict]:
    """The datalist of the trainer's unlabeled stream: the pool plus extra images, or the labeled images.

    * ``fraction < 1.0``: the unlabeled pool (which must not be empty, see
      :func:`require_unlabeled_pool`) plus the ``extra`` images.
    * ``fraction == 1.0`` with ``extra`` images: the extra images (the pool is empty).
    * ``fraction == 1.0`` without ``extra`` images: the labeled images themselves with their labels
      dropped. The cross-teaching paper trains its 100 % run on batches of 15 labeled and 1
      unlabeled image, so the unsupervised cross-teaching term stays in the loss; drawing that
      image from the labeled set keeps the 100 % run the same method as the others.

    Extra images whose id is already in the labeled set or the pool (ISIC ids are global, so later
    ISIC archives repeat ISIC 2017 images), or in ``exclude_ids``, are dropped with one warning:
    pass the validation and test ids as ``exclude_ids`` so that no evaluation image enters training.

    Args:
        labeled: the labeled training items.
        unlabeled: the unlabeled pool from :func:`split_labeled_pool`.
        extra: optional extra unlabeled items, e.g. from :func:`unlabeled_image_datalist`.
        fraction: the labeled fraction, in (0, 1].
        exclude_ids: ids never to put in the stream.
        label_key: dropped from every item.

    Returns:
        Items without ``label_key`` (``{"id", "image"}``), sorted by id, ids unique.

    Raises:
        LabelBudgetError: an empty pool below 1.0 (see :func:`require_unlabeled_pool`).
        ValueError: a bad fraction, or an empty stream.
    """
    fraction = _check_fraction(fraction, "unlabeled_stream_datalist")
    excluded = {str(i) for i in exclude_ids}
    extra = list(extra or [])
    if fraction < 1.0:
        base = list(require_unlabeled_pool(unlabeled, fraction))
    else:
        base = list(unlabeled) if extra else list(labeled)
        if not extra:
            logger.info("unlabeled stream at labeled fraction 1.0: the %d labeled images, labels dropped", len(base))
    stream = {str(item["id"]): _without_label(item, label_key) for item in base if str(item["id"]) not in excluded}
    known = set(stream) | {str(item["id"]) for item in labeled} | excluded
    dropped = [str(item["id"]) for item in extra if str(item["id"]) in known]
    if dropped:
        logger.warning(
            "dropped %d extra unlabeled image(s) whose id is already a training image or excluded: %s",
            len(dropped), _first(sorted(dropped)),
        )
    for item in extra:
        if str(item["id"]) not in known:
            stream.setdefault(str(item["id"]), _without_label(item, label_key))
    if not stream:
        raise ValueError("unlabeled_stream_datalist: the unlabeled stream is empty (every image was excluded)")
    return [stream[key] for key in sorted(stream)]
