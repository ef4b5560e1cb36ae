"""Tiny, deterministic pseudo-labeling set-ups: 8x8 in-memory images, a tiny fine-tuning config, real MONAI engines.

``configs/tiny_finetune.json`` is a fine-tuning config with the ids the rounds rely on (those of
``finetune.json``) and a 5-layer network on 8 labeled, ``n_unlabeled`` unlabeled and 8 validation
images; each round runs it in its own folder. Its test-only handlers record, per round folder, what
the run started from (:class:`RecordStart`) and each validation (:class:`RecordValidation`), and
can raise in a chosen round (:class:`KillSwitch`).
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from torch import nn

from monai_ssl.pseudo_label import PseudoLabelRounds

TINY_CONFIG = Path(__file__).resolve().parent / "configs" / "tiny_finetune.json"

# round folder name -> what the test handlers saw there
STARTS: dict[str, dict[str, Any]] = {}
VALIDATIONS: dict[str, list[tuple[float, dict]]] = {}
# (round folder name, epoch) after which KillSwitch raises, or None
KILL_AT: list[tuple[str, int]] = []


class Killed(RuntimeError):
    """The simulated kill of a run."""


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


def _weights(network: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


class RecordStart:
    """Records the network and optimizer state when the first iteration of the run starts (after every loader)."""

    def __init__(self, network: nn.Module, optimizer: torch.optim.Optimizer, key: str) -> None:
        self.network, self.optimizer, self.key = network, optimizer, Path(key).name

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_STARTED, self)

    def started(self, engine: Engine) -> None:
        STARTS[self.key] = {"trainer": engine, "epoch": engine.state.epoch}

    def __call__(self, engine: Engine) -> None:
        if "weights" in STARTS.get(self.key, {}):
            return
        STARTS[self.key].update(weights=_weights(self.network), optimizer=copy.deepcopy(self.optimizer.state_dict()))


class RecordValidation:
    """Records each validation of the run: its ``val_accuracy`` and the weights it validated."""

    def __init__(self, network: nn.Module, key: str) -> None:
        self.network, self.key = network, Path(key).name

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        value = float(engine.state.metrics["val_accuracy"])
        VALIDATIONS.setdefault(self.key, []).append((value, _weights(self.network)))


class KillSwitch:
    """Raises :class:`Killed` after the epoch listed in ``KILL_AT`` for this round folder (after its checkpoint)."""

    def __init__(self, key: str) -> None:
        self.key = Path(key).name

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if (self.key, engine.state.epoch) in KILL_AT:
            KILL_AT.remove((self.key, engine.state.epoch))
            raise Killed(f"killed in {self.key} after epoch {engine.state.epoch}")


def make_rounds(
    out: Path,
    num_rounds: int,
    n_unlabeled: int = 20,
    flip: bool = False,
    settings: dict | None = None,
    **kwargs: Any,
) -> PseudoLabelRounds:
    """``PseudoLabelRounds`` over the tiny config: 8 labeled, ``n_unlabeled`` unlabeled images; 2 epochs a round."""
    settings = {"n_unlabeled": n_unlabeled, "flip_unlabeled": flip, **(settings or {})}
    kwargs.setdefault("num_samples", 4)
    return PseudoLabelRounds(
        config_file=TINY_CONFIG,
        labeled=make_items(8, "l", 0),
        unlabeled=make_items(n_unlabeled, "u", 1, flip=flip),
        network=tiny_net(),
        num_rounds=num_rounds,
        output_dir=out,
        score_transform=None,
        settings=settings,
        **kwargs,
    )


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


def adam_steps(optimizer_state: dict) -> int:
    """The step count Adam kept for the first parameter."""
    return int(optimizer_state["state"][0]["step"])
