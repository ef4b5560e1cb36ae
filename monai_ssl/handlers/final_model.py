"""Write the trained network's weights and settings once, when the run completes (for a run without validation)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.networks.model_settings import write_model_settings
from monai_ssl.networks.weights import non_finite_entries
from monai_ssl.utils.atomic import atomic_torch_save

__all__ = ["FinalModelWriter"]


class FinalModelWriter:
    """Save ``network``'s state dict to ``model_file`` and ``settings`` beside it when the trainer completes.

    For a training that selects no epoch (PiCIE has no labels to validate on): the model is the last
    epoch's. Written atomically at Ignite's ``COMPLETED`` (all epochs done), after the handlers registered
    before it (PiCIE's trainer sets the model's clusters first); a run that is killed or fails leaves the
    previous file as it was. Weights with NaN/inf are refused. The file is a plain state dict, what
    :func:`~monai_ssl.networks.load_weights` reads.

    Args:
        network: the trained network (or a DDP wrapper of one).
        model_file: where to write it, e.g. ``models/picie_model.pt``.
        settings: JSON values written to the settings file beside it (:func:`~monai_ssl.networks.write_model_settings`).

    Raises:
        FloatingPointError: the weights hold NaN/inf when the run completes.
    """

    def __init__(self, network: nn.Module, model_file: str | os.PathLike, settings: Mapping[str, Any] | None = None) -> None:
        self.network = network
        self.model_file = Path(model_file)
        self.settings = None if settings is None else dict(settings)

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if not engine.has_event_handler(self, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        state = unwrap_parallel(self.network).state_dict()
        bad = non_finite_entries(state)
        if bad:
            raise FloatingPointError(f"not writing {self.model_file}: the weights hold NaN/inf ({bad[:3]}); the run "
                                     f"diverged. {self.model_file.name} is left as it was.")
        atomic_torch_save(state, self.model_file)
        if self.settings is not None:
            write_model_settings(self.model_file, self.settings)
        logging.getLogger("monai_ssl").info(f"model written to {self.model_file} at epoch {engine.state.epoch}")
