"""One pseudo-labeling round as a plain run of the fine-tuning config, in its own folder.

Round ``r`` of the self-training of "Integration of Self-Supervised BYOL in Semi-Supervised Medical
Image Recognition" (Feng et al.) is a fresh run of the bundle's fine-tuning workflow
(``finetune.json``) in ``<rounds_dir>/round_<r>/``. :func:`round_overrides` gives that run's
overrides; everything else comes from the fine-tuning config and the user's settings. The run reads
its training items from the folder's ``datalist.json``
(:func:`~monai_ssl.pseudo_label.round_datalist.round_training_items`), starts from the weights and
optimizer state of an earlier round (a MONAI ``CheckpointLoader`` on the trainer) and validates with
its own evaluator; nothing of it is changed from outside (:func:`run_round`).

Folder layout (:class:`RoundFolder`): ``datalist.json`` (the training items: labeled ids and
pseudo-labels), ``selection.json`` (the round's choice of pseudo-labels, ``r >= 1``),
``checkpoints/`` (the run's ``checkpoint_epoch=N.pt``, removed once ``round_<r>.pt`` is saved), ``model.pt`` with ``model.settings.json``
(the round's model: its validated epoch, see :func:`round_overrides`), ``runs/`` (TensorBoard).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigWorkflow

from monai_ssl.handlers import latest_checkpoint
from monai_ssl.networks.model_settings import publish_model, settings_file
from monai_ssl.utils import atomic_torch_save
from monai_ssl.utils.bundle_workflow import run_config_workflow

from .round_datalist import read_round_datalist, round_datalist, write_round_datalist, write_selection
from .round_state import round_path

__all__ = [
    "ROUND_KEYS",
    "RoundFolder",
    "RoundRun",
    "prepare_round",
    "publish_best_round",
    "round_overrides",
    "run_round",
]

logger = logging.getLogger("monai_ssl")

# the config ids a round's run gets from the rounds; the user's settings may not set them
ROUND_KEYS = (
    "run_name",
    "ckpt_dir",
    "checkpoint_dir",
    "model_file",
    "deploy_model_file",
    "output_dir",
    "resume",
    "trainer_resume",
    "existing_checkpoints",
    "validate_every_epoch",
    "round_datalist",
    "round_initial_state",
    "train#datalist",
    "train#handlers#validation#interval",
    "train#handlers#initial_state",
)

# the training items of a round: its datalist file, resolved against the run's own labeled and unlabeled items
TRAIN_DATALIST = "$monai_ssl.pseudo_label.round_training_items(@round_datalist, @labeled, @unlabeled)"
# round r >= 1 starts from an earlier round's weights and optimizer state (MONAI's CheckpointLoader, weights_only)
INITIAL_STATE = {
    "_target_": "CheckpointLoader",
    "load_path": "@round_initial_state",
    "load_dict": {"network": "@network", "optimizer": "@optimizer"},
    "map_location": "@device",
}


@dataclass(frozen=True)
class RoundFolder:
    """The files of round ``r`` under ``<rounds_dir>/round_<r>/``."""

    root: Path

    @classmethod
    def of(cls, rounds_dir: str | os.PathLike, r: int) -> RoundFolder:
        """The folder of round ``r`` in ``rounds_dir``."""
        return cls(Path(rounds_dir) / f"round_{int(r)}")

    @property
    def datalist(self) -> Path:
        """The round's training items (written last when the round is prepared)."""
        return self.root / "datalist.json"

    @property
    def selection(self) -> Path:
        """The pseudo-labels chosen for the round (rounds ``r >= 1``)."""
        return self.root / "selection.json"

    @property
    def checkpoints(self) -> Path:
        """The run's periodic checkpoints."""
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        """The round's model (a state dict) and, beside it, its ``model.settings.json``."""
        return self.root / "model.pt"

    @property
    def runs(self) -> Path:
        """The run's TensorBoard folder."""
        return self.root / "runs"

    def is_prepared(self) -> bool:
        """Whether the round's datalist was written (its run may have started)."""
        return self.datalist.is_file()

    def has_checkpoint(self) -> bool:
        """Whether the run saved a checkpoint to resume from."""
        return latest_checkpoint(self.checkpoints) is not None

    def drop_checkpoints(self) -> None:
        """Remove the run's periodic checkpoints once the round is saved.

        ``round_<r>.pt`` holds the round's weights, optimizer and progress (what a later round starts from
        and what a resume reads), so the run's own checkpoints, which hold the same weights and
        optimizer, are of no further use; keeping them would double the disk a round takes.
        """
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    def clear(self) -> None:
        """Remove the folder of an earlier run of this round (the rounds own ``<rounds_dir>``)."""
        if self.root.exists():
            logger.info(f"removing {self.root}, left by an earlier run of this round.")
            shutil.rmtree(self.root)


def prepare_round(
    folder: RoundFolder,
    labeled_ids: Sequence[str],
    pseudo_labels: Sequence[Mapping],
    chosen: Sequence[tuple[str, int, float]],
    score_seconds: float,
    resumed: bool,
) -> None:
    """Write a round's choice and ``datalist.json`` into its new folder, or check those of a round being resumed.

    Args:
        folder: the round's folder; cleared first unless ``resumed``.
        labeled_ids: the labeled ids.
        pseudo_labels: the pseudo-labels the round trains on (entries with ``id`` and ``label``).
        chosen: the round's selection (written to ``selection.json`` unless empty, i.e. round 0).
        score_seconds: the time its scoring took.
        resumed: the folder was prepared by the run being resumed.

    Raises:
        ValueError: a resumed folder's datalist does not follow from the rounds before it.
    """
    if resumed:
        if read_round_datalist(folder.datalist) != round_datalist(labeled_ids, pseudo_labels):
            raise ValueError(
                f"{folder.datalist} does not follow from the rounds before it (another run's?); start over with "
                "resume=False."
            )
        return
    folder.clear()
    folder.root.mkdir(parents=True)
    if chosen:
        write_selection(folder.selection, chosen, score_seconds)
    write_round_datalist(folder.datalist, labeled_ids, pseudo_labels)


def round_overrides(
    folder: RoundFolder,
    r: int,
    resume: bool,
    best_epoch_per_round: bool,
    initial_state: str | os.PathLike | None,
) -> dict[str, Any]:
    """The overrides that make the fine-tuning config round ``r``'s run in ``folder``.

    - files: ``ckpt_dir`` is the folder; ``checkpoint_dir``, ``output_dir`` and the model
      (``model_file`` and ``deploy_model_file`` both ``model.pt``, so the run's publishing step leaves
      one file) are inside it; ``run_name`` is ``round_<r>``;
    - data: ``train#datalist`` reads ``round_datalist`` (the folder's ``datalist.json``);
    - validation: every epoch with ``best_epoch_per_round`` (the model is the best validated epoch),
      else once, after the last epoch (``interval = max_epochs``: the model is the last epoch, as in the
      paper); the evaluator's best-model saver writes ``model.pt`` and its settings file;
    - start: ``initial_state`` (an earlier round's ``round_<k>.pt``) is loaded into the network and the
      optimizer when the trainer starts; ``None`` for round 0 (the pre-trained encoder) and for a run
      that resumes from its own checkpoint;
    - resume: ``resume`` continues the run from the last checkpoint in ``checkpoints/``
      (:class:`~monai_ssl.handlers.ResumeFromCheckpoint`); a new run replaces what the folder holds.
    """
    overrides: dict[str, Any] = {
        "run_name": f"round_{int(r)}",
        "ckpt_dir": str(folder.root),
        "checkpoint_dir": str(folder.checkpoints),
        "model_file": str(folder.model),
        "deploy_model_file": str(folder.model),
        "output_dir": str(folder.runs),
        "resume": bool(resume),
        "trainer_resume": bool(resume),
        "existing_checkpoints": "replace",
        "validate_every_epoch": True,
        "round_datalist": str(folder.datalist),
        "train#datalist": TRAIN_DATALIST,
        "train#handlers#validation#interval": 1 if best_epoch_per_round else "@max_epochs",
    }
    if initial_state is not None:
        overrides["round_initial_state"] = str(initial_state)
        overrides["train#handlers#initial_state"] = dict(INITIAL_STATE, load_dict=dict(INITIAL_STATE["load_dict"]))
    return overrides


@dataclass(frozen=True)
class RoundRun:
    """What a finished round's run gives the rounds.

    Attributes:
        workflow: the finished ``monai.bundle.ConfigWorkflow``.
        metric: its evaluator's best key metric (the validated epoch the round keeps).
        better: the evaluator's ``metric_cmp_fn(new, best)``.
        model: the round's model (state dict, on the CPU).
        optimizer: its trainer's last optimizer state.
        epoch: the epoch its trainer ended at.
        seconds: wall time of the run.
        val_seconds: time of its last validation (0.0 when it validated after every epoch).
    """

    workflow: ConfigWorkflow
    metric: float
    better: Callable[[float, float], bool]
    model: dict
    optimizer: dict
    epoch: int
    seconds: float
    val_seconds: float


def run_round(
    config_file: str | os.PathLike,
    settings: Mapping[str, Any],
    folder: RoundFolder,
    r: int,
    resume: bool,
    best_epoch_per_round: bool,
    initial_state: str | os.PathLike | None,
    metric_name: str,
) -> RoundRun:
    """Run ``config_file`` with ``settings`` and :func:`round_overrides` as round ``r``; read what it made.

    Raises:
        ValueError: the run's evaluator ranks epochs by another key metric than ``metric_name``.
        RuntimeError: the run validated no epoch with a usable metric.
    """
    overrides = {**settings, **round_overrides(folder, r, resume, best_epoch_per_round, initial_state)}
    start = time.perf_counter()
    workflow = run_config_workflow(config_file, overrides)
    seconds = time.perf_counter() - start
    trainer = workflow.parser.get_parsed_content("train#trainer")
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    state = evaluator.state
    if state.key_metric_name != metric_name:
        raise ValueError(
            f"round {r}'s evaluator ranks epochs by '{state.key_metric_name}', but the rounds are compared by "
            f"metric_name '{metric_name}'; make them the same."
        )
    if state.best_metric_epoch is None or state.best_metric_epoch < 0:
        raise RuntimeError(f"round {r}'s run validated no epoch with a usable {metric_name}.")
    return RoundRun(
        workflow=workflow,
        metric=float(state.best_metric),
        better=getattr(evaluator, "metric_cmp_fn", None) or (lambda new, best: new > best),
        model=torch.load(folder.model, map_location="cpu", weights_only=True),
        optimizer=trainer.optimizer.state_dict(),
        epoch=int(trainer.state.epoch),
        seconds=seconds,
        val_seconds=0.0 if best_epoch_per_round else float(state.times.get("COMPLETED") or 0.0),
    )


def publish_best_round(rounds_dir: str | os.PathLike, best: int, name: str) -> Path:
    """Copy round ``best``'s ``model.pt`` and its settings to ``rounds_dir/name`` (``publish_model``).

    Rounds saved before rounds had folders give the weights of their ``round_{best}.pt`` alone (and a
    settings file left beside ``name`` by an earlier run is removed).

    Returns:
        The published file.
    """
    target = Path(rounds_dir) / name
    model = RoundFolder.of(rounds_dir, best).model
    if model.is_file():
        publish_model(model, target)
        return target
    saved = round_path(rounds_dir, best)
    logger.warning(f"{model} is missing: {target} is taken from {saved}, without settings.")
    atomic_torch_save(torch.load(saved, map_location="cpu", weights_only=True)["network"], target)
    settings_file(target).unlink(missing_ok=True)
    return target
