"""Fine-tune a bundle's classifier from the classes saved in MONAI Label's datastore.

A class is saved as a label of the image: ``PUT /datastore/label?image=<id>&tag=final`` with
``params={"class": "CNV"}`` (or a label file holding the class name, or JSON ``{"class": "CNV"}``).
:class:`ClassifierTrain` runs the bundle's ``finetune.json`` with ``train#datalist`` /
``validate#datalist`` from those labels (a seeded validation share, which chooses the best model,
``models/model.pt``), a batch size no larger than the data, plus
:func:`~monai_ssl.label.train_task.common_overrides`. Starting from the served model, or, with
``"pretrained": false``, from the bundle's BYOL encoder (``models/encoder.pt``) as ``finetune.json`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from monai_ssl.label.datastore_items import class_index, validation_share
from monai_ssl.label.served_bundle import ServedBundle
from monai_ssl.label.train_task import DatastoreTrain, RunSettings, common_overrides, datalist_overrides

__all__ = ["ClassifierTrain", "classifier_overrides"]

logger = logging.getLogger(__name__)

CONFIG = "finetune.json"


def _item(item: Mapping[str, Any], bundle: ServedBundle) -> dict[str, Any]:
    index = class_index(item, bundle.class_names)
    label: Any = [float(index)] if bundle.num_outputs == 1 else index  # a single logit learns a float target
    return {"id": item["id"], "image": item["image"], "label": label}


def classifier_overrides(bundle: ServedBundle, labeled: Sequence[Mapping[str, Any]], settings: RunSettings) -> dict[str, Any]:
    """Overrides of a classifier bundle's ``finetune.json`` that train it on a datastore's class labels.

    Args:
        bundle: the served classifier bundle.
        labeled: ``{"id", "image", "label", "label_info"}`` items (see :func:`~monai_ssl.label.datastore_items.class_index`).
        settings: the request's settings (epochs, validation share, device, starting weights).

    Raises:
        ValueError: fewer than two labeled images, a label without a known class (naming the image),
            a ``val_split`` outside (0, 1), or ``num_epochs < 1``.
    """
    items = [_item(i, bundle) for i in labeled]
    train, validation = validation_share(items, settings.val_split, settings.seed, who=f"training {bundle.name}")
    parser = bundle.config(CONFIG)
    overrides = common_overrides(bundle, parser.config, settings)
    overrides.update(datalist_overrides(bundle, {
        "train#datalist": [dict(i) for i in train],
        "validate#datalist": [dict(i) for i in validation],
    }, segmentation=False))
    overrides["batch_size"] = max(1, min(int(parser.get_parsed_content("batch_size")), len(train)))
    if "class_names" in parser.config:
        overrides["class_names"] = list(bundle.class_names)
    for key in ("task_multi_label", "is_multi_label"):  # a datastore's labels are one class per image
        if key in parser.config:
            overrides[key] = False
    logger.info(
        "%s: fine-tuning on %d labeled image(s), validating on %d, for %d epoch(s)",
        bundle.name, len(train), len(validation), settings.num_epochs,
    )
    return overrides


class ClassifierTrain(DatastoreTrain):
    """Fine-tune a classifier bundle from MONAI Label's datastore (see the module docstring)."""

    def __init__(self, bundle: ServedBundle, studies: str, max_megapixels: float = 100.0) -> None:
        super().__init__(bundle, studies, CONFIG, f"Fine-tuning of the {bundle.name} classifier on the saved classes",
                         labels="class", max_megapixels=max_megapixels)

    def overrides(self, labeled: list[dict[str, Any]], unlabeled: list[dict[str, Any]], settings: RunSettings) -> dict[str, Any]:  # noqa: D102
        return classifier_overrides(self.bundle, labeled, settings)
