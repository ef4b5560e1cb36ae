"""Export the encoder a self-supervised method keeps (and BYOL's online projector) when pre-training ends."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine, Events
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.networks.model_settings import settings_file, write_model_settings
from monai_ssl.networks.weights import non_finite_entries
from monai_ssl.utils import atomic_torch_save

__all__ = ["EncoderExporter"]


class EncoderExporter:
    """Save the online encoder's state dict (the weights of ``export_backbone()``) to ``path`` when the run ends.

    The file is what :func:`monai_ssl.networks.load_pretrained_encoder` reads. It is written once, when
    the trainer completes its run (Ignite's ``COMPLETED``: all epochs done, or stopped on purpose by a
    handler), and atomically: a run that is killed or fails leaves the previous ``encoder.pt`` as it was,
    never a partial one, and the training checkpoints are what a killed run resumes from. Weights that
    hold NaN/inf (a diverged run) are never written: the export stops with an error instead. The online
    network is exported, never the momentum target (Grill et al. 2020, Sec. 3.1: the online encoder
    ``f_theta`` is what BYOL keeps).

    With ``projector_path`` the online projector ``g_theta``'s state dict is written there too, also
    atomically, for a task head on the projector's output (Feng et al., Sec. 4.2.1;
    ``EncoderClassifier(..., head_input="projector")`` and ``init_from_pretrained(..., projector_path=...)``).
    The encoder file keeps its format either way. A network without a projector (DINO, CASS) writes none,
    and removes a ``projector_path`` file left by an earlier run, so it is never paired with this encoder.

    With ``method`` (a :class:`~monai_ssl.methods.SelfSupervisedMethod`) the exported encoder is the one the
    method keeps (``method.export_backbone``: BYOL's online encoder, DINO's teacher, CASS's CNN or
    Transformer). With ``settings`` those values (the method, the encoder's architecture; see
    :func:`~monai_ssl.recipes.exported_encoder_settings`) are written beside the weights
    (``encoder.settings.json``), after them and atomically too, so fine-tuning can build the same network.

    Args:
        network: the pre-trained network (BYOL, DINO, CASS; or a DDP wrapper around one).
        path: where to write the encoder weights, e.g. ``models/encoder.pt``.
        projector_path: where to write the online projector's weights, e.g. ``models/projector.pt``;
            ``None`` writes no projector.
        method: the method that trained ``network``; None: ``network`` is a BYOL (its online encoder).
        settings: JSON values describing the exported encoder, written beside it; None writes none.
        other_settings: for a method that trains more than one encoder (CASS), the settings of each other encoder
            by the name ``method.other_backbones`` gives it; each is written to ``<path stem>_<name>.pt`` (e.g.
            ``models/encoder_transformer.pt``) with its settings beside it, to fine-tune instead.

    Raises:
        FloatingPointError: at the end of the run, the online encoder or projector holds NaN/inf.
    """

    def __init__(
        self,
        network: nn.Module,
        path: str | os.PathLike,
        projector_path: str | os.PathLike | None = None,
        method: Any = None,
        settings: Mapping[str, Any] | None = None,
        other_settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.network = network
        self.path = Path(path)
        self.projector_path = Path(projector_path) if projector_path is not None else None
        self.method = method
        self.settings = dict(settings) if settings is not None else None
        self.other_settings = {name: dict(values) for name, values in (other_settings or {}).items()}
        self.logger = logging.getLogger("monai_ssl")

    def attach(self, engine: Engine) -> None:  # noqa: D102
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        network = unwrap_parallel(self.network)
        encoder = self.method.export_backbone(network) if self.method is not None else network.online_encoder
        exports = [(encoder, self.path)]
        others = self.method.other_backbones(network) if self.method is not None else {}
        projector = getattr(network, "online_projector", None)
        written_projector = self.projector_path is not None and projector is not None
        # the settings say whether a projector file goes with this encoder: only when one is written here
        described = {self.path: None if self.settings is None else {**self.settings, "projector": written_projector}}
        for name, other in others.items():
            other_path = self.path.with_name(f"{self.path.stem}_{name}{self.path.suffix}")
            exports.append((other, other_path))
            described[other_path] = self.other_settings.get(name)
        if written_projector:
            exports.append((projector, self.projector_path))
        for module, path in exports:
            bad = non_finite_entries(module.state_dict())
            if bad:
                raise FloatingPointError(
                    f"not writing {path}: the weights hold NaN/inf at epoch {engine.state.epoch} ({bad[:3]}); the "
                    f"pre-training diverged. {path.name} is left as it was."
                )
        for module, path in exports:
            atomic_torch_save(module.state_dict(), path)
        for path, values in described.items():
            if values is not None:
                write_model_settings(path, values)
            elif settings_file(path).is_file():
                settings_file(path).unlink()  # it described an earlier run's encoder
        if self.projector_path is not None and projector is None and self.projector_path.is_file():
            self.projector_path.unlink()
            self.logger.info(f"removed {self.projector_path}: an earlier run's projector, which this encoder has none of")
        written = " and ".join(str(p) for _, p in exports)
        finished = engine.state.epoch >= (engine.state.max_epochs or 0)
        when = "the run's end" if finished else f"epoch {engine.state.epoch} (the run was stopped early)"
        self.logger.info(f"pre-trained encoder written to {written} at {when}")
