"""Cross-teaching from MONAI Label's datastore: the labeled images AND the unlabeled ones.

MONAI Label's stock ``BundleTrainTask`` overrides ``train#dataset#data`` with the labeled pairs only,
which would leave cross-teaching without its unlabeled stream. :class:`CrossTeachingTrain` runs the
bundle's ``train.json`` with:

- ``labeled``: the images with a final label, less a seeded validation share;
- ``unlabeled``: every image without a label (or, when every image is labeled, the labeled training
  images with their masks dropped, as the bundle does at a labeled fraction of 1.0);
- ``validate#datalist``: the validation share, which chooses the best model (``models/model.pt``);
- batch sizes no larger than the data (at most 8 + 8), plus :func:`~monai_ssl.label.train_task.common_overrides`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from monai_ssl.label.datastore_items import validation_share
from monai_ssl.label.served_bundle import SEGMENTATION, ServedBundle
from monai_ssl.label.train_task import DatastoreTrain, RunSettings, common_overrides, datalist_overrides

__all__ = ["CrossTeachingTrain", "cross_teaching_overrides", "trains_cross_teaching"]

logger = logging.getLogger(__name__)


def _image_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item without its label, as the bundle's unlabeled stream takes it."""
    return {k: v for k, v in item.items() if k in ("id", "image")}


def trains_cross_teaching(bundle: ServedBundle) -> bool:
    """Whether MONAI Label can train ``bundle`` by cross-teaching: it serves a cross-teaching pair, or it is a
    segmentation bundle whose ``train.json`` trains one while it serves another of its architectures (PiCIE
    published as a zero-label starting point, ``picie.json --publish True``), which the first training replaces."""
    if bundle.is_pair:
        return True
    train = bundle.path / "configs" / "train.json"
    return bundle.kind == SEGMENTATION and train.is_file() and bundle.config("train.json").config.get(
        "architecture") == "cross_teaching"


def cross_teaching_overrides(
    bundle: ServedBundle, labeled: Sequence[Mapping[str, Any]], unlabeled: Sequence[Mapping[str, Any]], settings: RunSettings
) -> dict[str, Any]:
    """Overrides of the cross-teaching ``train.json`` that train it on a datastore's images.

    Args:
        bundle: the served cross-teaching bundle.
        labeled: ``{"id", "image", "label"}`` items (at least two: one to train on, one to validate).
        unlabeled: ``{"id", "image"}`` items, possibly empty.
        settings: the request's settings (epochs, validation share, device, starting weights: the served model's
            only when it is a cross-teaching pair).

    Raises:
        ValueError: fewer than two labeled images, a ``val_split`` outside (0, 1), or ``num_epochs < 1``.
    """
    train, validation = validation_share(labeled, settings.val_split, settings.seed, who=f"training {bundle.name}")
    if settings.init_from_model and not bundle.is_pair:  # the served model is not a pair (e.g. PiCIE): nothing to start from
        logger.info("%s: the served model is not a cross-teaching pair; the pair starts from random weights", bundle.name)
        settings = dataclasses.replace(settings, init_from_model=False)
    pool = [_image_item(i) for i in unlabeled] or [_image_item(i) for i in train]
    overrides = common_overrides(bundle, bundle.config("train.json").config, settings)
    overrides.update(datalist_overrides(bundle, {
        "labeled": [{k: i[k] for k in ("id", "image", "label")} for i in train],
        "unlabeled": pool,
        "validate#datalist": [{k: i[k] for k in ("id", "image", "label")} for i in validation],
    }, segmentation=True))
    overrides.update({"labeled_batch_size": min(8, len(train)), "unlabeled_batch_size": min(8, len(pool))})
    logger.info(
        "%s: training on %d labeled + %d unlabeled image(s), validating on %d, for %d epoch(s)",
        bundle.name, len(train), len(pool), len(validation), settings.num_epochs,
    )
    return overrides


class CrossTeachingTrain(DatastoreTrain):
    """Train a cross-teaching bundle from MONAI Label's datastore (see the module docstring)."""

    def __init__(self, bundle: ServedBundle, studies: str, max_megapixels: float = 100.0) -> None:
        super().__init__(bundle, studies, "train.json", f"Cross-teaching (labeled + unlabeled images) of {bundle.name}",
                         labels="mask", max_megapixels=max_megapixels)

    def overrides(self, labeled: list[dict[str, Any]], unlabeled: list[dict[str, Any]], settings: RunSettings) -> dict[str, Any]:  # noqa: D102
        return cross_teaching_overrides(self.bundle, labeled, unlabeled, settings)
