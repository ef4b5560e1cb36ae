"""A MONAI Label training task that runs one of a bundle's training configs on the datastore's images.

MONAI Label runs a training task in a subprocess and shows its last output lines as the train status.
Subclasses say which config runs and with which datalists (:meth:`DatastoreTrain.overrides`); this base
adds what every run from the tool shares: ``bundle_root``, the datastore as ``dataset_dir`` (so no
demo data is made), its own run folders (``models/monailabel/``, ``runs/monailabel/``, replaced by each
training), the run length, the device, and the served ``models/model.pt`` as the starting point.

Ids and paths from the datastore reach the bundle **as data only**: the datalists are written to
``models/monailabel-datalist.json`` and read by ``monai.data.load_decathlon_datalist`` inside the run,
and every path or device is a plain config string referenced by a fixed expression. MONAI's config
parser evaluates a string that starts with ``$`` and resolves ``@``/``%``, so an image named
``$open(...)`` would otherwise be run as code.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import monai.bundle
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.utils.others.generic import device_list

from monai_ssl.label.errors import Unprocessable
from monai_ssl.label.names import PRIVATE_DIR
from monai_ssl.label.request_values import device_name, strict_bool, strict_float, strict_int
from monai_ssl.label.served_bundle import ServedBundle
from monai_ssl.utils import atomic_write_text, configure_logging

__all__ = ["DATALIST_FILE", "RUN_NAME", "TRAIN_REQUEST_KEYS", "DatastoreTrain", "RunSettings", "common_overrides",
           "datalist_overrides", "left_out_summary"]

logger = logging.getLogger(__name__)

RUN_NAME = "monailabel"
DATALIST_FILE = "monailabel-datalist.json"
TRAIN_REQUEST_KEYS = ("model", "device", "max_epochs", "val_split", "pretrained", "gpus")
MAX_EPOCHS = 100_000


@dataclass(frozen=True)
class RunSettings:
    """What a training request from the tool sets.

    Attributes:
        studies: the datastore folder; becomes ``dataset_dir``, so no demo data is made.
        num_epochs: epochs of this training (``max_epochs`` of the request).
        val_split: share of the labeled images held out for validation (see
            :func:`~monai_ssl.label.datastore_items.validation_share`).
        seed: the validation choice's seed.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; amp is on for CUDA.
        init_from_model: start from the served ``models/model.pt`` when it exists (``pretrained``).
    """

    studies: str
    num_epochs: int
    val_split: float = 0.2
    seed: int = 0
    device: str = "cpu"
    init_from_model: bool = True

    @classmethod
    def from_request(cls, request: dict[str, Any], studies: str, default_epochs: int) -> RunSettings:
        """The settings of a MONAI Label train request, parsed strictly.

        ``max_epochs`` must be a JSON integer (at least 1), ``val_split`` a JSON number in (0, 1),
        ``pretrained`` a JSON boolean (``"false"`` in quotes is refused, not read as true), ``device`` a
        device of this machine, ``gpus`` ``"all"`` or GPU indices such as ``"0,1"``.

        Raises:
            Unprocessable: naming the key and what was expected (422 before the training is queued).
        """
        gpus = request.get("gpus", "all")
        if not isinstance(gpus, str) or not (gpus == "all" or all(p.isdigit() for p in gpus.split(","))):
            raise Unprocessable('gpus must be "all" or GPU indices such as "0,1".')
        return cls(
            studies=str(studies),
            num_epochs=strict_int(request, "max_epochs", default_epochs, minimum=1, maximum=MAX_EPOCHS),
            val_split=strict_float(request, "val_split", 0.2, 0.0, 1.0),
            device=device_name(request.get("device")),
            init_from_model=strict_bool(request, "pretrained", True),
        )


def common_overrides(bundle: ServedBundle, config: dict[str, Any], settings: RunSettings) -> dict[str, Any]:
    """The overrides every training from the tool shares (see the module docstring).

    Args:
        bundle: the served bundle.
        config: the training config as read (only keys it has are overridden).
        settings: the request's settings.

    Raises:
        ValueError: ``num_epochs < 1``.
    """
    if int(settings.num_epochs) < 1:
        raise ValueError(f"max_epochs must be at least 1, got {settings.num_epochs!r}.")
    overrides: dict[str, Any] = {
        "bundle_root": _plain(bundle.path),
        "dataset_dir": _plain(settings.studies),
        "resume": False,
        "existing_checkpoints": "replace",
        "num_epochs": int(settings.num_epochs),
        "monailabel_device": _plain(settings.device),
        "device": "$torch.device(@monailabel_device)",
        "amp": str(settings.device).startswith("cuda"),
    }
    if "run_name" in config:
        overrides["run_name"] = RUN_NAME
    else:  # a config whose run folders are fixed: move them aside from the command-line runs'
        overrides["checkpoint_dir"] = f"$@ckpt_dir + '/{RUN_NAME}'"
        overrides["output_dir"] = f"$@bundle_root + '/runs/{RUN_NAME}'"
    if settings.init_from_model and bundle.model_file.is_file():
        overrides["monailabel_init_weights"] = _plain(bundle.model_file)
        overrides["network"] = "$monai_ssl.networks.load_weights(@network_def, @monailabel_init_weights).to(@device)"
    return overrides


def _plain(value: Any) -> str:
    """``value`` as a config string the parser leaves alone (not starting with ``$``, ``@`` or ``%``)."""
    text = str(value)
    if text[:1] in ("$", "@", "%"):
        raise ValueError(f"{text!r} would be read as config syntax; use an absolute path.")
    return text


def datalist_overrides(
    bundle: ServedBundle, datalists: Mapping[str, Sequence[Mapping[str, Any]]], segmentation: bool
) -> dict[str, Any]:
    """Write ``datalists`` to ``<bundle>/models/monailabel-datalist.json`` and read them back in the run.

    Args:
        bundle: the served bundle.
        datalists: config id (``"labeled"``, ``"validate#datalist"``, ...) -> its items.
        segmentation: items' ``label`` is a file path (``True``) or a class (``False``).

    Returns:
        Overrides that set each config id to ``monai.data.load_decathlon_datalist`` of the file: the
        items are JSON data there, never config text.
    """
    path = Path(bundle.path) / "models" / DATALIST_FILE
    keys = {config_id: config_id.replace("#", "_") for config_id in datalists}
    content = {keys[config_id]: [dict(i) for i in items] for config_id, items in datalists.items()}
    atomic_write_text(json.dumps(content, indent=1), path)
    overrides: dict[str, Any] = {"monailabel_datalist": _plain(path.resolve())}
    for config_id, key in keys.items():
        overrides[config_id] = (
            f"$monai.data.load_decathlon_datalist(@monailabel_datalist, is_segmentation={segmentation}, "
            f"data_list_key={key!r})"
        )
    return overrides


class DatastoreTrain(TrainTask):
    """Run ``configs/<config_name>`` of a bundle on the datastore (subclasses give the datalists).

    Before the run, every image (and mask label) is checked (:func:`~monai_ssl.label.datastore_items.usable_items`):
    what cannot be used is left out, named in the log, and summed up in the last line of the output,
    which MONAI Label shows as the training's status.

    Args:
        bundle: the served bundle.
        studies: the datastore folder.
        config_name: the training config.
        description: shown in ``/info/``.
        labels: ``"mask"`` or ``"class"``: what a label is, for the checks.
        max_megapixels: images above it are left out.
    """

    def __init__(self, bundle: ServedBundle, studies: str, config_name: str, description: str, labels: str = "mask",
                 max_megapixels: float = 100.0) -> None:
        super().__init__(description)
        self.bundle = bundle
        self.studies = studies
        self.config_name = config_name
        self.labels = labels
        self.max_megapixels = max_megapixels
        self.default_epochs = int(bundle.config(config_name).get_parsed_content("default_num_epochs"))

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"device": device_list(), "max_epochs": self.default_epochs, "val_split": 0.2, "pretrained": True}

    @abstractmethod
    def overrides(self, labeled: list[dict[str, Any]], unlabeled: list[dict[str, Any]], settings: RunSettings) -> dict[str, Any]:
        """The config overrides of this training: the common ones plus the datalists."""

    def __call__(self, request: dict[str, Any], datastore: Any) -> dict[str, Any]:  # noqa: D102
        from monai_ssl.label.datastore_items import datastore_items, usable_items

        configure_logging()
        settings = RunSettings.from_request(request, self.studies, self.default_epochs)
        labeled, unlabeled = datastore_items(datastore)
        cache = Path(self.studies) / PRIVATE_DIR if Path(self.studies).is_dir() else None
        labeled, unlabeled, left_out = usable_items(labeled, unlabeled, self.labels, self.max_megapixels, cache_dir=cache)
        summary = left_out_summary(left_out)
        if summary:
            logger.warning(summary)
        overrides = self.overrides(labeled, unlabeled, settings)
        configs = Path(self.bundle.path) / "configs"
        monai.bundle.run(
            config_file=str(configs / self.config_name),
            meta_file=str(configs / "metadata.json"),
            logging_file=str(configs / "logging.conf"),
            **overrides,
        )
        if summary:  # again at the end: MONAI Label's train status shows the last output lines
            logger.warning(summary)
        return {"model_file": str(self.bundle.model_file), "left_out": left_out}


def left_out_summary(left_out: Mapping[str, str], shown: int = 5) -> str:
    """One line naming the files left out of a training and why (the first ``shown`` of them)."""
    if not left_out:
        return ""
    items = "; ".join(f"{name}: {problem}" for name, problem in sorted(left_out.items())[:shown])
    more = f"; and {len(left_out) - shown} more (see the log)" if len(left_out) > shown else ""
    return f"left out {len(left_out)} unusable file(s) of the datastore: {items}{more}"
