"""How long each cell of a study trains: in epochs, or in optimizer steps (``--num_steps``), and how long it did.

With ``--num_epochs`` every label budget gets the same number of passes over its labeled set, so a
smaller budget trains fewer optimizer steps (on ISIC, 10 % of the labels gets about a fifth of the
steps of 100 %). ``--num_steps`` gives every cell the same number of optimizer steps instead, as the
cross-teaching paper does (Luo et al. 2022, "Semi-supervised medical image segmentation via cross
teaching between CNN and Transformer": 30,000 iterations at every label fraction); each training
config turns it into whole epochs (:func:`~monai_ssl.handlers.run_length`).

This module holds the study's side of it: the check that a bundle's training configs take the
steps setting (:func:`configs_without_key`), the sentence of the report that says how the length
was fixed (:func:`describe_training_length`), and the handler that counts the steps a cell
actually trained (:class:`TrainingStepCounter`), which the runner adds to a training config's
named handlers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ignite.engine import Engine, Events
from monai.bundle import ConfigParser

__all__ = ["STEP_COUNTER_NAME", "TrainingStepCounter", "configs_without_key", "describe_training_length"]

STEP_COUNTER_NAME = "study_step_counter"  # its name among a training config's handlers


class TrainingStepCounter:
    """Counts the optimizer steps a trainer takes, over all its runs (pseudo-label rounds run it several times).

    A trainer that counts its own real steps (``engine.state.optimizer_steps``: the BYOL and cross-teaching
    trainers, where gradient accumulation or a skipped fp16 step makes steps differ from iterations) is read
    around each iteration; for any other trainer (MONAI's ``SupervisedTrainer``: one optimizer step per
    iteration) an iteration is a step.

    Attributes:
        iterations: iterations completed.
        optimizer_steps: optimizer steps the trainer counted during them (trainers that count them).
    """

    def __init__(self) -> None:
        self.iterations = 0
        self.optimizer_steps = 0
        self.counts_steps = False
        self.attached = False
        self._before: int | None = None

    def attach(self, engine: Engine) -> None:
        """Count the iterations (and optimizer steps) of ``engine``."""
        engine.add_event_handler(Events.ITERATION_STARTED, self._iteration_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        self.attached = True

    def _iteration_started(self, engine: Engine) -> None:
        steps = getattr(engine.state, "optimizer_steps", None)
        self._before = steps if isinstance(steps, int) else None

    def _iteration_completed(self, engine: Engine) -> None:
        self.iterations += 1
        steps = getattr(engine.state, "optimizer_steps", None)
        if isinstance(steps, int) and self._before is not None:
            self.counts_steps = True
            self.optimizer_steps += steps - self._before

    @property
    def steps(self) -> int | None:
        """The optimizer steps trained; ``None`` when the counter was never attached to a trainer."""
        if not self.attached:
            return None
        return self.optimizer_steps if self.counts_steps else self.iterations

    def __repr__(self) -> str:  # MONAI logs the overrides of a run
        return f"{type(self).__name__}()"


def configs_without_key(config_files: Mapping[str, Sequence[str | Path]], key: str) -> list[str]:
    """The names of ``config_files`` (name -> the files merged in order) whose merged config has no ``key``.

    A training config that declares ``num_steps`` passes it to its run length; one that does not would
    take the override as an unused new key and silently train its default epochs.
    """
    missing = []
    for name, files in config_files.items():
        parser = ConfigParser()
        parser.read_config(f=[str(f) for f in files])
        if key not in parser:
            missing.append(f"{name} ({', '.join(Path(f).name for f in files)})")
    return missing


def describe_training_length(
    num_epochs: int | None, num_steps: int | None, pretrain_epochs: int | None = None, pretraining: bool = False
) -> str:
    """One paragraph of the report: how the training length of the cells (and of the pre-training) was set.

    Args:
        num_epochs: the epochs of every cell's training (``None``: not set).
        num_steps: the optimizer steps of every cell's training (``None``: not set).
        pretrain_epochs: the epochs of the pre-training (``None``: the bundle's default).
        pretraining: whether some protocol starts from the study's pre-training.
    """
    if num_steps is not None:
        text = (f"Training length: fixed in optimizer steps, at least {num_steps:,} per cell (`--num_steps "
                f"{num_steps}`, as whole epochs) at every label budget, so the budgets compare at equal training.")
    elif num_epochs is not None:
        text = (f"Training length: fixed in epochs, {num_epochs} per cell (`--num_epochs {num_epochs}`): a smaller "
                "label budget takes fewer optimizer steps per epoch, so it trained fewer steps (`--num_steps` fixes "
                "the steps instead).")
    else:
        text = ("Training length: the bundle's default epochs per cell: a smaller label budget takes fewer optimizer "
                "steps per epoch, so it trained fewer steps (`--num_steps` fixes the steps instead).")
    if pretraining:
        text += (f" Pre-training: {pretrain_epochs} epochs (`--pretrain_epochs`)." if pretrain_epochs is not None
                 else " Pre-training: the bundle's default epochs.")
    return text
