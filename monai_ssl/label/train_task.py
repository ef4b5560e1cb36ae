"""A MONAI Label training task that runs one of a bundle's training configs on the datastore's images.

MONAI Label runs a training task in a subprocess and shows its last output lines as the train status.
Subclasses say which config runs and with which datalists (:meth:`DatastoreTrain.overrides`); this base
adds what every run from the tool shares: ``bundle_root``, the datastore as ``dataset_dir`` (so no
demo data is made), its own run folders (``models/monailabel/``, ``runs/monailabel/``, replaced by each
training), the run length, the device, and the served ``models/model.pt`` as the starting point.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import monai.bundle
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.utils.others.generic import device_list, name_to_device

from monai_ssl.label.served_bundle import ServedBundle
from monai_ssl.utils import configure_logging

__all__ = ["RUN_NAME", "DatastoreTrain", "RunSettings", "common_overrides"]

logger = logging.getLogger(__name__)

RUN_NAME = "monailabel"


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
        """The settings of a MONAI Label train request (``max_epochs``, ``val_split``, ``device``, ``pretrained``)."""
        return cls(
            studies=str(studies),
            num_epochs=int(request.get("max_epochs", default_epochs)),
            val_split=float(request.get("val_split", 0.2)),
            device=name_to_device(request.get("device")),
            init_from_model=bool(request.get("pretrained", True)),
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
        "bundle_root": str(bundle.path),
        "dataset_dir": settings.studies,
        "resume": False,
        "existing_checkpoints": "replace",
        "num_epochs": int(settings.num_epochs),
        "device": f"$torch.device({str(settings.device)!r})",
        "amp": str(settings.device).startswith("cuda"),
    }
    if "run_name" in config:
        overrides["run_name"] = RUN_NAME
    else:  # a config whose run folders are fixed: move them aside from the command-line runs'
        overrides["checkpoint_dir"] = f"$@ckpt_dir + '/{RUN_NAME}'"
        overrides["output_dir"] = f"$@bundle_root + '/runs/{RUN_NAME}'"
    if settings.init_from_model and bundle.model_file.is_file():
        overrides["network"] = f"$monai_ssl.networks.load_weights(@network_def, {str(bundle.model_file)!r}).to(@device)"
    return overrides


class DatastoreTrain(TrainTask):
    """Run ``configs/<config_name>`` of a bundle on the datastore (subclasses give the datalists).

    Args:
        bundle: the served bundle.
        studies: the datastore folder.
        config_name: the training config.
        description: shown in ``/info/``.
    """

    def __init__(self, bundle: ServedBundle, studies: str, config_name: str, description: str) -> None:
        super().__init__(description)
        self.bundle = bundle
        self.studies = studies
        self.config_name = config_name
        self.default_epochs = int(bundle.config(config_name).get_parsed_content("default_num_epochs"))

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"device": device_list(), "max_epochs": self.default_epochs, "val_split": 0.2, "pretrained": True}

    @abstractmethod
    def overrides(self, datastore: Any, settings: RunSettings) -> dict[str, Any]:
        """The config overrides of this training: the common ones plus the datalists."""

    def __call__(self, request: dict[str, Any], datastore: Any) -> dict[str, Any]:  # noqa: D102
        configure_logging()
        overrides = self.overrides(datastore, RunSettings.from_request(request, self.studies, self.default_epochs))
        configs = Path(self.bundle.path) / "configs"
        monai.bundle.run(
            config_file=str(configs / self.config_name),
            meta_file=str(configs / "metadata.json"),
            logging_file=str(configs / "logging.conf"),
            **overrides,
        )
        return {"model_file": str(self.bundle.model_file)}
