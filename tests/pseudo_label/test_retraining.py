"""Tests for a round's retraining: more epochs on the changed training set, and keeping the best epoch."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedTrainer
from pseudo_label_helpers import make_items, make_rounds, read_csv, saved_round, same_weights, tiny_net
from torch import nn

from monai_ssl.pseudo_label.retraining import train_keeping_best_epoch


class ScriptedEvaluator:
    """Stands in for a SupervisedEvaluator: the n-th run reports the n-th scripted accuracy."""

    def __init__(self, values):
        self.values, self.runs = list(values), 0
        self.state = SimpleNamespace(metrics={})

    def run(self, epoch):
        self.state.metrics = {"acc": self.values[self.runs]}
        self.runs += 1


def _trainer(net: nn.Module, epochs: int) -> SupervisedTrainer:
    torch.manual_seed(0)
    return SupervisedTrainer(
        device="cpu", max_epochs=epochs, network=net, loss_function=nn.CrossEntropyLoss(),
        train_data_loader=DataLoader(Dataset(make_items(8, "l", 0)), batch_size=4, shuffle=True),
        optimizer=torch.optim.Adam(net.parameters(), 1e-2),
    )


def _weights_after_each_epoch(trainer: SupervisedTrainer, net: nn.Module) -> list[dict]:
    weights: list[dict] = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: weights.append(copy.deepcopy(net.state_dict())))
    return weights


def test_the_best_validated_epoch_is_kept_not_the_last():
    net = tiny_net()
    trainer = _trainer(net, epochs=3)
    weights = _weights_after_each_epoch(trainer, net)
    evaluator = ScriptedEvaluator([0.5, 0.9, 0.7])
    assert train_keeping_best_epoch(trainer, 3, evaluator, "acc", net) == 0.9
    assert evaluator.runs == 3 and len(weights) == 3
    assert same_weights(net.state_dict(), weights[1]) and not same_weights(net.state_dict(), weights[2])
    assert trainer.state.epoch == 3  # the trainer's count goes on; only the weights go back


def test_ties_keep_the_earlier_epoch_and_a_lower_is_better_metric_is_respected():
    net = tiny_net()
    trainer = _trainer(net, epochs=3)
    weights = _weights_after_each_epoch(trainer, net)
    value = train_keeping_best_epoch(trainer, 3, ScriptedEvaluator([0.4, 0.2, 0.2]), "acc", net, lambda a, b: a < b)
    assert value == 0.2 and same_weights(net.state_dict(), weights[1])


def test_no_validated_epoch_is_an_error():
    net = tiny_net()
    trainer = _trainer(net, epochs=1)
    with pytest.raises(ValueError, match="no batch"):  # an empty training set runs no epoch
        trainer.data_loader = DataLoader(Dataset([]), batch_size=4)
        train_keeping_best_epoch(trainer, 1, ScriptedEvaluator([0.5]), "acc", net)


def test_rounds_with_best_epoch_per_round_save_and_score_the_best_epoch(tmp_path):
    engine = make_rounds(tmp_path, num_rounds=1, best_epoch_per_round=True)
    net = engine.network
    weights = _weights_after_each_epoch(engine.trainer, net)
    values: list[float] = []
    engine.evaluator.add_event_handler(Events.COMPLETED, lambda e: values.append(float(e.state.metrics["accuracy"])))
    engine.run()
    assert len(weights) == len(values) == 4  # 2 epochs a round, validated after each, nothing more
    for r, epochs in ((0, (0, 1)), (1, (2, 3))):
        best = max(epochs, key=lambda i: (values[i], -i))  # the earliest of the best
        assert same_weights(saved_round(tmp_path, r)["network"], weights[best])
        assert float(read_csv(tmp_path / "rounds.csv")[r]["val_accuracy"]) == pytest.approx(values[best])
    assert saved_round(tmp_path, 1)["rounds"]["settings"]["best_epoch_per_round"] is True
