"""The rules of the self-training rounds (Feng et al.), pinned on tiny deterministic runs.

- pseudo-labeled images are trained on their *predicted* class, never on a label they carry;
- the classifier carries over from round to round (or restarts from round 0 when asked);
- the pool shrinks: pseudo-labeled images are not scored again (unless ``rescore_pseudo_labels``).
"""

from __future__ import annotations

import numpy as np
import torch
from ignite.engine import Events
from pseudo_label_helpers import make_items, make_rounds, read_csv, saved_round, same_weights

import monai_ssl.pseudo_label.rounds as rounds_module
from monai_ssl.pseudo_label import PseudoLabelRounds


def _same_optimizer_state(a: dict, b: dict) -> bool:
    """Equal per-parameter optimizer states (Adam moments and step counts)."""
    a, b = a["state"], b["state"]
    if a.keys() != b.keys():
        return False
    return all(a[p].keys() == b[p].keys() and all(torch.equal(a[p][k], b[p][k]) for k in a[p]) for p in a)


def _record_training_starts(engine: PseudoLabelRounds) -> dict[int, tuple[dict, dict]]:
    """round -> (network weights, optimizer state) when the trainer starts that round's training."""
    starts: dict[int, tuple[dict, dict]] = {}

    @engine.trainer.on(Events.STARTED)
    def _snapshot(trainer):
        r = engine.state.iteration - 1
        weights = {k: v.detach().clone() for k, v in engine.network.state_dict().items()}
        optimizer = trainer.optimizer.state_dict()
        state = {p: {k: v.clone() for k, v in s.items()} for p, s in optimizer["state"].items()}
        starts[r] = (weights, {"state": state})

    return starts


def _record_scored_ids(monkeypatch) -> list[list[str]]:
    """The ids ``score_pool`` returns, one list per call (i.e. per round r >= 1)."""
    scored: list[list[str]] = []
    original = rounds_module.score_pool

    def spy(*args, **kwargs):
        probabilities, ids = original(*args, **kwargs)
        scored.append(list(ids))
        return probabilities, ids

    monkeypatch.setattr(rounds_module, "score_pool", spy)
    return scored


def test_pseudo_labeled_items_train_on_the_predicted_class(tmp_path):
    # every unlabeled image carries the wrong label: training on it would show
    engine = make_rounds(tmp_path, num_rounds=2, unlabeled=make_items(20, "u", 1, flip=True))
    seen: list[dict[str, int]] = []

    @engine.trainer.on(Events.EPOCH_STARTED)
    def _new_epoch(_):
        seen.append({})

    @engine.trainer.on(Events.ITERATION_STARTED)
    def _labels_trained_on(trainer):
        batch = trainer.state.batch
        seen[-1].update(zip(batch["id"], np.asarray(batch["label"]).reshape(-1).tolist()))

    engine.run()
    table = {r["id"]: r for r in read_csv(tmp_path / "pseudo_labels.csv")}
    assert len(table) == 8
    assert sum(r["label"] != r["true_label"] for r in table.values()) >= 4  # predictions differ from carried labels
    pseudo_seen = [(i, y) for epoch in seen for i, y in epoch.items() if i.startswith("u")]
    assert {i for i, _ in pseudo_seen} == set(table)  # every pseudo-labeled image was trained on
    assert all(y == int(table[i]["label"]) for i, y in pseudo_seen)
    assert all(int(x["label"]) == int(table[x["id"]]["label"]) for x in engine.train_dataset.data if x["pseudo"])


def test_weights_and_optimizer_carry_over_between_rounds(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=2)
    starts = _record_training_starts(engine)
    engine.run()
    assert sorted(starts) == [0, 1, 2]
    for r in (1, 2):
        weights, optimizer = starts[r]
        previous = saved_round(tmp_path, r - 1)
        assert same_weights(weights, previous["network"])  # round r goes on from the end of round r-1
        assert _same_optimizer_state(optimizer, previous["optimizer"])
    assert not same_weights(starts[2][0], saved_round(tmp_path, 0)["network"])  # the two modes differ here


def test_restart_each_round_starts_every_round_from_round_0(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=2, restart_each_round=True)
    starts = _record_training_starts(engine)
    engine.run()
    round_0 = saved_round(tmp_path, 0)
    assert not same_weights(round_0["network"], saved_round(tmp_path, 1)["network"])
    for r in (1, 2):
        weights, optimizer = starts[r]
        assert same_weights(weights, round_0["network"])
        assert _same_optimizer_state(optimizer, round_0["optimizer"])
    assert saved_round(tmp_path, 2)["rounds"]["settings"]["restart_each_round"] is True
    assert [int(r["n_pseudo"]) for r in read_csv(tmp_path / "rounds.csv")] == [0, 4, 8]


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
    pseudo = {x["id"]: int(x["label"]) for x in engine.train_dataset.data if x["pseudo"]}
    assert pseudo == {r["id"]: int(r["label"]) for r in table}
    assert saved_round(tmp_path, 3)["rounds"]["settings"]["rescore_pseudo_labels"] is True
