"""MONAI Label training task for the cross-teaching bundle: labeled images AND unlabeled images from the datastore.

MONAI Label's stock ``BundleTrainTask`` overrides ``train#dataset#data`` with the labeled pairs only,
which would leave cross-teaching without its unlabeled stream. :class:`CrossTeachingTrain` runs the
bundle's ``train.json`` with:

- ``labeled``: the datastore's labeled images (final labels) less a seeded validation share;
- ``unlabeled``: every image without a label (or, when every image is labeled, the labeled images
  with their masks dropped, as the bundle does at a labeled fraction of 1.0);
- ``validate#datalist``: the validation share, which chooses the best model (``models/model.pt``);
- ``num_epochs`` from the request, batch sizes no larger than the data, its own run folders
  (``models/monailabel/``, ``runs/monailabel/``), and the served weights as the starting point.

MONAI Label runs the task in a subprocess and shows its output lines as the train status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import monai.bundle
from PIL import Image
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.utils.others.generic import device_list, name_to_device

from monai_ssl.data.labeled_pool import seeded_share
from monai_ssl.label.served_bundle import ServedBundle
from monai_ssl.utils import configure_logging

__all__ = ["CrossTeachingTrain", "cross_teaching_overrides", "datastore_items"]

logger = logging.getLogger(__name__)

RUN_NAME = "monailabel"


def _readable(*paths: str) -> bool:
    """Whether every file opens as an image (header and data checked by PIL, without decoding all of it)."""
    try:
        for path in paths:
            with Image.open(path) as image:
                image.verify()
    except Exception:  # PIL raises many kinds of errors on broken files
        return False
    return True


def datastore_items(datastore: Datastore) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(labeled, unlabeled)`` datalists of a MONAI Label datastore, with ids, sorted by id.

    Labeled items are the images with a final label (``{"id", "image", "label"}``); unlabeled ones
    are the other images (``{"id", "image"}``). Images (or labels) that PIL cannot open are left out,
    each named in a warning, so one broken file in the studies folder does not stop a training.
    """
    labeled = []
    for image_id in sorted(datastore.get_labeled_images()):
        label_id = datastore.get_label_by_image_id(image_id, "final")
        labeled.append(
            {"id": image_id, "image": datastore.get_image_uri(image_id), "label": datastore.get_label_uri(label_id, "final")}
        )
    unlabeled = [{"id": i, "image": datastore.get_image_uri(i)} for i in sorted(datastore.get_unlabeled_images())]
    readable = ([i for i in items if _readable(i["image"], *([i["label"]] if "label" in i else []))] for items in (labeled, unlabeled))
    kept_labeled, kept_unlabeled = next(readable), next(readable)
    for item in [i for i in labeled + unlabeled if i not in kept_labeled + kept_unlabeled]:
        logger.warning("left out of the training: %s (or its label) cannot be read as an image", item["image"])
    return kept_labeled, kept_unlabeled


def cross_teaching_overrides(
    bundle: ServedBundle,
    labeled: Sequence[Mapping[str, Any]],
    unlabeled: Sequence[Mapping[str, Any]],
    *,
    studies: str,
    num_epochs: int,
    val_split: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
    init_from_model: bool = True,
) -> dict[str, Any]:
    """Overrides of the cross-teaching ``train.json`` that train it on a datastore's images.

    Args:
        bundle: the served cross-teaching bundle.
        labeled: ``{"id", "image", "label"}`` items (at least two: one to train on, one to validate).
        unlabeled: ``{"id", "image"}`` items, possibly empty.
        studies: the datastore folder; becomes ``dataset_dir``, so no demo data is made.
        num_epochs: epochs of this training.
        val_split: share of the labeled images held out for validation (at least one), chosen with
            ``seed`` by the same nested, order-independent choice as the bundle's labeled subset.
        seed: the validation choice's seed.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        init_from_model: start from the served ``models/model.pt`` when it exists.

    Raises:
        ValueError: fewer than two labeled images, a ``val_split`` outside (0, 1), or ``num_epochs < 1``.
    """
    if len(labeled) < 2:
        raise ValueError(
            f"training {bundle.name} needs at least 2 labeled images (one to train on, one to validate), "
            f"the datastore has {len(labeled)}: label more images first."
        )
    if not 0 < float(val_split) < 1:
        raise ValueError(f"val_split must be in (0, 1), got {val_split!r}.")
    if int(num_epochs) < 1:
        raise ValueError(f"max_epochs must be at least 1, got {num_epochs!r}.")
    validation, train = seeded_share(labeled, float(val_split), seed=seed, who="validation share")
    if not train:  # two labeled images and a large share: keep one to train on
        train, validation = list(validation[:1]), list(validation[1:])
    pool = [dict(i) for i in unlabeled] or [{k: v for k, v in i.items() if k != "label"} for i in train]
    overrides: dict[str, Any] = {
        "bundle_root": str(bundle.path),
        "dataset_dir": str(studies),
        "run_name": RUN_NAME,
        "existing_checkpoints": "replace",
        "resume": False,
        "num_epochs": int(num_epochs),
        "labeled": [dict(i) for i in train],
        "unlabeled": pool,
        "validate#datalist": [dict(i) for i in validation],
        "labeled_batch_size": min(8, len(train)),
        "unlabeled_batch_size": min(8, len(pool)),
        "device": f"$torch.device({device!r})",
        "amp": str(device).startswith("cuda"),
    }
    if init_from_model and bundle.model_file.is_file():
        overrides["network"] = f"$monai_ssl.networks.load_weights(@network_def, {str(bundle.model_file)!r}).to(@device)"
    logger.info(
        "%s: training on %d labeled + %d unlabeled image(s), validating on %d, for %d epoch(s)",
        bundle.name, len(train), len(pool), len(validation), num_epochs,
    )
    return overrides


class CrossTeachingTrain(TrainTask):
    """Train a cross-teaching bundle from MONAI Label's datastore (see the module docstring).

    Args:
        bundle: the served cross-teaching bundle.
        studies: the datastore folder.
    """

    def __init__(self, bundle: ServedBundle, studies: str) -> None:
        super().__init__(f"Cross-teaching (labeled + unlabeled images) of {bundle.name}")
        self.bundle = bundle
        self.studies = studies
        self.default_epochs = int(bundle.config("train.json").get_parsed_content("default_num_epochs"))

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {
            "device": device_list(),
            "max_epochs": self.default_epochs,
            "val_split": 0.2,
            "pretrained": True,
        }

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:  # noqa: D102
        configure_logging()
        labeled, unlabeled = datastore_items(datastore)
        device = name_to_device(request.get("device"))
        overrides = cross_teaching_overrides(
            self.bundle,
            labeled,
            unlabeled,
            studies=self.studies,
            num_epochs=int(request.get("max_epochs", self.default_epochs)),
            val_split=float(request.get("val_split", 0.2)),
            device=device,
            init_from_model=bool(request.get("pretrained", True)),
        )
        configs = Path(self.bundle.path) / "configs"
        monai.bundle.run(
            config_file=str(configs / "train.json"),
            meta_file=str(configs / "metadata.json"),
            logging_file=str(configs / "logging.conf"),
            **overrides,
        )
        return {"model_file": str(self.bundle.model_file), "labeled": len(labeled), "unlabeled": len(unlabeled)}
