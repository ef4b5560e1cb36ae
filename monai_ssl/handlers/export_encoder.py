"""Export the online encoder (and optionally the online projector) of a BYOL network for downstream training."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ignite.engine import Engine, Events
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.utils import atomic_torch_save

__all__ = ["EncoderExporter"]


class EncoderExporter:
    """Save the online encoder's state dict (the weights of ``export_backbone()``) to ``path`` each epoch.

    The file is what :func:`monai_ssl.networks.load_pretrained_encoder` reads; it is replaced
    atomically, so it always holds the encoder of the last finished epoch. The online network is
    exported, never the momentum target (Grill et al. 2020, Sec. 3.1: the online encoder ``f_theta``
    is what BYOL keeps).

    With ``projector_path`` the online projector ``g_theta``'s state dict is written there too, at the
    same epochs and also atomically, for a task head on the projector's output (Feng et al., Sec. 4.2.1;
    ``EncoderClassifier(..., head_input="projector")`` and
    ``init_from_pretrained(..., projector_path=...)``). The encoder file keeps its format either way.

    Args:
        network: a :class:`~monai_ssl.networks.BYOL` module (or a DDP wrapper around one).
        path: where to write the encoder weights, e.g. ``models/encoder.pt``.
        epoch_interval: write every this many epochs (the last epoch is always written).
        projector_path: where to write the online projector's weights, e.g. ``models/projector.pt``;
            ``None`` writes no projector.
    """

    def __init__(
        self,
        network: nn.Module,
        path: str | os.PathLike,
        epoch_interval: int = 1,
        projector_path: str | os.PathLike | None = None,
    ) -> None:
        self.network = network
        self.path = Path(path)
        self.projector_path = Path(projector_path) if projector_path is not None else None
        self.epoch_interval = epoch_interval
        self.logger = logging.getLogger("monai_ssl")

    def attach(self, engine: Engine) -> None:  # noqa: D102
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        last = engine.state.epoch == engine.state.max_epochs
        if engine.state.epoch % self.epoch_interval and not last:
            return
        byol = unwrap_parallel(self.network)
        atomic_torch_save(byol.online_encoder.state_dict(), self.path)
        if self.projector_path is not None:
            atomic_torch_save(byol.online_projector.state_dict(), self.projector_path)
        if last:
            written = f"{self.path} and projector to {self.projector_path}" if self.projector_path else f"{self.path}"
            self.logger.info(f"pre-trained encoder written to {written}")
