"""End-to-end tests of ``PseudoLabelRounds``: each round a fresh run of a tiny fine-tuning config in its own folder."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from ignite.engine import Events
from pseudo_label_helpers import (
    KILL_AT,
    STARTS,
    Killed,
    finished_rounds,
    make_rounds,
    read_csv,
    saved_round,
    same_weights,
    tiny_net,
)

from monai_ssl.pseudo_label import PseudoLabelRounds, round_scalars


def _round_runs(engine: PseudoLabelRounds) -> dict[int, dict]:
    """round -> what its finished run held: its trainer and the items it trained on."""
    runs: dict[int, dict] = {}

    @engine.on(Events.ITERATION_COMPLETED)
    def _keep(e):
        parser = e.state.workflow.parser
        runs[e.state.round] = {
            "trainer": parser.get_parsed_content("train#trainer"),
            "items": parser.get_parsed_content("train#dataset").data,
        }

    return runs


def test_rounds_grow_table_and_shrink_pool(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=2)
    seen = finished_rounds(engine)
    runs = _round_runs(engine)
    state = engine.run()
    assert seen == [(0, 0, 20), (1, 4, 16), (2, 8, 12)]

    rounds = read_csv(tmp_path / "rounds.csv")
    assert list(rounds[0]) == [
        "round", "n_labeled", "n_pseudo", "n_new", "n_changed", "n_dropped", "n_pool", "val_accuracy",
        "pseudo_label_accuracy", "train_seconds", "score_seconds", "val_seconds", "best_round", "best_metric",
    ]  # fmt: skip
    assert [int(r["round"]) for r in rounds] == [0, 1, 2]
    assert [int(r["n_new"]) for r in rounds] == [0, 4, 4]
    assert [int(r["n_pool"]) for r in rounds] == [20, 16, 12]
    assert all(float(r["train_seconds"]) > 0 and float(r["val_seconds"]) > 0 for r in rounds)
    assert float(rounds[0]["score_seconds"]) == 0.0 and float(rounds[1]["score_seconds"]) > 0

    table = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 8 and len({r["id"] for r in table}) == 8
    assert [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4
    assert all(r["true_label"] in ("0", "1") and 0.5 <= float(r["confidence"]) <= 1 for r in table)
    assert all(r["image"] == "" for r in table)  # in-memory images have no path

    # a fresh trainer per round, each counting its own epochs from 0: nothing is carried over in engine state
    trainers = [runs[r]["trainer"] for r in range(3)]
    assert len({id(t) for t in trainers}) == 3
    assert [STARTS[f"round_{r}"]["trainer"] for r in range(3)] == trainers
    assert [STARTS[f"round_{r}"]["epoch"] for r in range(3)] == [0, 0, 0]
    assert [t.state.epoch for t in trainers] == [2, 2, 2]

    items = runs[2]["items"]  # round 2 trained on the labeled items and the 8 pseudo-labels
    assert len(items) == 16 and sum(bool(x["pseudo"]) for x in items) == 8
    pseudo = [x for x in items if x["pseudo"]]
    assert all(x["label"].dtype == np.int64 and x["label"].shape == () for x in pseudo)
    assert {x["id"] for x in pseudo} == {r["id"] for r in table}

    for r in range(3):  # each round its own folder: datalist, model with settings (its checkpoints gone once saved)
        folder = tmp_path / f"round_{r}"
        datalist = json.loads((folder / "datalist.json").read_text())
        assert len(datalist["labeled"]) == 8 and len(datalist["pseudo_labels"]) == 4 * r
        assert not (folder / "checkpoints").exists()
        assert json.loads((folder / "model.settings.json").read_text()) == {"batch_size": 8}
        assert (folder / "selection.json").is_file() == (r >= 1)
        saved = saved_round(tmp_path, r)  # weights_only=True accepts it
        assert set(saved) == {"network", "optimizer", "rounds"}
        assert same_weights(saved["network"], torch.load(folder / "model.pt", weights_only=True))
        assert saved["rounds"]["finished_round"] == r and saved["rounds"]["trainer_epoch"] == 2

    last = saved_round(tmp_path, 2)["rounds"]
    assert len(last["pseudo_labels"]) == 8 and len(last["records"]) == 3 and last["records"] == engine.progress.records
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)  # a plain state dict, as evaluate.json loads
    assert state.best_round == last["best_round"] and state.best_metric == last["best_metric"]
    assert same_weights(best, saved_round(tmp_path, state.best_round)["network"])
    assert json.loads((tmp_path / "best_model.settings.json").read_text()) == {"batch_size": 8}
    scalars = round_scalars(state.output)
    assert scalars["pseudo_label/n_pseudo"] == 8.0 and "pseudo_label/val_accuracy" in scalars


def test_settings_reach_every_round(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=2, settings={"batch_size": 4, "learning_rate": 0.05, "num_epochs": 3})
    runs = _round_runs(engine)
    engine.run()
    for r in range(3):
        trainer = runs[r]["trainer"]
        assert trainer.data_loader.batch_size == 4
        assert trainer.optimizer.param_groups[0]["lr"] == 0.05
        assert trainer.state.max_epochs == 3 and trainer.state.epoch == 3
    assert [int(r["n_pseudo"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 4, 8]


def test_resume_continues_with_next_round(tmp_path):
    make_rounds(tmp_path, num_rounds=1).run()
    first = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(first) == 4
    STARTS.clear()

    engine = make_rounds(tmp_path, num_rounds=3)
    seen = finished_rounds(engine)
    engine.run()
    assert sorted(STARTS) == ["round_2", "round_3"]  # finished rounds are not run again
    assert [r for r, _, _ in seen] == [2, 3]
    assert seen[-1][1:] == (12, 8)
    assert same_weights(STARTS["round_2"]["weights"], saved_round(tmp_path, 1)["network"])
    table = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 12 and len({r["id"] for r in table}) == 12
    assert [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    assert table[:4] == first
    assert [int(r["round"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 1, 2, 3]
    assert (tmp_path / "best_model.pt").is_file()

    STARTS.clear()
    again = make_rounds(tmp_path, num_rounds=3)  # everything is done: nothing runs
    again.run()
    assert STARTS == {} and again.state.best_round is not None


def test_a_round_killed_midway_resumes_from_its_own_checkpoint(tmp_path):
    reference = tmp_path / "uninterrupted"
    make_rounds(reference, num_rounds=2).run()
    out = tmp_path / "killed"
    KILL_AT.append(("round_2", 1))
    with pytest.raises(RuntimeError) as info:  # MONAI wraps what the run raised
        make_rounds(out, num_rounds=2).run()
    assert isinstance(info.value.__cause__, Killed)
    assert [int(r["round"]) for r in read_csv(out / "rounds.csv")] == [0, 1]
    assert (out / "round_2" / "checkpoints" / "checkpoint_epoch=1.pt").is_file()
    assert not (out / "round_2.pt").exists()
    assert not (out / "round_1" / "checkpoints").exists()  # a saved round keeps round_1.pt only
    before = {r: (out / f"round_{r}.pt").stat().st_mtime_ns for r in (0, 1)}
    STARTS.clear()

    make_rounds(out, num_rounds=2, resume=True).run()
    assert sorted(STARTS) == ["round_2"]  # rounds 0 and 1 are not run again
    assert STARTS["round_2"]["epoch"] == 1  # round 2 went on from its own checkpoint of epoch 1
    after = {r: (out / f"round_{r}.pt").stat().st_mtime_ns for r in (0, 1)}
    assert after == before
    assert not (out / "round_2" / "checkpoints").exists()
    assert [int(r["round"]) for r in read_csv(out / "rounds.csv")] == [0, 1, 2]
    assert read_csv(out / "pseudo_labels.csv") == read_csv(reference / "pseudo_labels.csv")
    assert saved_round(out, 2)["rounds"]["trainer_epoch"] == 2


def test_resume_false_starts_over_and_removes_the_earlier_rounds(tmp_path):
    make_rounds(tmp_path, num_rounds=2).run()
    STARTS.clear()
    make_rounds(tmp_path, num_rounds=1, resume=False, num_samples=2).run()
    assert sorted(STARTS) == ["round_0", "round_1"]
    assert sorted(p.name for p in tmp_path.glob("round_*")) == ["round_0", "round_0.pt", "round_1", "round_1.pt"]
    assert [int(r["n_pseudo"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 2]


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
    assert (tmp_path / "best_model.pt").is_file() and not (tmp_path / "round_3").exists()


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
        config_file=engine.config_file,
        labeled=engine.labeled,
        unlabeled=engine.unlabeled,
        network=tiny_net(),
        num_rounds=1,
        output_dir=tmp_path,
        score_transform=None,
    )
    with pytest.raises(FileNotFoundError, match="finetune_config"):
        PseudoLabelRounds(**{**args, "config_file": tmp_path / "missing.json"})
    with pytest.raises(ValueError, match="unique across"):
        PseudoLabelRounds(**{**args, "unlabeled": engine.labeled[:2]})
    with pytest.raises(ValueError, match="'label'"):
        PseudoLabelRounds(**{**args, "labeled": [{"image": 0, "id": "x"}]})
    with pytest.raises(ValueError, match="num_rounds"):
        PseudoLabelRounds(**{**args, "num_rounds": -1})
    with pytest.raises(ValueError, match="threshold"):
        PseudoLabelRounds(**{**args, "threshold": 2.0})
    with pytest.raises(ValueError, match=r"\['ckpt_dir', 'train#datalist'\]"):
        PseudoLabelRounds(**{**args, "settings": {"ckpt_dir": "x", "train#datalist": [], "batch_size": 2}})


def test_another_key_metric_than_metric_name_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="ranks epochs by 'val_accuracy'.*metric_name 'val_auc'"):
        make_rounds(tmp_path, num_rounds=0, metric_name="val_auc").run()
