"""The length of a training run in epochs: asked for in epochs, in optimizer steps, or the saved run's.

:func:`run_length` gives a bundle config its ``max_epochs`` before anything is built: the requested
``num_epochs``, else the epochs that make the requested ``num_steps`` optimizer steps (whole epochs, so
at least that many), else the saved run's length on resume, else the config's default.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sized
from typing import Any

from monai_ssl.handlers.checkpoint import latest_checkpoint
from monai_ssl.handlers.run_identity import read_run_identity

__all__ = ["epochs_for_steps", "optimizer_steps_per_epoch", "run_length"]

logger = logging.getLogger("monai_ssl")


def optimizer_steps_per_epoch(data_loader: Sized, accumulation_steps: int = 1) -> int:
    """Optimizer steps in one epoch over ``data_loader``: ``ceil(len(data_loader) / accumulation_steps)``.

    The trainers step once per ``accumulation_steps`` iterations and once more at the end of an epoch for
    a remainder (:attr:`~monai_ssl.engines.OptimizerStepTrainer.optimizer_steps_per_epoch`). Under multi-GPU
    training the loader's length is already this process's share (its ``DistributedSampler``), and every
    process steps together, so the count is the same on each. For :func:`run_length`'s ``steps_per_epoch``:
    ``"steps_per_epoch=monai_ssl.handlers.optimizer_steps_per_epoch(@train#dataloader, @accumulation_steps)"``.

    Raises:
        TypeError: the loader has no length (an iterable dataset: its epoch has no fixed number of steps).
        ValueError: ``accumulation_steps`` is not a positive integer.
    """
    if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"`accumulation_steps` must be a positive integer, got {accumulation_steps!r}.")
    try:
        iterations = len(data_loader)
    except TypeError as e:
        raise TypeError(
            f"the training loader ({type(data_loader).__name__}) has no length, so an epoch has no fixed number of "
            "optimizer steps; set the run length with `num_epochs` instead of `num_steps`."
        ) from e
    return math.ceil(iterations / accumulation_steps)


def _positive(value: Any, key: str, unit: str) -> int:
    """``value`` when it is a whole number >= 1 (not a bool); else a ``ValueError`` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{key}` must be a positive whole number of {unit}, got {value!r}.")
    return value


def epochs_for_steps(num_steps: int, steps_per_epoch: int) -> int:
    """The whole epochs that train at least ``num_steps`` optimizer steps: ``ceil(num_steps / steps_per_epoch)``.

    Raises:
        ValueError: either is not a positive integer (the message names the key; a ``steps_per_epoch`` of 0
            means one epoch of the training loader takes no step).
    """
    num_steps = _positive(num_steps, "num_steps", "optimizer steps")
    if steps_per_epoch == 0 and not isinstance(steps_per_epoch, bool):
        raise ValueError(
            "`steps_per_epoch` is 0: one epoch of the training data takes no optimizer step (fewer items than one "
            "batch, with drop_last?), so no number of epochs reaches `num_steps`. Lower the batch size or add data."
        )
    steps_per_epoch = _positive(steps_per_epoch, "steps_per_epoch", "optimizer steps")
    return math.ceil(num_steps / steps_per_epoch)


def run_length(
    num_epochs: int | None,
    default: int,
    resume: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    prefix: str = "checkpoint",
    num_steps: int | None = None,
    steps_per_epoch: int | None = None,
) -> int:
    """The number of epochs of a run: ``num_epochs`` if given, else enough epochs for ``num_steps`` if given,
    else the resumed run's, else ``default``.

    Meant for bundle configs, where ``num_epochs`` and ``num_steps`` are ``null`` unless the user sets one:
    ``"max_epochs": "$monai_ssl.handlers.run_length(@num_epochs, @default_num_epochs, @resume, @checkpoint_dir,
    num_steps=@num_steps, steps_per_epoch=len(@train#dataloader))"``.
    So ``--resume True`` alone continues the saved run to its own end, and ``--resume True --num_epochs 6``
    changes its length explicitly (:class:`~monai_ssl.handlers.ResumeFromCheckpoint` then logs that the
    schedules follow the new length).

    ``num_steps`` fixes the training by optimizer steps rather than epochs, so that runs on labeled sets of
    different sizes train equally long (the cross-teaching paper, Luo et al. 2022, "Semi-supervised medical
    image segmentation via cross teaching between CNN and Transformer", trains 30,000 iterations at every
    label fraction). The run then has ``ceil(num_steps / steps_per_epoch)`` epochs: at least ``num_steps``
    steps, the last epoch run to its end (the log says how many steps that makes). Like ``num_epochs`` it
    is an explicit length: on resume it wins over the saved run's (on the same data, which the run identity
    checks, it gives the same epochs).

    Args:
        num_epochs: the requested epochs (``None``: not set).
        default: the config's default epochs.
        resume: whether the run continues the latest checkpoint of ``checkpoint_dir``.
        checkpoint_dir: the run's checkpoint folder.
        prefix: file-name prefix of its checkpoints.
        num_steps: the requested optimizer steps (``None``: not set); excludes ``num_epochs``.
        steps_per_epoch: optimizer steps in one epoch (:func:`optimizer_steps_per_epoch`); needed with
            ``num_steps``, ignored without it.

    Raises:
        ValueError: both ``num_epochs`` and ``num_steps`` are set; ``num_epochs``, ``num_steps``,
            ``steps_per_epoch`` (with ``num_steps``) or ``default`` is not a positive integer; ``num_steps``
            without ``steps_per_epoch``. The message names the key.
    """
    if num_epochs is not None and num_steps is not None:
        raise ValueError(
            f"`num_epochs` ({num_epochs!r}) and `num_steps` ({num_steps!r}) both set the run length: give one of "
            "them (num_steps trains a fixed number of optimizer steps whatever the data size; num_epochs a fixed "
            "number of passes over the data)."
        )
    if num_epochs is not None:
        return _positive(num_epochs, "num_epochs", "epochs")
    if num_steps is not None:
        if steps_per_epoch is None:
            raise ValueError(
                "`num_steps` needs `steps_per_epoch` (the optimizer steps of one epoch) to give a number of epochs; "
                "this config does not pass it to run_length: set the run length with `num_epochs`."
            )
        epochs = epochs_for_steps(num_steps, steps_per_epoch)
        total = epochs * steps_per_epoch
        logger.info(
            f"num_steps={num_steps}: {epochs} epoch(s) of {steps_per_epoch} optimizer steps, {total} steps in all "
            "(at least num_steps; the last epoch runs to its end)"
        )
        return epochs
    if resume and checkpoint_dir is not None:
        latest = latest_checkpoint(checkpoint_dir, prefix)
        if latest is not None:
            saved = read_run_identity(latest)
            if saved and isinstance(saved.get("num_epochs"), int):
                logger.info(f"resuming: the run length is the saved run's, {saved['num_epochs']} epochs ({latest.name})")
                return int(saved["num_epochs"])
    return _positive(default, "default_num_epochs", "epochs")
