"""Export the online encoder of a BYOL network for downstream training."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ignite.engine import Engine, Events
from torch import nn

from monai_ssl.utils import atomic_torch_save

__all__ = ["EncoderExporter"]


class EncoderExporter:
    """Save the online encoder's state dict (the weights of ``export_backbone()``) to ``path`` each epoch.

    The file is what :func:`monai_ssl.networks.load_pretrained_encoder` reads; it is replaced
    atomically, so it always holds the encoder of the last finished epoch.

    Args:
        network: a :class:`~monai_ssl.networks.BYOL` module (or a DDP wrapper around one).
        path: where to write the encoder weights, e.g. ``models/encoder.pt``.
        epoch_interval: write every this many epochs (the last epoch is always written).
    """

    def __init__(self, network: nn.Module, path: str | os.PathLike, epoch_interval: int = 1) -> None:
        self.network = network
        self.path = Path(path)
        self.epoch_interval = epoch_interval
        self.logger = logging.getLogger("monai_ssl")

    def attach(self, engine: Engine) -> None:  # noqa: D102
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        last = engine.state.epoch == engine.state.max_epochs
        if engine.state.epoch % self.epoch_interval and not last:
            return
        byol = getattr(self.network, "module", self.network)
        atomic_torch_save(byol.online_encoder.state_dict(), self.path)
        if last:
            self.logger.info(f"pre-trained encoder written to {self.path}")
