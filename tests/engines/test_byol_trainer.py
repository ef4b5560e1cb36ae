from __future__ import annotations

import pytest
import torch

from ignite.engine import Events

from monai_ssl.engines import BYOLTrainer
from monai_ssl.networks import BYOL, cosine_momentum


def _data(n_batches=3, batch=4):
    g = torch.Generator().manual_seed(0)
    return [{"view1": torch.rand(batch, 1, 8, 8, generator=g), "view2": torch.rand(batch, 1, 8, 8, generator=g)}
            for _ in range(n_batches)]


def _trainer(encoder, data, **kwargs):
    net = BYOL(encoder, hidden_dim=16, projection_dim=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    return BYOLTrainer("cpu", kwargs.pop("max_epochs", 2), data, net, opt, **kwargs)


def test_counts_optimizer_steps_and_tau_with_accumulation(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(3), accumulation_steps=2, max_epochs=2)
    taus, steps = [], []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: (taus.append(e.state.output["tau"]),
                                                                steps.append(e.state.optimizer_steps)))
    trainer.run()
    # 3 iterations per epoch, accumulate 2 -> steps after iterations 2 and 3 (end-of-epoch flush)
    assert trainer.total_optimizer_steps == 4
    assert steps == [0, 1, 2, 2, 3, 4]
    assert taus[0] == pytest.approx(0.99)
    assert taus[-1] == pytest.approx(cosine_momentum(3, 4, 0.99))
    assert trainer.state.optimizer_steps == 4


def test_target_moves_only_on_optimizer_steps(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(2), accumulation_steps=2, max_epochs=1)
    net = trainer.network
    start = [p.clone() for p in net.target_parameters()]
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: seen.append(all(torch.equal(a, b) for a, b in zip(start, net.target_parameters()))))
    trainer.run()
    assert seen == [True, False]


def test_output_and_loss_decreases(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(2, batch=8), max_epochs=15)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"])))
    trainer.run()
    out = trainer.state.output
    assert {"loss", "tau", "lr", "projection_std", "projection_dim", "view1", "view2"} <= set(out)
    assert out["lr"] == pytest.approx(0.05) and out["projection_dim"] == 4
    assert 0.0 <= losses[-1] <= 8.0
    assert sum(losses[-4:]) < sum(losses[:4])


def test_nan_loss_stops_with_message(tiny_encoder):
    data = _data(2)
    data[1]["view1"][:] = float("nan")
    trainer = _trainer(tiny_encoder, data, max_epochs=1)
    with pytest.raises(FloatingPointError, match="iteration 2"):
        trainer.run()


def test_batch_of_one_and_missing_key(tiny_encoder):
    with pytest.raises(ValueError, match="at least 2 samples"):
        _trainer(tiny_encoder, _data(1, batch=1), max_epochs=1).run()
    with pytest.raises(KeyError, match="view2"):
        _trainer(tiny_encoder, [{"view1": torch.rand(2, 1, 8, 8)}], max_epochs=1).run()
    with pytest.raises(TypeError, match="update_target"):
        BYOLTrainer("cpu", 1, [], torch.nn.Linear(2, 2), torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), 0.1))
