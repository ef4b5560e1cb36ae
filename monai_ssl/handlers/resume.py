"""Start a run in its checkpoint folder: continue the run found there, or make sure none is.

:class:`ResumeFromCheckpoint` is MONAI's :class:`monai.handlers.CheckpointLoader` pointed at the latest
``checkpoint*epoch=N.pt`` of a folder, with the checks a resume needs: the file must belong to the run
that asks (:class:`~monai_ssl.handlers.RunIdentity`), the schedules follow the run length the user
asks for, and a new run never trains next to another run's checkpoints (which a later resume would
pick up).
"""

from __future__ import annotations

import math
import os
import shutil
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)

from monai_ssl.handlers.checkpoint import latest_checkpoint, periodic_checkpoints
from monai_ssl.handlers.run_identity import RUN_KEY, RunIdentity, describe, read_checkpoint_entries, read_run_identity
from monai_ssl.utils.settings import require_flags

__all__ = [
    "CLOSED_FORM_SCHEDULERS",
    "EXISTING_CHECKPOINTS",
    "ResumeFromCheckpoint",
    "closed_form_lr",
    "follow_schedule_shape",
]

EXISTING_CHECKPOINTS = ("refuse", "archive", "replace")

# Settings of a learning-rate schedule that come from the config, not from the checkpoint: a resumed
# run keeps the saved progress (last_epoch, current LR) but follows the shape the config gives now.
_SCHEDULE_SHAPE = ("T_max", "eta_min", "milestones", "gamma", "step_size", "total_iters", "power", "start_factor",
                   "end_factor")  # fmt: skip


def _step_lr(scheduler: StepLR, base_lr: float) -> float:
    return base_lr * scheduler.gamma ** (scheduler.last_epoch // scheduler.step_size)


def _multi_step_lr(scheduler: MultiStepLR, base_lr: float) -> float:
    milestones = sorted(Counter(scheduler.milestones).elements())  # a milestone given twice decays twice
    return base_lr * scheduler.gamma ** bisect_right(milestones, scheduler.last_epoch)


def _constant_lr(scheduler: ConstantLR, base_lr: float) -> float:
    factor = 1.0 if scheduler.last_epoch >= scheduler.total_iters else scheduler.factor
    return base_lr * factor


def _linear_lr(scheduler: LinearLR, base_lr: float) -> float:
    progress = min(scheduler.total_iters, scheduler.last_epoch) / scheduler.total_iters
    return base_lr * (scheduler.start_factor + (scheduler.end_factor - scheduler.start_factor) * progress)


def _exponential_lr(scheduler: ExponentialLR, base_lr: float) -> float:
    return base_lr * scheduler.gamma**scheduler.last_epoch


def _polynomial_lr(scheduler: PolynomialLR, base_lr: float) -> float:
    return base_lr * (1.0 - min(scheduler.total_iters, scheduler.last_epoch) / scheduler.total_iters) ** scheduler.power


def _cosine_annealing_lr(scheduler: CosineAnnealingLR, base_lr: float) -> float:
    cosine = 1 + math.cos(math.pi * scheduler.last_epoch / scheduler.T_max)
    return scheduler.eta_min + (base_lr - scheduler.eta_min) * cosine / 2


# The schedules whose rate at `last_epoch` the project computes from their public settings and `base_lrs`
_CLOSED_FORMS: dict[type[LRScheduler], Callable[[Any, float], float]] = {
    StepLR: _step_lr,
    MultiStepLR: _multi_step_lr,
    ConstantLR: _constant_lr,
    LinearLR: _linear_lr,
    ExponentialLR: _exponential_lr,
    PolynomialLR: _polynomial_lr,
    CosineAnnealingLR: _cosine_annealing_lr,
}
CLOSED_FORM_SCHEDULERS = tuple(_CLOSED_FORMS)


def closed_form_lr(scheduler: LRScheduler) -> list[float] | None:
    """The learning rate of each parameter group that ``scheduler`` gives at its ``last_epoch``, in closed form.

    Computed from the schedule's public settings (``base_lrs``, ``last_epoch``, ``T_max``, ``eta_min``,
    ``milestones``, ``gamma``, ``step_size``, ``factor``, ``start_factor``, ``end_factor``, ``total_iters``,
    ``power``), not from the current rate, so it follows the settings the schedule has now. Known for
    PyTorch's ``StepLR``, ``MultiStepLR``, ``ConstantLR``, ``LinearLR``, ``ExponentialLR``,
    ``PolynomialLR`` and ``CosineAnnealingLR`` (and their subclasses): the formulas are those of the
    PyTorch documentation of each class.

    Args:
        scheduler: a PyTorch learning-rate schedule.

    Returns:
        One rate per parameter group, or None for a schedule type without a known closed form (e.g.
        ``LambdaLR``, ``CosineAnnealingWarmRestarts``, ``OneCycleLR``, ``CyclicLR``, ``SequentialLR``).
    """
    for kind in type(scheduler).__mro__:
        form = _CLOSED_FORMS.get(kind)
        if form is not None:
            return [form(scheduler, float(base_lr)) for base_lr in scheduler.base_lrs]
    return None


def follow_schedule_shape(scheduler: LRScheduler, shape: Mapping[str, Any]) -> bool:
    """Give a loaded schedule the config's ``shape``; when that changes it, put the rate on the new curve.

    PyTorch's recursive forms (e.g. cosine annealing) compute the next rate from the current one: a
    finished cosine run sits at ``eta_min`` and would stay there for the added epochs. The shape is set
    through the schedule's public ``load_state_dict``; a schedule with a closed form
    (:func:`closed_form_lr`: StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR,
    CosineAnnealingLR) then gets the rate of the new curve at its saved ``last_epoch`` in each
    ``optimizer.param_groups[i]["lr"]``, from which its next ``step()`` goes on. Other types keep the
    saved rate (and the new shape). ``get_last_lr()`` reports the new rate from that next ``step()`` on:
    it is the rate the schedule last computed, which PyTorch offers no public way to set.

    Args:
        scheduler: a schedule whose state was just loaded from a checkpoint.
        shape: schedule setting -> the value the config gives now (see ``_SCHEDULE_SHAPE``).

    Returns:
        Whether the rate was put on the new curve.
    """
    if all(getattr(scheduler, name) == value for name, value in shape.items()):
        return False
    scheduler.load_state_dict({**scheduler.state_dict(), **shape})
    rates = closed_form_lr(scheduler)
    if rates is None:
        return False
    for group, rate in zip(scheduler.optimizer.param_groups, rates):
        if isinstance(group["lr"], torch.Tensor):  # a tensor rate is updated in place, as PyTorch does
            group["lr"].fill_(rate)
        else:
            group["lr"] = rate
    return True


class ResumeFromCheckpoint(CheckpointLoader):
    """At the first start of a run: resume the run of ``checkpoint_dir``, or check that it holds none.

    **Resume** (``enabled=True``): the newest ``checkpoint*epoch=N.pt`` is loaded into ``load_dict``
    (MONAI's :class:`monai.handlers.CheckpointLoader`: ``torch.load(..., weights_only=True)``, then
    ``ignite.handlers.Checkpoint.load_objects``) and the run continues with the epoch after the saved one.
    With a ``run_identity``, the file must have been written by the same config on the same data
    (else nothing is loaded and the error says why); the saved run length is the bundle's default
    (:func:`~monai_ssl.handlers.run_length`), and when the user sets another one the learning-rate
    schedules take their shape (``T_max``, milestones, ...) from the config, those with a closed form
    restart on the new curve at the saved epoch (:func:`follow_schedule_shape`), and the log says that
    they, and ``BYOLTrainer``'s ``tau`` schedule, now end at the new last epoch. An empty or missing
    folder logs a warning and the run starts fresh.

    **New run** (``enabled=False``): if the folder already holds periodic checkpoints, they are of
    another run, and a later resume would load them. ``existing_checkpoints`` decides: ``"refuse"``
    (default) stops with a message naming that run and the ways on; ``"archive"`` moves them into
    ``<checkpoint_dir>/archive/<n>/``; ``"replace"`` deletes them (for a caller that owns the folder,
    such as the pseudo-label rounds).

    Later starts of the same engine (a second ``run`` of one trainer) do nothing.

    Args:
        checkpoint_dir: folder of ``checkpoint_*epoch=N.pt`` files.
        load_dict: name -> object with ``load_state_dict`` (not empty).
        engine_key: also load the engine this handler is attached to from this entry (see
            :class:`~monai_ssl.handlers.CheckpointSaver`); ``None`` loads only ``load_dict``.
        run_identity: the identity of this run, checked against the file's before anything is loaded.
        enabled: resume (True) or start a new run (False).
        existing_checkpoints: what a new run does with checkpoints found in the folder (see above).
        prefix: file-name prefix of the checkpoints.
        map_location: ``torch.load`` map location; the engine's device when None.
        strict: require every entry of each state dict to match (``load_state_dict(strict=...)``).
        name: logger name.

    Attributes:
        loaded: the file loaded, or None.
        archived: where a new run moved the earlier checkpoints, or None.

    Raises:
        FileExistsError: a new run with ``existing_checkpoints="refuse"`` finds checkpoints.
        ValueError: on resume, the file belongs to another run, lacks an entry of ``load_dict``, or has
            trained more epochs than the run's ``max_epochs`` (the message names the file).
        RuntimeError: on resume, the file cannot be read or loaded (the message names it).
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        load_dict: dict,
        engine_key: str | None = None,
        run_identity: RunIdentity | None = None,
        enabled: bool = True,
        existing_checkpoints: str = "refuse",
        prefix: str = "checkpoint",
        map_location: Any = None,
        strict: bool = True,
        name: str | None = "monai_ssl",
    ) -> None:
        if existing_checkpoints not in EXISTING_CHECKPOINTS:
            raise ValueError(
                f"`existing_checkpoints` must be one of {EXISTING_CHECKPOINTS}, got {existing_checkpoints!r}."
            )
        require_flags(resume=enabled)
        super().__init__(load_path=str(checkpoint_dir), load_dict=load_dict, name=name, strict=strict)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.engine_key = engine_key
        self.run_identity = run_identity
        self.enabled = enabled
        self.existing_checkpoints = existing_checkpoints
        self.prefix = prefix
        self.requested_map_location = map_location
        self.loaded: Path | None = None
        self.archived: Path | None = None
        self._started = False

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if self.engine_key is not None:
            self.load_dict[self.engine_key] = engine
        if self.run_identity is not None:
            self.load_dict[RUN_KEY] = self.run_identity
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        if self._started:
            return
        self._started = True
        if self.enabled:
            self._resume(engine)
        else:
            self._start_new_run()

    # ---------------------------------------------------------------- new run
    def _start_new_run(self) -> None:
        found = [path for _, path in periodic_checkpoints(self.checkpoint_dir, self.prefix)]
        if not found:
            return
        names = ", ".join(p.name for p in found)
        if self.existing_checkpoints == "refuse":
            try:
                earlier = describe(read_run_identity(found[-1]))
            except RuntimeError:
                earlier = "unreadable"
            raise FileExistsError(
                f"{self.checkpoint_dir} holds the checkpoints of an earlier run ({earlier}; {names}), which a later "
                "resume would load. To continue that run: --resume True. To start a new run: --existing_checkpoints "
                f"archive (moves them to {self.checkpoint_dir}/archive/), or delete them."
            )
        if idist.get_rank() != 0:
            return
        if self.existing_checkpoints == "archive":
            self.archived = _archive_folder(self.checkpoint_dir)
            self.archived.mkdir(parents=True)
            for path in found:
                shutil.move(str(path), self.archived / path.name)
            self.logger.info(f"new run: moved the earlier run's checkpoints ({names}) to {self.archived}")
        else:
            for path in found:
                path.unlink(missing_ok=True)
            self.logger.info(f"new run: removed the earlier checkpoints in {self.checkpoint_dir} ({names})")

    # ---------------------------------------------------------------- resume
    def _resume(self, engine: Engine) -> None:
        path = latest_checkpoint(self.checkpoint_dir, self.prefix)
        if path is None:
            self.logger.warning(f"resume requested but {self.checkpoint_dir} holds no checkpoint; starting fresh.")
            return
        saved_length = self._check_identity(path, engine)
        schedules = {k: v for k, v in self.load_dict.items() if isinstance(v, LRScheduler)}
        shapes = {k: {a: getattr(v, a) for a in _SCHEDULE_SHAPE if hasattr(v, a)} for k, v in schedules.items()}
        self.load_path = str(path)
        self.map_location = self.requested_map_location
        if self.map_location is None:
            self.map_location = getattr(engine.state, "device", "cpu")
        try:
            super().__call__(engine)
        except ValueError as e:  # an entry missing from the file (Ignite), or the run is another one (RunIdentity)
            raise ValueError(f"cannot resume from checkpoint {path}: {e}") from e
        except Exception as e:  # unreadable (truncated, not a checkpoint) or not matching the objects
            raise RuntimeError(f"cannot load checkpoint {path}: {e}") from e
        for key, shape in shapes.items():  # the config's schedule shape, the checkpoint's progress
            follow_schedule_shape(schedules[key], shape)
        self.loaded = path
        max_epochs = engine.state.max_epochs
        self.logger.info(
            f"resumed from {path} at epoch {engine.state.epoch} of {max_epochs}, iteration {engine.state.iteration}"
        )
        if saved_length is not None and saved_length != max_epochs:
            self.logger.info(
                f"run length changed from {saved_length} to {max_epochs} epochs (--num_epochs {max_epochs}): the "
                f"learning-rate schedule{'s' if len(schedules) != 1 else ''} and the schedules over optimizer steps "
                f"(BYOL's momentum tau, the cross-teaching weight) now end at epoch {max_epochs}."
            )
        if engine.state.epoch >= max_epochs:
            self.logger.info(
                f"this run had already finished all its {max_epochs} epochs: nothing left to train (to train it "
                "longer, resume with --num_epochs N)."
            )

    def _check_identity(self, path: Path, engine: Engine) -> int | None:
        """Refuse a file of another run, or one that trained past ``max_epochs``; return its run length."""
        if self.run_identity is None:
            return None
        entries = read_checkpoint_entries(path)
        checkpoint_run = read_run_identity(entries)
        problem = self.run_identity.check(checkpoint_run)
        if problem:
            raise ValueError(
                f"cannot resume from checkpoint {path}: {problem}. To start a new run instead: --resume False "
                "--existing_checkpoints archive."
            )
        assert checkpoint_run is not None
        trained = _saved_epoch(entries, self.engine_key)
        max_epochs = engine.state.max_epochs
        if trained is not None and max_epochs is not None and trained > max_epochs:
            raise ValueError(
                f"cannot resume from checkpoint {path}: it has trained {trained} epochs, more than the {max_epochs} "
                f"asked for (--num_epochs). Resume with --num_epochs {checkpoint_run.get('num_epochs')} (its run length) "
                "or more."
            )
        return int(checkpoint_run["num_epochs"])


def _archive_folder(checkpoint_dir: Path) -> Path:
    """A new folder ``<checkpoint_dir>/archive/<n>`` for moving an earlier run's checkpoints aside."""
    n = 1
    while (checkpoint_dir / "archive" / str(n)).exists():
        n += 1
    return checkpoint_dir / "archive" / str(n)


def _saved_epoch(entries: Mapping[str, Any], engine_key: str | None) -> int | None:
    """The epoch saved with the engine in a checkpoint's entries (None without engine entry)."""
    if engine_key is None:
        return None
    state = entries.get(engine_key)
    if not isinstance(state, Mapping):
        return None
    if "epoch" in state:
        return int(state["epoch"])
    if "iteration" in state and state.get("epoch_length"):  # Ignite saves the iteration only
        return int(state["iteration"]) // int(state["epoch_length"])
    return None
