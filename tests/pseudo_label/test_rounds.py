"""End-to-end tests of ``PseudoLabelRounds`` on tiny synthetic 8x8 images with real MONAI engines."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import Dataset
from pseudo_label_helpers import finished_rounds, make_rounds, read_csv, saved_round, same_weights, tiny_net

from monai_ssl.pseudo_label import PseudoLabelRounds, round_scalars


def test_rounds_grow_table_and_shrink_pool(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=2)
    seen = finished_rounds(engine)
    state = engine.run()
    assert seen == [(0, 0, 20), (1, 4, 16), (2, 8, 12)]
    assert engine.trainer.state.epoch == 6  # 2 epochs per round, counted across rounds

    rounds = read_csv(tmp_path / "rounds.csv")
    assert [int(r["round"]) for r in rounds] == [0, 1, 2]
    assert [int(r["n_new"]) for r in rounds] == [0, 4, 4]
    assert [int(r["n_pool"]) for r in rounds] == [20, 16, 12]
    assert {"val_accuracy", "train_seconds", "score_seconds", "best_round", "best_metric"} <= set(rounds[0])

    table = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 8 and len({r["id"] for r in table}) == 8
    assert [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4
    assert all(r["true_label"] in ("0", "1") and 0.5 <= float(r["confidence"]) <= 1 for r in table)
    assert all(r["image"] == "" for r in table)  # in-memory images have no path

    items = engine.train_dataset.data
    assert len(items) == 16 and sum(bool(x["pseudo"]) for x in items) == 8
    pseudo = [x for x in items if x["pseudo"]]
    assert all(x["label"].dtype == np.int64 and x["label"].shape == () for x in pseudo)
    assert {x["id"] for x in pseudo} == {r["id"] for r in table}

    last = saved_round(tmp_path, 2)  # weights_only=True accepts it
    assert set(last) == {"network", "optimizer", "rounds"}
    saved = last["rounds"]
    assert saved["finished_round"] == 2 and saved["trainer_epoch"] == 6 and len(saved["pseudo_labels"]) == 8
    assert saved["records"] == engine.progress.records and len(saved["records"]) == 3
    assert [saved_round(tmp_path, r)["rounds"]["finished_round"] for r in range(3)] == [0, 1, 2]
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "optimizer_last.pt").exists()
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)  # a plain state dict, as evaluate.json loads
    assert state.best_round == saved["best_round"] and state.best_metric == saved["best_metric"]
    reference = saved_round(tmp_path, state.best_round)["network"]
    assert same_weights(engine.network.state_dict(), best) and same_weights(best, reference)
    scalars = round_scalars(state.output)
    assert scalars["pseudo_label/n_pseudo"] == 8.0 and "pseudo_label/val_accuracy" in scalars


def test_resume_continues_with_next_round(tmp_path):
    make_rounds(tmp_path, num_rounds=1).run()
    first = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(first) == 4

    engine = make_rounds(tmp_path, num_rounds=3)
    seen = finished_rounds(engine)
    loaded: list[bool] = []

    @engine.on(Events.STARTED)
    def _weights_restored(e):
        loaded.append(same_weights(e.network.state_dict(), saved_round(tmp_path, 1)["network"]))

    engine.run()
    assert loaded == [True]
    assert [r for r, _, _ in seen] == [2, 3]
    assert seen[-1][1:] == (12, 8)
    assert engine.trainer.state.epoch == 8  # round 2 and 3 continue from epoch 4
    table = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 12 and len({r["id"] for r in table}) == 12
    assert [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    assert table[:4] == first
    assert [int(r["round"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 1, 2, 3]
    assert (tmp_path / "best_model.pt").is_file()

    again = make_rounds(tmp_path, num_rounds=3)  # everything is done: nothing to train
    again.run()
    assert again.trainer.state.epoch == 8 and again.state.best_round is not None


def test_empty_pool_stops_early(tmp_path, caplog):
    engine = make_rounds(tmp_path, num_rounds=5, n_unlabeled=6)
    seen = finished_rounds(engine)
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        state = engine.run()
    assert seen == [(0, 0, 6), (1, 4, 2), (2, 6, 0)]
    assert state.stop_reason == "the unlabeled pool is empty"
    messages = [r.getMessage() for r in caplog.records if r.name == "monai_ssl"]
    assert messages.count("asked for 4 pseudo-labels, only 2 unlabeled images; taking 2") == 1
    assert any("stops before round 3" in m for m in messages)
    assert len(read_csv(tmp_path / "rounds.csv")) == 3 and len(read_csv(tmp_path / "pseudo_labels.csv")) == 6
    assert (tmp_path / "best_model.pt").is_file()


def test_threshold_nobody_passes_stops_after_round_0(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=2, threshold=1.0)
    seen = finished_rounds(engine)
    state = engine.run()
    assert [r for r, _, _ in seen] == [0]
    assert "no pseudo-label selected" in state.stop_reason
    assert state.best_round == 0 and (tmp_path / "best_model.pt").is_file()
    assert read_csv(tmp_path / "pseudo_labels.csv") == []


def test_construction_errors(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=1)
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
        PseudoLabelRounds(**{**args, "network": tiny_net()})
    with pytest.raises(ValueError, match="num_rounds"):
        PseudoLabelRounds(**{**args, "num_rounds": -1})
    with pytest.raises(ValueError, match="threshold"):
        PseudoLabelRounds(**{**args, "threshold": 2.0})
