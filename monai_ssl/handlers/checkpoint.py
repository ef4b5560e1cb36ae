"""Atomic checkpoints, and resuming a killed run from its latest checkpoint."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver as _MonaiCheckpointSaver

from monai_ssl.utils import atomic_torch_save

__all__ = ["AtomicDiskSaver", "CheckpointSaver", "ResumeFromCheckpoint", "latest_checkpoint"]


class AtomicDiskSaver(BaseSaveHandler):
    """Ignite save handler that writes each checkpoint to a temporary file and renames it into place.

    A run killed while saving leaves the previous file intact. With a fixed ``filename`` every save
    replaces that one file, and removal is a no-op (the next save replaces it atomically).
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        self.dirname = Path(dirname)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:  # noqa: D102
        atomic_torch_save(checkpoint, self.dirname / (self.filename or filename))

    def remove(self, filename: str) -> None:  # noqa: D102
        if self.filename is None:
            (self.dirname / filename).unlink(missing_ok=True)


class CheckpointSaver(_MonaiCheckpointSaver):
    """:class:`monai.handlers.CheckpointSaver` whose files are written atomically.

    Same arguments as MONAI's handler, plus ``engine_key``. MONAI writes checkpoints in place, so a
    run killed during a save can leave a truncated file that the next resume cannot read; here every
    file goes through :class:`AtomicDiskSaver`.

    Args:
        save_dir: folder of the checkpoint files.
        save_dict: name -> object with ``state_dict`` to save.
        engine_key: also save the engine this handler is attached to under this name (its epoch,
            iteration and user state such as ``BYOLTrainer``'s optimizer step count). A bundle
            config cannot name the trainer inside the trainer's own handler list (a circular
            reference), so the handler adds it at ``attach``. ``None`` saves only ``save_dict``.
        kwargs: the other arguments of :class:`monai.handlers.CheckpointSaver`.
    """

    def __init__(self, save_dir: str, save_dict: dict, engine_key: str | None = None, **kwargs: Any) -> None:
        self.engine_key = engine_key
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        fixed = {
            "_final_checkpoint": kwargs.get("final_filename"),
            "_key_metric_checkpoint": kwargs.get("key_metric_filename"),
            "_interval_checkpoint": None,
        }
        for attr, filename in fixed.items():
            checkpoint = getattr(self, attr, None)
            if checkpoint is not None:
                checkpoint.save_handler = AtomicDiskSaver(save_dir, filename)

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine  # the ignite Checkpoints share this dict
        super().attach(engine)


_SCORE = re.compile(r"(?:epoch|iteration)=(\d+)")


def latest_checkpoint(checkpoint_dir: str | os.PathLike, prefix: str = "checkpoint") -> Path | None:
    """The checkpoint with the highest ``epoch=N`` (or ``iteration=N``) in its name, or None."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    scored = []
    for path in folder.glob(f"{prefix}*.pt"):
        match = _SCORE.search(path.name)
        if match:
            scored.append((int(match.group(1)), path))
    return max(scored)[1] if scored else None


class ResumeFromCheckpoint:
    """At the start of a run, load the latest checkpoint of ``checkpoint_dir`` into ``load_dict``.

    ``load_dict`` names the objects saved by :class:`CheckpointSaver` (networks, optimizer, LR
    scheduler, the trainer itself: its epoch, iteration and, for ``BYOLTrainer``, the optimizer
    step count of the ``tau`` schedule). The run then continues from the epoch after the saved
    one. Files load with ``torch.load(..., weights_only=True)``.

    Args:
        checkpoint_dir: folder of ``checkpoint_*epoch=N.pt`` files.
        load_dict: name -> object with ``load_state_dict``.
        engine_key: also load the engine this handler is attached to from this entry (see
            :class:`CheckpointSaver`); ``None`` loads only ``load_dict``.
        enabled: do nothing when False (lets a bundle switch resuming with one flag).
        prefix: file-name prefix of the checkpoints.
        map_location: ``torch.load`` map location; the engine's device when None.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        load_dict: dict,
        engine_key: str | None = None,
        enabled: bool = True,
        prefix: str = "checkpoint",
        map_location: Any = None,
    ) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.load_dict = load_dict
        self.engine_key = engine_key
        self.enabled = enabled
        self.prefix = prefix
        self.map_location = map_location
        self.logger = logging.getLogger("monai_ssl")
        self.loaded: Path | None = None

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        path = latest_checkpoint(self.checkpoint_dir, self.prefix)
        if path is None:
            self.logger.warning(f"resume requested but {self.checkpoint_dir} holds no checkpoint; starting fresh.")
            return
        map_location = self.map_location if self.map_location is not None else getattr(engine.state, "device", "cpu")
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:
            raise RuntimeError(f"cannot read checkpoint {path}: {e}") from e
        missing = [k for k in self.load_dict if k not in checkpoint]
        if missing:
            raise KeyError(f"checkpoint {path} has no {missing} (it holds {sorted(checkpoint)}).")
        max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(to_load=self.load_dict, checkpoint=checkpoint)
        if max_epochs is not None:
            if engine.state.epoch > max_epochs:
                raise ValueError(
                    f"checkpoint {path} is at epoch {engine.state.epoch}, past this run's max_epochs={max_epochs}."
                )
            engine.state.max_epochs = max_epochs
        self.loaded = path
        self.logger.info(f"resumed from {path} at epoch {engine.state.epoch}, iteration {engine.state.iteration}")
