"""The rules of the self-training rounds (Feng et al.), pinned on tiny deterministic runs.

- pseudo-labeled images are trained on their *predicted* class, never on a label they carry;
- the classifier carries over from round to round (or restarts from round 0 when asked);
- the pool shrinks: pseudo-labeled images are not scored again (unless ``rescore_pseudo_labels``);
- a round keeps its last epoch (the paper) or, with ``best_epoch_per_round``, its best validated one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Events
from pseudo_label_helpers import STARTS, VALIDATIONS, adam_steps, make_rounds, read_csv, saved_round, same_weights

import monai_ssl.pseudo_label.scoring as scoring_module


def _same_optimizer_state(a: dict, b: dict) -> bool:
    """Equal per-parameter optimizer states (Adam moments and step counts)."""
    a, b = a["state"], b["state"]
    if a.keys() != b.keys():
        return False
    return all(a[p].keys() == b[p].keys() and all(torch.equal(a[p][k], b[p][k]) for k in a[p]) for p in a)


def _record_scored_ids(monkeypatch) -> list[list[str]]:
    """The ids ``score_pool`` returns, one list per call (i.e. per round r >= 1)."""
    scored: list[list[str]] = []
    original = scoring_module.score_pool

    def spy(*args, **kwargs):
        probabilities, ids = original(*args, **kwargs)
        scored.append(list(ids))
        return probabilities, ids

    monkeypatch.setattr(scoring_module, "score_pool", spy)
    return scored


def test_pseudo_labeled_items_train_on_the_predicted_class(tmp_path):
    # every unlabeled image carries the wrong label: training on it would show
    engine = make_rounds(tmp_path, num_rounds=2, flip=True)
    trained: dict[str, int] = {}

    @engine.on(Events.ITERATION_COMPLETED)
    def _labels_trained_on(e):
        for item in e.state.workflow.parser.get_parsed_content("train#dataset").data:
            if item["pseudo"]:
                trained[item["id"]] = int(item["label"])

    engine.run()
    table = {r["id"]: r for r in read_csv(tmp_path / "pseudo_labels.csv")}
    assert len(table) == 8 and set(trained) == set(table)  # every pseudo-labeled image was trained on
    assert sum(r["label"] != r["true_label"] for r in table.values()) >= 4  # predictions differ from carried labels
    assert all(y == int(table[i]["label"]) for i, y in trained.items())


def test_weights_and_optimizer_carry_over_between_rounds(tmp_path):
    make_rounds(tmp_path, num_rounds=2).run()
    for r in (1, 2):
        previous = saved_round(tmp_path, r - 1)
        assert same_weights(STARTS[f"round_{r}"]["weights"], previous["network"])  # goes on from round r-1
        assert _same_optimizer_state(STARTS[f"round_{r}"]["optimizer"], previous["optimizer"])
    # Adam's step count goes on: 2 epochs of 1 batch (8 labeled), then 2 x 2 batches (12, then 16 items)
    assert [adam_steps(saved_round(tmp_path, r)["optimizer"]) for r in range(3)] == [2, 6, 10]
    assert not same_weights(STARTS["round_2"]["weights"], saved_round(tmp_path, 0)["network"])


def test_restart_each_round_starts_every_round_from_round_0(tmp_path):
    make_rounds(tmp_path, num_rounds=2, restart_each_round=True).run()
    round_0 = saved_round(tmp_path, 0)
    assert not same_weights(round_0["network"], saved_round(tmp_path, 1)["network"])
    for r in (1, 2):
        assert same_weights(STARTS[f"round_{r}"]["weights"], round_0["network"])
        assert _same_optimizer_state(STARTS[f"round_{r}"]["optimizer"], round_0["optimizer"])
    assert [adam_steps(saved_round(tmp_path, r)["optimizer"]) for r in range(3)] == [2, 6, 6]
    assert saved_round(tmp_path, 2)["rounds"]["settings"]["restart_each_round"] is True
    assert [int(r["n_pseudo"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 4, 8]


def test_the_pool_is_scored_with_the_previous_rounds_model(tmp_path, monkeypatch):
    networks: list[dict] = []
    original = scoring_module.score_pool

    def spy(network, *args, **kwargs):
        networks.append({k: v.clone() for k, v in network.state_dict().items()})
        return original(network, *args, **kwargs)

    monkeypatch.setattr(scoring_module, "score_pool", spy)
    make_rounds(tmp_path, num_rounds=2, restart_each_round=True).run()
    assert len(networks) == 2
    assert all(same_weights(networks[r - 1], saved_round(tmp_path, r - 1)["network"]) for r in (1, 2))


def test_pseudo_labeled_items_leave_the_pool(tmp_path, monkeypatch):
    scored = _record_scored_ids(monkeypatch)
    engine = make_rounds(tmp_path, num_rounds=2)
    engine.run()
    everything = {x["id"] for x in engine.unlabeled}
    table = read_csv(tmp_path / "pseudo_labels.csv")
    first = {r["id"] for r in table if r["round"] == "1"}
    assert len(scored) == 2
    assert set(scored[0]) == everything and len(scored[0]) == 20
    assert set(scored[1]) == everything - first and len(scored[1]) == 16


def test_rescore_scores_the_whole_unlabeled_set_every_round(tmp_path, monkeypatch):
    scored = _record_scored_ids(monkeypatch)
    engine = make_rounds(tmp_path, num_rounds=3, rescore_pseudo_labels=True)
    engine.run()
    everything = {x["id"] for x in engine.unlabeled}
    assert len(scored) == 3 and all(set(ids) == everything and len(ids) == 20 for ids in scored)
    rounds = read_csv(tmp_path / "rounds.csv")
    n = {k: [int(r[k]) for r in rounds] for k in ("n_pseudo", "n_new", "n_changed", "n_dropped", "n_pool")}
    assert n["n_pseudo"] == [0, 4, 8, 12]  # r * num_samples after round r
    assert n["n_pool"] == [20, 16, 12, 8]
    for r in (1, 2, 3):
        assert n["n_pseudo"][r] == n["n_pseudo"][r - 1] - n["n_dropped"][r] + n["n_new"][r]
        assert 0 <= n["n_changed"][r] <= n["n_pseudo"][r - 1] - n["n_dropped"][r]
    table = read_csv(tmp_path / "pseudo_labels.csv")
    assert len(table) == 12 and len({r["id"] for r in table}) == 12
    datalist = saved_round(tmp_path, 3)["rounds"]["pseudo_labels"]
    assert {e["id"]: e["label"] for e in datalist} == {r["id"]: int(r["label"]) for r in table}
    assert saved_round(tmp_path, 3)["rounds"]["settings"]["rescore_pseudo_labels"] is True


def test_a_round_keeps_its_last_epoch_validated_once(tmp_path):
    make_rounds(tmp_path, num_rounds=1).run()
    rounds = read_csv(tmp_path / "rounds.csv")
    for r in (0, 1):
        (value, weights), = VALIDATIONS[f"round_{r}"]  # one validation, after the last of the 2 epochs
        assert same_weights(saved_round(tmp_path, r)["network"], weights)
        assert float(rounds[r]["val_accuracy"]) == pytest.approx(value)


def test_best_epoch_per_round_keeps_and_scores_the_best_validated_epoch(tmp_path, monkeypatch):
    scoring: list[dict] = []
    original = scoring_module.score_pool

    def spy(network, *args, **kwargs):
        scoring.append({k: v.clone() for k, v in network.state_dict().items()})
        return original(network, *args, **kwargs)

    monkeypatch.setattr(scoring_module, "score_pool", spy)
    make_rounds(tmp_path, num_rounds=1, best_epoch_per_round=True, settings={"num_epochs": 3}).run()
    rounds = read_csv(tmp_path / "rounds.csv")
    for r in (0, 1):
        validations = VALIDATIONS[f"round_{r}"]
        assert len(validations) == 3  # validated after every epoch
        values = [v for v, _ in validations]
        best = int(np.argmax(values))  # the earliest of the best
        assert same_weights(saved_round(tmp_path, r)["network"], validations[best][1])
        assert float(rounds[r]["val_accuracy"]) == pytest.approx(values[best])
        assert float(rounds[r]["val_seconds"]) == 0.0  # validation is part of the training time
    assert same_weights(scoring[0], VALIDATIONS["round_0"][int(np.argmax([v for v, _ in VALIDATIONS["round_0"]]))][1])
    assert saved_round(tmp_path, 1)["rounds"]["settings"]["best_epoch_per_round"] is True
