"""Atomic checkpoints that carry the run's identity and its best-metric state.

MONAI's :class:`monai.handlers.CheckpointSaver` (1.6) writes through Ignite's ``DiskSaver`` with
``atomic=False`` and builds its save handlers inside ``__init__``, with no way to choose another one:
a run killed during a save can leave a truncated file that the next resume cannot read. So
:class:`CheckpointSaver` here takes MONAI's arguments but builds its ``ignite.handlers.Checkpoint``
objects itself, on an atomic save handler (temporary file, then one rename) that implements Ignite's
public ``BaseSaveHandler`` interface. Resuming is :class:`~monai_ssl.handlers.ResumeFromCheckpoint`
(``resume.py``).

Only public API of Ignite, MONAI and PyTorch is used: the save handler is a ``BaseSaveHandler``
(``__call__`` and ``remove``), and the files already on disk enter a ``Checkpoint``'s ``n_saved``
through its ``state_dict`` / ``load_state_dict``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.utils import is_scalar

from monai_ssl.handlers.run_identity import RUN_KEY, RunIdentity
from monai_ssl.networks.weights import non_finite_entries
from monai_ssl.utils.atomic import atomic_torch_save

__all__ = [
    "AtomicDiskSaver",
    "CheckpointSaver",
    "latest_checkpoint",
    "periodic_checkpoints",
    "remove_stale_temporaries",
    "with_saved_files",
]

_SCORE = re.compile(r"(?:epoch|iteration)=(\d+)")


def latest_checkpoint(checkpoint_dir: str | os.PathLike, prefix: str = "checkpoint") -> Path | None:
    """The checkpoint with the highest ``epoch=N`` (or ``iteration=N``) in its name, or None."""
    scored = periodic_checkpoints(checkpoint_dir, prefix)
    return scored[-1][1] if scored else None


def periodic_checkpoints(checkpoint_dir: str | os.PathLike, prefix: str = "checkpoint") -> list[tuple[int, Path]]:
    """The ``(N, path)`` of every ``<prefix>*epoch=N.pt`` (or ``iteration=N``) file of a folder, by ``N``."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    scored = []
    for path in folder.glob(f"{prefix}*.pt"):
        match = _SCORE.search(path.name)
        if match and path.is_file():
            scored.append((int(match.group(1)), path))
    return sorted(scored)


def remove_stale_temporaries(folder: str | os.PathLike, names: Sequence[str] = ("*",)) -> list[Path]:
    """Remove the temporary files a killed atomic save of ``names`` left in ``folder`` (``.<name>.<random>.tmp``).

    Only call this when no other process writes these files (a run owns its checkpoint files).

    Args:
        folder: where the files are saved.
        names: the saved files' names or glob patterns (e.g. ``"checkpoint*.pt"``, ``"model.pt"``).

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir() or idist.get_rank() != 0:
        return []
    stale = sorted({p for name in names for p in folder.glob(f".{name}.*.tmp") if p.is_file()})
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class AtomicDiskSaver(BaseSaveHandler):
    """An Ignite save handler that writes each checkpoint atomically, with an optional fixed file name.

    It implements Ignite's public ``BaseSaveHandler`` interface (``__call__`` and ``remove``). Each
    checkpoint is written by ``torch.save`` to a temporary ``.<name>.<random>.tmp`` file in ``dirname``,
    which then replaces ``<name>`` in one ``os.replace`` (:func:`~monai_ssl.utils.atomic_torch_save`):
    a save that fails or is killed never leaves a partial ``<name>`` (a killed one may leave the
    temporary file, which :func:`remove_stale_temporaries` clears at the next start).

    Ignite's ``Checkpoint`` asks to remove the file it replaces *before* writing the new one, so a run
    killed (or failing) in between would keep no checkpoint at all. Here a removal only takes effect once
    the next file is completely written, and with a fixed ``filename`` every save atomically replaces that
    one file.

    Args:
        dirname: folder of the checkpoint files (created if missing, need not be empty).
        filename: a fixed file name for every save (e.g. ``model.pt``); ``None`` keeps Ignite's names.
        save_on_rank: the rank that writes and removes files in a distributed run.

    Attributes:
        dirname: the folder, as a ``Path`` (Ignite's ``Checkpoint.reload_objects`` reads it).
        pending_removal: file names to remove after the next complete save.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None, save_on_rank: int = 0) -> None:
        self.dirname = Path(dirname).expanduser()
        self.filename = filename
        self.save_on_rank = save_on_rank
        self.pending_removal: list[str] = []
        if idist.get_rank() == save_on_rank:
            self.dirname.mkdir(parents=True, exist_ok=True)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        """Write ``checkpoint`` atomically, then remove the files whose removal was asked for.

        Args:
            checkpoint: the dictionary to save.
            filename: Ignite's file name (ignored with a fixed ``filename``).
            metadata: Ignite's metadata of the save (unused).
        """
        filename = self.filename or filename
        if idist.get_rank() == self.save_on_rank:
            atomic_torch_save(checkpoint, self.dirname / filename)
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
    """:class:`monai.handlers.CheckpointSaver` with atomic files, and the engine and the run in the checkpoint.

    Same arguments and files as MONAI's handler (``checkpoint_epoch=N.pt``, ``checkpoint_key_metric=X.pt``,
    ``checkpoint_final_iteration=N.pt`` or the fixed ``key_metric_filename`` / ``final_filename``), plus
    ``engine_key`` and ``run_identity``. Every file is written by :class:`AtomicDiskSaver`: a run killed
    during a save keeps the previous files intact, and a fixed file name is replaced in one rename.

    The best checkpoint is never taken from a broken state: a key metric that is NaN (or not a scalar)
    scores ``-inf``, and an epoch whose saved weights hold NaN/inf is not saved as the best.

    **Resuming.** When the run starts, the periodic files already in ``save_dir`` (those of the run
    being resumed) are counted in ``n_saved``, so a resumed run keeps as many files as a fresh one, and
    temporary files of a save that was killed are removed. The handler itself has a ``state_dict``: put
    the validator's best-model saver into the trainer's ``save_dict`` (and the resume handler's
    ``load_dict``), and the best score, with the evaluator's ``best_metric``, survives a resume, so a
    worse epoch after the resume does not replace the best model. List the validation handler before
    the trainer's saver, so each epoch's checkpoint holds that epoch's validation.

    Args:
        save_dir: folder of the checkpoint files.
        save_dict: name -> object with ``state_dict`` to save.
        engine_key: also save the engine this handler is attached to under this name (its epoch,
            iteration and user state such as ``BYOLTrainer``'s optimizer step count). A bundle
            config cannot name the trainer inside the trainer's own handler list (a circular
            reference), so the handler adds it at ``attach``. ``None`` saves only ``save_dict``.
        run_identity: also save this :class:`~monai_ssl.handlers.RunIdentity` (entry ``"run"``), which a
            resume checks before it loads anything.
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
        run_identity: RunIdentity | None = None,
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
        if run_identity is not None:
            self.save_dict[RUN_KEY] = run_identity
        self.engine: Engine | None = None
        self.periodic_prefix = f"{file_prefix}_checkpoint" if file_prefix else "checkpoint"
        self._own_files = [f"{self.periodic_prefix}*.pt", *(f for f in (final_filename, key_metric_filename) if f)]
        self._cleaned = False
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
        broken = _non_finite_entries(self.save_dict)
        if broken:
            self.logger.warning(
                f"the weights of {broken} hold NaN/inf at epoch {engine.state.epoch}; this epoch is never kept as "
                "the best checkpoint."
            )
            return -math.inf
        return (-1.0 if self.key_metric_negative_sign else 1.0) * float(metric)

    def state_dict(self) -> dict[str, Any]:
        """The best key-metric state: the best checkpoint's score and file, the engine's ``best_metric``.

        Raises:
            ValueError: this saver keeps no best checkpoint (``save_key_metric=False``).
        """
        if self.key_metric_checkpoint is None:
            raise ValueError("this CheckpointSaver has no key-metric checkpoint (save_key_metric=False).")
        state = getattr(self.engine, "state", None)
        return {
            "key_metric": self.key_metric_checkpoint.state_dict(),
            "best_metric": float(getattr(state, "best_metric", -1.0)),
            "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1)),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (or Ignite's list of best scores alone).

        The attached engine's ``best_metric``/``best_metric_epoch`` are restored too, so MONAI's
        "Got new best metric" compares with the best score of the whole run.
        """
        if self.key_metric_checkpoint is None:
            raise ValueError("this CheckpointSaver has no key-metric checkpoint (save_key_metric=False).")
        if "key_metric" not in state_dict:  # Ignite's own format (key_metric_save_state)
            self.key_metric_checkpoint.load_state_dict(state_dict)
            return
        self.key_metric_checkpoint.load_state_dict(state_dict["key_metric"])
        if self.engine is not None:
            self.engine.state.best_metric = state_dict["best_metric"]
            self.engine.state.best_metric_epoch = state_dict["best_metric_epoch"]

    def attach(self, engine: Engine) -> None:
        """Add ``engine`` to ``save_dict`` (with ``engine_key``) and register the saves on its events."""
        if self._name is None:
            self.logger = engine.logger
        self.engine = engine
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine  # the ignite Checkpoints share this dict
        engine.add_event_handler(Events.STARTED, self.started)
        if self.final_checkpoint is not None:
            engine.add_event_handler(Events.COMPLETED, self.completed)
            engine.add_event_handler(Events.EXCEPTION_RAISED, self.exception_raised)
        if self.key_metric_checkpoint is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self.metrics_completed)
        if self.interval_checkpoint is not None:
            event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
            engine.add_event_handler(event(every=self.save_interval), self.interval_completed)

    def started(self, engine: Engine) -> None:
        """Remove a killed save's temporary files; count the periodic files already there in ``n_saved``.

        Runs at every start of the engine (after a resume handler attached before this one has moved
        an earlier run's files aside or loaded the latest one): the files left in ``save_dir`` are then
        this run's own.
        """
        if not self._cleaned:
            self._cleaned = True
            stale = remove_stale_temporaries(self.save_dir, self._own_files)
            if stale:
                self.logger.info(f"removed {len(stale)} temporary file(s) of an interrupted save in {self.save_dir}")
        if self.interval_checkpoint is None:
            return
        kind = "epoch" if self.epoch_level else "iteration"
        periodic = periodic_checkpoints(self.save_dir, self.periodic_prefix)
        on_disk = [(number, path.name) for number, path in periodic if f"_{kind}=" in path.name]
        state = self.interval_checkpoint.state_dict()  # Ignite's public state: the files it counts
        self.interval_checkpoint.load_state_dict(with_saved_files(state, on_disk))

    def _save_final(self, engine: Engine) -> str:
        """Save the final checkpoint and return its path."""
        assert self.final_checkpoint is not None
        self.final_checkpoint(engine)
        # Ignite's `last_checkpoint` is the file name alone for a save handler that is not its DiskSaver
        return os.path.join(self.save_dir, self.final_filename or str(self.final_checkpoint.last_checkpoint))

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


def with_saved_files(state: Mapping[str, Any], files: Sequence[tuple[int | float, str]]) -> dict[str, Any]:
    """An Ignite ``Checkpoint.state_dict()`` with ``files`` added to its saved items, for ``load_state_dict``.

    Ignite's state holds the list of saved ``(priority, filename)`` pairs, lowest priority first (the
    first is removed when ``n_saved`` is reached). Files already listed are not added twice, and the
    list is sorted by priority again (a stable sort, as Ignite's own).

    Args:
        state: what ``Checkpoint.state_dict()`` returned.
        files: ``(priority, filename)`` of files to count, e.g. the periodic files found on disk.

    Returns:
        The state with every list of saved items extended; other entries unchanged.
    """
    merged: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, list):
            known = {name for _, name in value}
            value = sorted([*value, *((p, f) for p, f in files if f not in known)], key=lambda item: item[0])
        merged[key] = value
    return merged


def _non_finite_entries(save_dict: Mapping[str, Any]) -> list[str]:
    """The names of the ``torch.nn.Module`` entries whose parameters or buffers hold NaN/inf."""
    return [n for n, obj in save_dict.items() if isinstance(obj, torch.nn.Module) and non_finite_entries(obj.state_dict())]
