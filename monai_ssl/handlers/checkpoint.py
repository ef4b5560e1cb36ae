"""Atomic checkpoints, and resuming a killed run from its latest checkpoint.

MONAI's :class:`monai.handlers.CheckpointSaver` (1.6) writes through Ignite's ``DiskSaver`` with
``atomic=False`` and builds its save handlers inside ``__init__``, with no way to choose another one:
a run killed during a save can leave a truncated file that the next resume cannot read. So
:class:`CheckpointSaver` here takes MONAI's arguments but builds its ``ignite.handlers.Checkpoint``
objects itself, on Ignite's ``DiskSaver(atomic=True)`` (temporary file, then one rename).
:class:`ResumeFromCheckpoint` is MONAI's :class:`monai.handlers.CheckpointLoader` pointed at the latest
checkpoint of a folder.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.handlers import CheckpointLoader
from monai.utils import is_scalar

__all__ = ["AtomicDiskSaver", "CheckpointSaver", "ResumeFromCheckpoint", "latest_checkpoint"]


class AtomicDiskSaver(DiskSaver):
    """Ignite's ``DiskSaver(atomic=True)`` with an optional fixed file name and removals after the next save.

    Ignite's ``Checkpoint`` removes the file it replaces *before* writing the new one, so a run killed
    (or failing) in between would keep no checkpoint at all. Here a removal only takes effect once the
    next file is completely written, and with a fixed ``filename`` every save atomically replaces that
    one file.

    Args:
        dirname: folder of the checkpoint files (created if missing, need not be empty).
        filename: a fixed file name for every save (e.g. ``model.pt``); ``None`` keeps Ignite's names.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        super().__init__(dirname, atomic=True, create_dir=True, require_empty=False)
        self.filename = filename
        self.pending_removal: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:  # noqa: D102
        filename = self.filename or filename
        super().__call__(checkpoint, filename, metadata)
        stale, self.pending_removal = self.pending_removal, []
        if idist.get_rank() == self.save_on_rank:
            for name in stale:
                if name != filename:
                    (self.dirname / name).unlink(missing_ok=True)

    def remove(self, filename: str) -> None:
        """Remove ``filename`` after the next complete save (a fixed file name is replaced, never removed)."""
        if self.filename is None:
            self.pending_removal.append(filename)


class CheckpointSaver:
    """:class:`monai.handlers.CheckpointSaver` with atomic files and the engine in the checkpoint.

    Same arguments and files as MONAI's handler (``checkpoint_epoch=N.pt``, ``checkpoint_key_metric=X.pt``,
    ``checkpoint_final_iteration=N.pt`` or the fixed ``key_metric_filename`` / ``final_filename``), plus
    ``engine_key``. Every file is written by :class:`AtomicDiskSaver`: a run killed during a save keeps
    the previous files intact, and a fixed file name is replaced in one rename. A key metric that is NaN
    (or not a scalar) scores ``-inf``, so such an epoch never becomes the best checkpoint.

    Args:
        save_dir: folder of the checkpoint files.
        save_dict: name -> object with ``state_dict`` to save.
        engine_key: also save the engine this handler is attached to under this name (its epoch,
            iteration and user state such as ``BYOLTrainer``'s optimizer step count). A bundle
            config cannot name the trainer inside the trainer's own handler list (a circular
            reference), so the handler adds it at ``attach``. ``None`` saves only ``save_dict``.
        name: logger name; the engine's logger when None.
        file_prefix: prefix of the file names.
        save_final: save at the end of the run and when it raises (re-raising the error).
        final_filename: fixed file name of the final checkpoint.
        save_key_metric: save when the key metric is higher than every previous value.
        key_metric_name: the metric to compare; the engine's ``state.key_metric_name`` when None.
        key_metric_n_saved: keep the best N files.
        key_metric_filename: fixed file name of the best checkpoint (then ``key_metric_n_saved`` must be 1).
        key_metric_save_state: store the list of best scores in the file (key ``checkpointer``).
        key_metric_greater_or_equal: an equal score also replaces the best checkpoint.
        key_metric_negative_sign: lower is better (the score is the negated metric).
        epoch_level: ``save_interval`` counts epochs (True) or iterations (False).
        save_interval: save every N epochs/iterations; 0 saves no periodic checkpoint.
        n_saved: keep the latest N periodic checkpoints; None keeps all.

    Attributes:
        final_checkpoint, key_metric_checkpoint, interval_checkpoint: the ``ignite.handlers.Checkpoint``
            of each kind of file, or None when not requested.
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: dict,
        engine_key: str | None = None,
        name: str | None = None,
        file_prefix: str = "",
        save_final: bool = False,
        final_filename: str | None = None,
        save_key_metric: bool = False,
        key_metric_name: str | None = None,
        key_metric_n_saved: int = 1,
        key_metric_filename: str | None = None,
        key_metric_save_state: bool = False,
        key_metric_greater_or_equal: bool = False,
        key_metric_negative_sign: bool = False,
        epoch_level: bool = True,
        save_interval: int = 0,
        n_saved: int | None = None,
    ) -> None:
        if save_dir is None:
            raise ValueError("CheckpointSaver needs `save_dir`, the folder of the checkpoints.")
        if not save_dict:
            raise ValueError("CheckpointSaver needs a non-empty `save_dict` of objects to save.")
        if key_metric_filename is not None and key_metric_n_saved > 1:
            raise ValueError("a fixed `key_metric_filename` holds one checkpoint: use key_metric_n_saved=1.")
        self.save_dir = save_dir
        self.save_dict = save_dict
        self.engine_key = engine_key
        self.epoch_level = epoch_level
        self.save_interval = save_interval
        self.final_filename = final_filename
        self.key_metric_name = key_metric_name
        self.key_metric_negative_sign = key_metric_negative_sign
        self._name = name
        self.logger = logging.getLogger(name)
        self.final_checkpoint: Checkpoint | None = None
        self.key_metric_checkpoint: Checkpoint | None = None
        self.interval_checkpoint: Checkpoint | None = None
        if save_final:
            self.final_checkpoint = self._checkpoint(
                final_filename, file_prefix, lambda e: e.state.iteration, "final_iteration", greater_or_equal=True
            )
        if save_key_metric:
            self.key_metric_checkpoint = self._checkpoint(
                key_metric_filename,
                file_prefix,
                self._key_metric_score,
                "key_metric",
                n_saved=key_metric_n_saved,
                include_self=key_metric_save_state,
                greater_or_equal=key_metric_greater_or_equal,
            )
        if save_interval > 0:
            self.interval_checkpoint = self._checkpoint(
                None, file_prefix, self._step, "epoch" if epoch_level else "iteration", n_saved=n_saved
            )

    def _checkpoint(
        self,
        filename: str | None,
        file_prefix: str,
        score_function: Callable[[Engine], Any],
        score_name: str,
        **kwargs: Any,
    ) -> Checkpoint:
        """An Ignite ``Checkpoint`` of ``save_dict`` written by an :class:`AtomicDiskSaver`."""
        return Checkpoint(
            to_save=self.save_dict,
            save_handler=AtomicDiskSaver(self.save_dir, filename),
            filename_prefix=file_prefix,
            score_function=score_function,
            score_name=score_name,
            **kwargs,
        )

    def _step(self, engine: Engine) -> int:
        """Score of the periodic checkpoints: the epoch or the iteration."""
        return engine.state.epoch if self.epoch_level else engine.state.iteration

    def _key_metric_score(self, engine: Engine) -> float:
        """Score of the best checkpoint: the key metric (negated with ``key_metric_negative_sign``).

        A NaN or non-scalar metric scores ``-inf``. Ignite compares scores with ``>``, so a NaN saved
        first (an undefined metric, such as the ROC AUC of a single-class split) would never be
        beaten, whereas ``-inf`` is beaten by any defined score.
        """
        name = self.key_metric_name or getattr(engine.state, "key_metric_name", None)
        if name is None:
            raise ValueError("save_key_metric=True needs `key_metric_name` or an engine with a key metric.")
        metric = engine.state.metrics[name]
        if not is_scalar(metric) or math.isnan(float(metric)):
            self.logger.warning(
                f"key metric {name}={metric} at epoch {engine.state.epoch} is not a number; this epoch is never "
                "kept as the best checkpoint."
            )
            return -math.inf
        return (-1.0 if self.key_metric_negative_sign else 1.0) * float(metric)

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the list of best key-metric scores (saved with ``key_metric_save_state=True``)."""
        if self.key_metric_checkpoint is None:
            raise ValueError("this CheckpointSaver has no key-metric checkpoint (save_key_metric=False).")
        self.key_metric_checkpoint.load_state_dict(state_dict)

    def attach(self, engine: Engine) -> None:
        """Add ``engine`` to ``save_dict`` (with ``engine_key``) and register the saves on its events."""
        if self._name is None:
            self.logger = engine.logger
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine  # the ignite Checkpoints share this dict
        if self.final_checkpoint is not None:
            engine.add_event_handler(Events.COMPLETED, self.completed)
            engine.add_event_handler(Events.EXCEPTION_RAISED, self.exception_raised)
        if self.key_metric_checkpoint is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self.metrics_completed)
        if self.interval_checkpoint is not None:
            event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
            engine.add_event_handler(event(every=self.save_interval), self.interval_completed)

    def _save_final(self, engine: Engine) -> str:
        """Save the final checkpoint and return its path."""
        assert self.final_checkpoint is not None
        self.final_checkpoint(engine)
        if self.final_filename is not None:
            return os.path.join(self.save_dir, self.final_filename)
        return str(self.final_checkpoint.last_checkpoint)

    def completed(self, engine: Engine) -> None:
        """Save the final checkpoint at the end of the run."""
        self.logger.info(f"Train completed, saved final checkpoint: {self._save_final(engine)}")

    def exception_raised(self, engine: Engine, e: Exception) -> None:
        """Save the final checkpoint when the run raises, then re-raise ``e``.

        Ignite calls only the first handler of ``EXCEPTION_RAISED``: attach this one before ``StatsHandler``.
        """
        self.logger.info(f"Exception raised, saved the last checkpoint: {self._save_final(engine)}")
        raise e

    def metrics_completed(self, engine: Engine) -> None:
        """Save the best checkpoint when the key metric improved."""
        assert self.key_metric_checkpoint is not None
        self.key_metric_checkpoint(engine)

    def interval_completed(self, engine: Engine) -> None:
        """Save the periodic checkpoint."""
        assert self.interval_checkpoint is not None
        self.interval_checkpoint(engine)
        step = f"epoch: {engine.state.epoch}" if self.epoch_level else f"iteration: {engine.state.iteration}"
        self.logger.info(f"Saved checkpoint at {step}")


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


class ResumeFromCheckpoint(CheckpointLoader):
    """At the start of a run, load the latest checkpoint of ``checkpoint_dir`` into ``load_dict``.

    MONAI's :class:`monai.handlers.CheckpointLoader` (``torch.load(..., weights_only=True)``, then
    ``ignite.handlers.Checkpoint.load_objects``; the run keeps its own ``max_epochs``) applied to the
    newest ``checkpoint*epoch=N.pt`` of a folder. ``load_dict`` names the objects saved by
    :class:`CheckpointSaver` (networks, optimizer, LR scheduler, the trainer itself: its epoch,
    iteration and, for ``BYOLTrainer``, the optimizer step count of the ``tau`` schedule). The run
    then continues from the epoch after the saved one. An empty or missing folder logs a warning and
    the run starts fresh.

    Args:
        checkpoint_dir: folder of ``checkpoint_*epoch=N.pt`` files.
        load_dict: name -> object with ``load_state_dict`` (not empty).
        engine_key: also load the engine this handler is attached to from this entry (see
            :class:`CheckpointSaver`); ``None`` loads only ``load_dict``.
        enabled: do nothing when False (lets a bundle switch resuming with one flag).
        prefix: file-name prefix of the checkpoints.
        map_location: ``torch.load`` map location; the engine's device when None.
        strict: require every entry of each state dict to match (``load_state_dict(strict=...)``).
        name: logger name.

    Attributes:
        loaded: the file loaded, or None.

    Raises:
        RuntimeError: when the run starts, if the latest file cannot be read or loaded (the message
            names the file).
        ValueError: when the run starts, if the file lacks an entry of ``load_dict`` or its epoch is
            past the run's ``max_epochs`` (the message names the file).
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        load_dict: dict,
        engine_key: str | None = None,
        enabled: bool = True,
        prefix: str = "checkpoint",
        map_location: Any = None,
        strict: bool = True,
        name: str | None = "monai_ssl",
    ) -> None:
        super().__init__(load_path=str(checkpoint_dir), load_dict=load_dict, name=name, strict=strict)
        self.checkpoint_dir = checkpoint_dir
        self.engine_key = engine_key
        self.enabled = enabled
        self.prefix = prefix
        self.requested_map_location = map_location
        self.loaded: Path | None = None

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if self.enabled:
            super().attach(engine)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        path = latest_checkpoint(self.checkpoint_dir, self.prefix)
        if path is None:
            self.logger.warning(f"resume requested but {self.checkpoint_dir} holds no checkpoint; starting fresh.")
            return
        self.load_path = str(path)
        self.map_location = self.requested_map_location
        if self.map_location is None:
            self.map_location = getattr(engine.state, "device", "cpu")
        try:
            super().__call__(engine)
        except ValueError as e:  # an entry missing from the file (Ignite), or an epoch past max_epochs (MONAI)
            raise ValueError(f"cannot resume from checkpoint {path}: {e}") from e
        except Exception as e:  # unreadable (truncated, not a checkpoint) or not matching the objects
            raise RuntimeError(f"cannot load checkpoint {path}: {e}") from e
        self.loaded = path
        self.logger.info(f"resumed from {path} at epoch {engine.state.epoch}, iteration {engine.state.iteration}")
