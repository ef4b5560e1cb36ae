"""Checks of what the pseudo-labeling rounds are given, so that a bad input fails at construction.

Used by :class:`~monai_ssl.pseudo_label.PseudoLabelRounds` (the self-training rounds of
"Integration of Self-Supervised BYOL in Semi-Supervised Medical Image Recognition", Feng et al.).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from monai_ssl.networks.distributed import unwrap_parallel

__all__ = ["check_flag", "check_items", "check_trainer"]


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool; ``ValueError`` unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_items(items: Sequence[dict], name: str, keys: Sequence[str]) -> list[dict]:
    """``items`` as a list, each a dict with ``keys`` and a unique ``"id"``.

    Raises:
        TypeError: an item is not a dict.
        ValueError: an item lacks a key, or ids repeat.
    """
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise TypeError(f"`{name}[{i}]` must be a dict, got {type(item).__name__}.")
        missing = [k for k in keys if k not in item]
        if missing:
            raise ValueError(f"`{name}[{i}]` has no {missing} (keys present: {sorted(item)}).")
    ids = [str(x["id"]) for x in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"`{name}` repeats ids; every item needs a unique 'id'.")
    return items


def check_trainer(trainer: Any, train_dataset: Any, network: nn.Module) -> None:
    """Check that ``trainer`` trains ``network`` on ``train_dataset``, whose items the rounds replace.

    Raises:
        TypeError: ``trainer`` is not a SupervisedTrainer-like engine, or ``train_dataset`` has no ``data``.
        ValueError: ``max_epochs`` (epochs per round) < 1, the loader iterates another dataset or
            keeps persistent workers, or ``network`` is not the trained network.
    """
    name = type(trainer).__name__
    for attr in ("data_loader", "state", "run"):
        if not hasattr(trainer, attr):
            raise TypeError(f"`trainer` must be a MONAI SupervisedTrainer; {name} has no `{attr}`.")
    epochs = trainer.state.max_epochs
    if not epochs or epochs < 1:
        raise ValueError(f"the trainer's max_epochs (epochs per round) must be >= 1, got {epochs}.")
    if not hasattr(train_dataset, "data"):
        kind = type(train_dataset).__name__
        raise TypeError(f"`train_dataset` must be a monai.data.Dataset with `.data`, got {kind}.")
    loader = trainer.data_loader
    if getattr(loader, "dataset", train_dataset) is not train_dataset:
        raise ValueError(
            "the trainer's data loader does not iterate `train_dataset`; the rounds replace that dataset's "
            "items, so build the trainer's loader over the same object."
        )
    if getattr(loader, "persistent_workers", False):
        raise ValueError(
            "the trainer's data loader uses persistent_workers=True; its workers would keep the first round's "
            "training set. Use persistent_workers=False."
        )
    trained = getattr(trainer, "network", network)
    trained = getattr(trained, "_orig_mod", trained)  # torch.compile wrapper
    if unwrap_parallel(trained) is not unwrap_parallel(network):
        raise ValueError(
            "`network` is not the network the trainer trains; pass the same module so that the saved and "
            "scored weights are the trained ones."
        )
