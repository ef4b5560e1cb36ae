"""One round's retraining with the MONAI engines: the training items, ``E`` more epochs, the validation score.

The retraining step of "Integration of Self-Supervised BYOL in Semi-Supervised Medical Image
Recognition" (Feng et al.): after each pseudo-labeling step the classifier trains on the labeled
images plus the pseudo-labeled ones, each with its *predicted* class as label, then is validated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, Dataset
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from torch import nn

__all__ = ["evaluate", "set_training_items", "train_keeping_best_epoch", "train_more_epochs", "training_items"]


def training_items(
    labeled: Sequence[dict], entries: Sequence[Mapping], items_by_id: Mapping[str, dict]
) -> list[dict]:
    """Labeled items with ``"pseudo": False``, then copies of the pseudo-labeled pool items.

    A pseudo-labeled copy has ``"label"`` set to the entry's predicted class (a 0-d ``np.int64``)
    and ``"pseudo": True``; a label the unlabeled item carries is never used for training.
    """
    items = [{**x, "pseudo": False} for x in labeled]
    for entry in entries:
        item = items_by_id[entry["id"]]
        items.append({**item, "label": np.asarray(entry["label"], dtype=np.int64), "pseudo": True})
    return items


def set_training_items(dataset: Dataset, items: list[dict]) -> None:
    """Replace the items of the trainer's dataset (``set_data`` for a ``CacheDataset``, which re-caches)."""
    if isinstance(dataset, CacheDataset):
        dataset.set_data(items)
    else:
        dataset.data = items


def train_more_epochs(trainer: SupervisedTrainer, epochs: int) -> None:
    """Run ``trainer`` for ``epochs`` more epochs over its (changed) data loader.

    ``max_epochs = epoch + epochs``, ``epoch_length = len(trainer.data_loader)`` (recomputed, as the
    training set grows; a fixed ``epoch_length`` is overridden) and ``iteration = epoch *
    epoch_length``, so epochs and iterations keep counting across rounds.

    Raises:
        TypeError: the data loader has no length.
        ValueError: the data loader gives no batch.
    """
    try:
        n = len(trainer.data_loader)
    except TypeError as e:
        raise TypeError("the trainer's data loader must have a length (a map-style dataset).") from e
    if n < 1:
        size = len(getattr(trainer.data_loader, "dataset", ()))
        raise ValueError(
            f"the trainer's data loader gives no batch for {size} training items "
            "(drop_last=True with a batch larger than the set?)."
        )
    state = trainer.state
    start = int(state.epoch or 0)
    state.epoch_length = n
    state.iteration = start * n
    state.max_epochs = start + epochs
    trainer.run()


def evaluate(evaluator: SupervisedEvaluator, epoch: int, metric_name: str) -> float:
    """``evaluator.run(epoch)`` and return its ``metric_name`` as a float.

    Raises:
        KeyError: the evaluator computed no ``metric_name``.
    """
    evaluator.run(max(int(epoch), 1))
    metrics: dict[str, Any] = evaluator.state.metrics
    if metric_name not in metrics:
        raise KeyError(
            f"the evaluator computed no '{metric_name}' metric (it has {sorted(metrics)}); set "
            "`metric_name` or add the metric to the evaluator."
        )
    value = metrics[metric_name]
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def train_keeping_best_epoch(
    trainer: SupervisedTrainer,
    epochs: int,
    evaluator: SupervisedEvaluator,
    metric_name: str,
    network: nn.Module,
    metric_cmp_fn: Callable[[float, float], bool] | None = None,
) -> float:
    """:func:`train_more_epochs`, validating after every epoch; end with the best epoch's weights.

    The network's state after the epoch with the best ``metric_name`` (earliest on ties; better
    by ``metric_cmp_fn``, default greater) is kept in memory and loaded when the epochs are done,
    so the round continues from, and is scored by, its best validated epoch rather than its last.
    The optimizer keeps its last state.

    Returns:
        The best epoch's validation metric.
    """
    better = metric_cmp_fn or (lambda new, best: new > best)
    best: dict[str, Any] = {"value": None, "state": None}

    def validate(engine: SupervisedTrainer) -> None:
        value = evaluate(evaluator, int(engine.state.epoch), metric_name)
        if best["value"] is None or better(value, best["value"]):
            best["value"] = value
            best["state"] = copy.deepcopy(network.state_dict())

    trainer.add_event_handler(Events.EPOCH_COMPLETED, validate)
    try:
        train_more_epochs(trainer, epochs)
    finally:
        trainer.remove_event_handler(validate, Events.EPOCH_COMPLETED)
    if best["state"] is None:
        raise RuntimeError("train_keeping_best_epoch: no epoch was validated (the trainer ran no epoch).")
    network.load_state_dict(best["state"])
    return float(best["value"])
