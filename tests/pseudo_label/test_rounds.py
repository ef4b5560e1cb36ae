"""End-to-end tests of ``PseudoLabelRounds`` on tiny synthetic 8x8 images with real MONAI engines."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Events
from ignite.metrics import Accuracy
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import from_engine
from torch import nn

from monai_ssl.pseudo_label import PseudoLabelRounds, round_scalars


def _items(n: int, prefix: str, seed: int) -> list[dict]:
    """Two classes of 8x8 images told apart by mean intensity (class 0 dark, class 1 bright)."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        y = i % 2
        image = (rng.normal(0.0, 0.5, (1, 8, 8)) + (0.5 if y else -0.5)).astype(np.float32)
        items.append({"image": image, "id": f"{prefix}{i:03d}", "label": np.asarray(y, dtype=np.int64)})
    return items


def _net() -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)]
    return nn.Sequential(*layers)


def _rounds(out: Path, num_rounds: int, n_unlabeled: int = 20, **kwargs) -> PseudoLabelRounds:
    labeled = _items(8, "l", 0)
    unlabeled = _items(n_unlabeled, "u", 1)
    net = _net()
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
        val_data_loader=DataLoader(Dataset(_items(8, "v", 2)), batch_size=8),
        network=net,
        key_val_metric={"accuracy": Accuracy(output_transform=from_engine(["pred", "label"]))},
        decollate=False,
    )
    kwargs.setdefault("num_samples", 4)
    return PseudoLabelRounds(trainer, evaluator, train_ds, labeled, unlabeled, net, num_rounds, out, **kwargs)


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _finished_rounds(engine: PseudoLabelRounds) -> list[tuple[int, int, int]]:
    seen: list[tuple[int, int, int]] = []
    engine.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: seen.append((e.state.round, int(e.state.metrics["n_pseudo"]), int(e.state.metrics["n_pool"]))),
    )
    return seen


def test_rounds_grow_table_and_shrink_pool(tmp_path):
    engine = _rounds(tmp_path, num_rounds=2)
    seen = _finished_rounds(engine)
    state = engine.run()
    assert seen == [(0, 0, 20), (1, 4, 16), (2, 8, 12)]
    assert engine.trainer.state.epoch == 6  # 2 epochs per round, counted across rounds

    rounds = _csv(tmp_path / "rounds.csv")
    assert [int(r["round"]) for r in rounds] == [0, 1, 2]
    assert [int(r["n_new"]) for r in rounds] == [0, 4, 4]
    assert [int(r["n_pool"]) for r in rounds] == [20, 16, 12]
    assert {"val_accuracy", "train_seconds", "score_seconds", "best_round", "best_metric"} <= set(rounds[0])

    table = _csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 8 and len({r["id"] for r in table}) == 8
    assert [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4
    assert all(r["true_label"] in ("0", "1") and 0.5 <= float(r["confidence"]) <= 1 for r in table)
    assert all(r["image"] == "" for r in table)  # in-memory images have no path

    items = engine.train_dataset.data
    assert len(items) == 16 and sum(bool(x["pseudo"]) for x in items) == 8
    pseudo = [x for x in items if x["pseudo"]]
    assert all(x["label"].dtype == np.int64 and x["label"].shape == () for x in pseudo)
    assert {x["id"] for x in pseudo} == {r["id"] for r in table}

    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["finished_round"] == 2 and len(saved["pseudo_labels"]) == 8
    for r in range(3):
        assert (tmp_path / f"round_{r}.pt").is_file()
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert state.best_round == saved["best_round"] and state.best_metric == saved["best_metric"]
    reference = torch.load(tmp_path / f"round_{state.best_round}.pt", weights_only=True)
    for k, v in engine.network.state_dict().items():
        assert torch.equal(v, best[k]) and torch.equal(v, reference[k])
    scalars = round_scalars(state.output)
    assert scalars["pseudo_label/n_pseudo"] == 8.0 and "pseudo_label/val_accuracy" in scalars


def test_resume_continues_with_next_round(tmp_path):
    _rounds(tmp_path, num_rounds=1).run()
    first = _csv(tmp_path / "pseudo_labels.csv")
    assert len(first) == 4

    engine = _rounds(tmp_path, num_rounds=3)
    seen = _finished_rounds(engine)
    loaded: list[bool] = []

    @engine.on(Events.STARTED)
    def _weights_restored(e):
        saved = torch.load(tmp_path / "round_1.pt", weights_only=True)
        loaded.append(all(torch.equal(v, saved[k]) for k, v in e.network.state_dict().items()))

    engine.run()
    assert loaded == [True]
    assert [r for r, _, _ in seen] == [2, 3]
    assert seen[-1][1:] == (12, 8)
    assert engine.trainer.state.epoch == 8  # round 2 and 3 continue from epoch 4
    table = _csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 12 and len({r["id"] for r in table}) == 12
    assert [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    assert table[:4] == first
    assert [int(r["round"]) for r in _csv(tmp_path / "rounds.csv")] == [0, 1, 2, 3]
    assert (tmp_path / "best_model.pt").is_file()

    again = _rounds(tmp_path, num_rounds=3)  # everything is done: nothing to train
    again.run()
    assert again.trainer.state.epoch == 8 and again.state.best_round is not None


def test_empty_pool_stops_early(tmp_path, caplog):
    engine = _rounds(tmp_path, num_rounds=5, n_unlabeled=6)
    seen = _finished_rounds(engine)
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        state = engine.run()
    assert seen == [(0, 0, 6), (1, 4, 2), (2, 6, 0)]
    assert state.stop_reason == "the unlabeled pool is empty"
    messages = [r.getMessage() for r in caplog.records if r.name == "monai_ssl"]
    assert messages.count("asked for 4 pseudo-labels, only 2 unlabeled images; taking 2") == 1
    assert any("stops before round 3" in m for m in messages)
    assert len(_csv(tmp_path / "rounds.csv")) == 3 and len(_csv(tmp_path / "pseudo_labels.csv")) == 6
    assert (tmp_path / "best_model.pt").is_file()


def test_threshold_nobody_passes_stops_after_round_0(tmp_path):
    engine = _rounds(tmp_path, num_rounds=2, threshold=1.0)
    seen = _finished_rounds(engine)
    state = engine.run()
    assert [r for r, _, _ in seen] == [0]
    assert "no pseudo-label selected" in state.stop_reason
    assert state.best_round == 0 and (tmp_path / "best_model.pt").is_file()
    assert _csv(tmp_path / "pseudo_labels.csv") == []


def test_construction_errors(tmp_path):
    engine = _rounds(tmp_path, num_rounds=1)
    args = dict(
        trainer=engine.trainer,
        evaluator=engine.evaluator,
        train_dataset=engine.train_dataset,
        labeled=engine.labeled,
        unlabeled=engine.unlabeled,
        network=engine.network,
        num_rounds=1,
        output_dir=tmp_path,
    )
    with pytest.raises(ValueError, match="does not iterate"):
        PseudoLabelRounds(**{**args, "train_dataset": Dataset(data=engine.labeled)})
    with pytest.raises(ValueError, match="unique across"):
        PseudoLabelRounds(**{**args, "unlabeled": engine.labeled[:2]})
    with pytest.raises(ValueError, match="'label'"):
        PseudoLabelRounds(**{**args, "labeled": [{"image": 0, "id": "x"}]})
    with pytest.raises(ValueError, match="not the network the trainer trains"):
        PseudoLabelRounds(**{**args, "network": _net()})
    with pytest.raises(ValueError, match="num_rounds"):
        PseudoLabelRounds(**{**args, "num_rounds": -1})
    with pytest.raises(ValueError, match="threshold"):
        PseudoLabelRounds(**{**args, "threshold": 2.0})
