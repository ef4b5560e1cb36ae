"""The saved progress of the rounds: ``RoundProgress``, the ``round_{r}.pt`` checkpoints and resuming."""

from __future__ import annotations

import logging

import pytest
import torch
from pseudo_label_helpers import KILL_AT, STARTS, finished_rounds, make_rounds, read_csv, saved_round, tiny_net

from monai_ssl.pseudo_label import RoundProgress
from monai_ssl.pseudo_label.round_state import latest_round, load_round, save_round
from monai_ssl.pseudo_label.tables import metric_column

SETTINGS = {"metric_name": "accuracy", "num_samples": 2, "threshold": None, "balance": False}


def test_update_adds_or_replaces_pseudo_labels():
    added = RoundProgress(SETTINGS)
    assert added.update([("a", 0, 0.9), ("b", 1, 0.8)], 1, replace=False) == (added.pseudo_labels, 0, 0)
    new, changed, dropped = added.update([("c", 1, 0.7)], 2, replace=False)
    assert [e["id"] for e in new] == ["c"] and (changed, dropped) == (0, 0)
    assert [(e["id"], e["round"]) for e in added.pseudo_labels] == [("a", 1), ("b", 1), ("c", 2)]

    replaced = RoundProgress(SETTINGS)
    replaced.update([("a", 0, 0.9), ("b", 1, 0.8)], 1, replace=True)
    new, changed, dropped = replaced.update([("c", 1, 0.99), ("a", 1, 0.95), ("d", 0, 0.9)], 2, replace=True)
    assert [e["id"] for e in new] == ["c", "d"] and changed == 1 and dropped == 1  # a changed class, b left
    assert replaced.pseudo_labels[0] == {"id": "a", "label": 1, "confidence": 0.95, "round": 1}
    assert [e["id"] for e in replaced.pseudo_labels] == ["a", "c", "d"]


def test_best_round_follows_the_comparison():
    progress = RoundProgress(SETTINGS)
    for r, value in enumerate([0.5, 0.7, 0.7, 0.6]):
        progress.consider(r, value, lambda a, b: a > b)
    assert (progress.best_round, progress.best_metric) == (1, 0.7)  # a tie keeps the earlier round
    progress.consider(4, 0.1, lambda a, b: a < b)
    assert progress.best_round == 4


def test_state_dict_round_trips_through_a_weights_only_checkpoint(tmp_path):
    progress = RoundProgress(SETTINGS)
    progress.update([("a", 0, 0.9)], 1, replace=False)
    progress.consider(1, 0.75, lambda a, b: a > b)
    progress.finish({"round": 1, "val_accuracy": 0.75, "pseudo_label_accuracy": None}, trainer_epoch=4)
    net = tiny_net()
    path = save_round(tmp_path, 1, {"network": net, "rounds": progress})
    assert path == tmp_path / "round_1.pt" and latest_round(tmp_path) == path

    restored = RoundProgress(SETTINGS)
    load_round(path, {"network": tiny_net(), "rounds": restored})
    assert restored.state_dict() == progress.state_dict()
    assert (restored.finished_round, restored.trainer_epoch, restored.best_round) == (1, 4, 1)
    assert restored.saved_settings == SETTINGS
    incomplete = {k: v for k, v in progress.state_dict().items() if k != "finished_round"}
    with pytest.raises(ValueError, match="finished_round"):
        RoundProgress(SETTINGS).load_state_dict(incomplete)


def test_saving_a_round_removes_later_rounds_of_an_earlier_run(tmp_path):
    for r in range(3):
        save_round(tmp_path, r, {"rounds": RoundProgress(SETTINGS)})
        (tmp_path / f"round_{r}" / "checkpoints").mkdir(parents=True)
    (tmp_path / "round_x").mkdir()
    save_round(tmp_path, 1, {"rounds": RoundProgress(SETTINGS)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round_0", "round_0.pt", "round_1", "round_1.pt", "round_x"]


def test_load_round_rejects_other_files_and_another_metric(tmp_path, caplog):
    torch.save(tiny_net().state_dict(), tmp_path / "round_0.pt")  # weights only: the layout before checkpoints
    with pytest.raises(RuntimeError, match="not a pseudo-labeling round checkpoint"):
        load_round(tmp_path / "round_0.pt", {"rounds": RoundProgress(SETTINGS)})
    save_round(tmp_path, 0, {"rounds": RoundProgress(SETTINGS)})
    with pytest.raises(ValueError, match="ranks rounds by 'accuracy'"):
        load_round(tmp_path / "round_0.pt", {"rounds": RoundProgress({**SETTINGS, "metric_name": "auc"})})
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        load_round(tmp_path / "round_0.pt", {"rounds": RoundProgress({**SETTINGS, "num_samples": 5})})
    assert any("num_samples: 2 -> 5" in r.getMessage() for r in caplog.records)


def test_metric_column_is_prefixed_once(tmp_path):
    assert metric_column("accuracy") == metric_column("val_accuracy") == "val_accuracy"
    engine = make_rounds(tmp_path, num_rounds=0, metric_name="val_accuracy")
    state = engine.run()
    header = list(read_csv(tmp_path / "rounds.csv")[0])
    assert "val_accuracy" in header and "val_val_accuracy" not in header
    assert "val_accuracy" in state.metrics and "val_val_accuracy" not in state.metrics


def test_a_run_killed_in_a_round_goes_on_with_that_round_and_the_settings_given_now(tmp_path, caplog):
    KILL_AT.append(("round_2", 1))
    with pytest.raises(RuntimeError):
        make_rounds(tmp_path, num_rounds=3).run()
    assert latest_round(tmp_path) == tmp_path / "round_1.pt"
    first = read_csv(tmp_path / "pseudo_labels.csv")
    STARTS.clear()

    again = make_rounds(tmp_path, num_rounds=3, threshold=0.0)
    seen = finished_rounds(again)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        again.run()
    assert any("threshold: None -> 0.0" in r.getMessage() for r in caplog.records)
    assert seen == [(2, 8, 12), (3, 12, 8)]
    assert sorted(STARTS) == ["round_2", "round_3"] and STARTS["round_2"]["epoch"] == 1
    table = read_csv(tmp_path / "pseudo_labels.csv")
    assert table[:4] == first and [r["round"] for r in table] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    assert [int(r["round"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 1, 2, 3]


def test_starting_over_replaces_the_rounds_of_the_earlier_run(tmp_path):
    make_rounds(tmp_path, num_rounds=2).run()
    make_rounds(tmp_path, num_rounds=0, resume=False).run()
    assert latest_round(tmp_path) == tmp_path / "round_0.pt" and not (tmp_path / "round_2.pt").exists()
    assert saved_round(tmp_path, 0)["rounds"]["pseudo_labels"] == []
    seen = finished_rounds(engine := make_rounds(tmp_path, num_rounds=1))
    engine.run()
    assert [r for r, _, _ in seen] == [1]
