"""Tiny, deterministic pseudo-labeling set-ups: 8x8 in-memory images and real MONAI engines."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Events
from ignite.metrics import Accuracy
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import from_engine
from torch import nn

from monai_ssl.pseudo_label import PseudoLabelRounds


def make_items(n: int, prefix: str, seed: int, flip: bool = False) -> list[dict]:
    """Two classes of 8x8 images told apart by mean intensity (class 0 dark, class 1 bright).

    With ``flip`` every item carries the *wrong* label (``1 - y``), so a label an unlabeled item
    carries can be told apart from what the network predicts for it.
    """
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        y = i % 2
        image = (rng.normal(0.0, 0.5, (1, 8, 8)) + (0.5 if y else -0.5)).astype(np.float32)
        items.append({"image": image, "id": f"{prefix}{i:03d}", "label": np.asarray(1 - y if flip else y, np.int64)})
    return items


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)]
    return nn.Sequential(*layers)


def make_rounds(
    out: Path,
    num_rounds: int,
    n_unlabeled: int = 20,
    unlabeled: list[dict] | None = None,
    metric_key: str = "accuracy",
    **kwargs,
) -> PseudoLabelRounds:
    """``PseudoLabelRounds`` over 8 labeled, ``n_unlabeled`` unlabeled and 8 validation images; 2 epochs a round.

    The evaluator names its accuracy ``metric_key``, and so does the engine's ``metric_name``.
    """
    torch.manual_seed(0)  # the trainer's shuffling
    labeled = make_items(8, "l", 0)
    unlabeled = make_items(n_unlabeled, "u", 1) if unlabeled is None else unlabeled
    net = tiny_net()
    train_ds = Dataset(data=labeled)
    trainer = SupervisedTrainer(
        device="cpu",
        max_epochs=2,
        train_data_loader=DataLoader(train_ds, batch_size=8, shuffle=True),
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-2),
        loss_function=nn.CrossEntropyLoss(),
    )
    evaluator = SupervisedEvaluator(
        device="cpu",
        val_data_loader=DataLoader(Dataset(make_items(8, "v", 2)), batch_size=8),
        network=net,
        key_val_metric={metric_key: Accuracy(output_transform=from_engine(["pred", "label"]))},
        decollate=False,
    )
    kwargs.setdefault("num_samples", 4)
    kwargs.setdefault("metric_name", metric_key)
    return PseudoLabelRounds(trainer, evaluator, train_ds, labeled, unlabeled, net, num_rounds, out, **kwargs)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def finished_rounds(engine: PseudoLabelRounds) -> list[tuple[int, int, int]]:
    """``(round, n_pseudo, n_pool)`` of every finished round, filled in as the engine runs."""
    seen: list[tuple[int, int, int]] = []
    engine.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: seen.append((e.state.round, int(e.state.metrics["n_pseudo"]), int(e.state.metrics["n_pool"]))),
    )
    return seen


def saved_round(out: Path, r: int) -> dict:
    """The checkpoint of round ``r``, read as a resume reads it."""
    return torch.load(out / f"round_{r}.pt", weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
