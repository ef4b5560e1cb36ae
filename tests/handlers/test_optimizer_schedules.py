"""OptimizerSchedules: the learning rate and weight decay at each optimizer step, per group, through a real run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from helpers import TinyEncoder
from ignite.engine import Engine, Events

from monai_ssl.engines import SelfSupervisedTrainer
from monai_ssl.handlers import OptimizerSchedules
from monai_ssl.methods import BYOLMethod, method_optimizers
from monai_ssl.networks import BYOL


class StubTrainer:
    """What the handler reads of an OptimizerStepTrainer: its optimizers, the run's steps, the step count."""

    total_optimizer_steps = 10  # 5 epochs of 2 optimizer steps

    def __init__(self, *optimizers):
        self.optimizers = optimizers
        self.state = SimpleNamespace(optimizer_steps=0, max_epochs=5)

    def at(self, handler, step):
        self.state.optimizer_steps = step
        handler(self)
        return self.state.learning_rate, self.state.weight_decay


def _optimizer(groups=1, weight_decay=0.5):
    params = [{"params": [torch.nn.Parameter(torch.zeros(2))]} for _ in range(groups)]
    return torch.optim.SGD(params, lr=123.0, weight_decay=weight_decay)


# lr 1.0 after 2 warm-up epochs (4 steps: 0.1, 0.4, 0.7, 1.0), then a half cosine over steps 4..9 to 0.01
DINO_LIKE = dict(learning_rate=1.0, final_learning_rate=0.01, warmup_epochs=2, warmup_start_learning_rate=0.1,
                 weight_decay=0.04, final_weight_decay=0.4)


def _cosine(start, end, k, length):
    return end + (start - end) * (1 + math.cos(math.pi * k / length)) / 2


@pytest.mark.parametrize(
    ("step", "lr", "weight_decay"),
    [
        (0, 0.1, 0.04),  # the warm-up's start
        (1, 0.4, _cosine(0.04, 0.4, 1, 10)),
        (3, 1.0, _cosine(0.04, 0.4, 3, 10)),  # the warm-up's last step reaches learning_rate
        (4, 1.0, _cosine(0.04, 0.4, 4, 10)),  # the cosine's first step
        (5, _cosine(1.0, 0.01, 1, 6), 0.22),  # weight decay half-way: (0.04 + 0.4) / 2
        (7, 0.505, _cosine(0.04, 0.4, 7, 10)),  # lr half-way down the cosine: (1 + 0.01) / 2
        (9, 0.01 + 0.99 * (1 - math.sqrt(3) / 2) / 2, 0.4 - 0.36 * (1 + math.cos(0.9 * math.pi)) / 2),  # last step
        (10, 0.01, 0.4),  # after the run: the final values are held
        (25, 0.01, 0.4),
    ],
)
def test_values_at_each_step_of_the_run(step, lr, weight_decay):
    engine = StubTrainer(_optimizer())
    assert engine.at(OptimizerSchedules(**DINO_LIKE), step) == pytest.approx((lr, weight_decay))
    group = engine.optimizers[0].param_groups[0]
    assert (group["lr"], group["weight_decay"]) == pytest.approx((lr, weight_decay))
    assert isinstance(engine.state.learning_rate, float) and isinstance(engine.state.weight_decay, float)


def test_without_warmup_the_cosine_starts_at_step_0_and_weight_decay_can_be_constant():
    engine = StubTrainer(_optimizer())
    handler = OptimizerSchedules(learning_rate=2.0, weight_decay=0.05)
    assert engine.at(handler, 0) == pytest.approx((2.0, 0.05))
    assert engine.at(handler, 5) == pytest.approx((1.0, 0.05))  # half-way to the default final lr 0


def test_fixed_weight_decay_groups_keep_theirs_and_every_optimizer_is_set():
    first, second = _optimizer(groups=2), _optimizer()
    first.param_groups[1]["weight_decay"] = 0.0
    first.param_groups[1]["fixed_weight_decay"] = True
    engine = StubTrainer(first, second)
    engine.at(OptimizerSchedules(**DINO_LIKE), 5)
    groups = [*first.param_groups, *second.param_groups]
    assert [g["lr"] for g in groups] == pytest.approx([_cosine(1.0, 0.01, 1, 6)] * 3)
    assert [g["weight_decay"] for g in groups] == pytest.approx([0.22, 0.0, 0.22])


def test_without_a_weight_decay_schedule_the_optimizers_own_is_reported_and_kept():
    optimizer = _optimizer(groups=2, weight_decay=0.3)
    optimizer.param_groups[0].update(weight_decay=0.0, fixed_weight_decay=True)
    engine = StubTrainer(optimizer)
    assert engine.at(OptimizerSchedules(learning_rate=1.0), 0) == (1.0, 0.3)  # the first regularised group's
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.3]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"learning_rate": -1.0}, "`learning_rate`"),
        ({"learning_rate": float("nan")}, "`learning_rate`"),
        ({"learning_rate": 1.0, "final_learning_rate": -1e-6}, "`final_learning_rate`"),
        ({"learning_rate": 1.0, "warmup_epochs": -1}, "`warmup_epochs`"),
        ({"learning_rate": 1.0, "warmup_start_learning_rate": -0.1}, "`warmup_start_learning_rate`"),
        ({"learning_rate": 1.0, "weight_decay": -0.04}, "`weight_decay`"),
        ({"learning_rate": 1.0, "weight_decay": 0.04, "final_weight_decay": -0.4}, "`final_weight_decay`"),
        ({"learning_rate": 1.0, "final_weight_decay": 0.4}, r"`final_weight_decay` \(0.4\) needs `weight_decay`"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        OptimizerSchedules(**kwargs)


def test_attach_needs_an_optimizer_step_trainer():
    with pytest.raises(TypeError, match="OptimizerSchedules needs an OptimizerStepTrainer.*got Engine"):
        OptimizerSchedules(1.0).attach(Engine(lambda e, b: None))


# ------------------------------------------------------------------ through a real SelfSupervisedTrainer
def _data(n_batches=3, batch=4, size=16):
    g = torch.Generator().manual_seed(1)
    return [
        {"view1": torch.rand(batch, 1, size, size, generator=g), "view2": torch.rand(batch, 1, size, size, generator=g)}
        for _ in range(n_batches)
    ]


SCHEDULE = dict(learning_rate=0.1, final_learning_rate=0.001, warmup_epochs=1, warmup_start_learning_rate=0.01,
                weight_decay=0.04, final_weight_decay=0.4)
# 2 epochs of 3 iterations, accumulation 2: steps at iterations 2, 3 | 5, 6 (2 per epoch, 4 in all, warm-up 2)
STEP_LR = [0.01, 0.1, 0.1, 0.001 + 0.099 / 2]
STEP_WD = [_cosine(0.04, 0.4, k, 4) for k in range(4)]


def _trainer(data, max_epochs=2, **schedule):
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=8)
    method = BYOLMethod(tau_base=0.9)
    optimizer, = method_optimizers(
        method, network, lambda p: torch.optim.SGD(p, lr=5.0, momentum=0.9, weight_decay=1.0),
        exclude_bias_and_norm_from_weight_decay=True,
    )
    trainer = SelfSupervisedTrainer("cpu", max_epochs, data, method, network, optimizer, accumulation_steps=2)
    OptimizerSchedules(**(schedule or SCHEDULE)).attach(trainer)
    seen = {"step_lr": [], "step_wd": [], "fixed_wd": [], "iteration_lr": [], "state": []}

    def _pre_step(opt, *_):
        seen["step_lr"].append(opt.param_groups[0]["lr"])
        seen["step_wd"].append(opt.param_groups[0]["weight_decay"])
        seen["fixed_wd"].append(opt.param_groups[1]["weight_decay"])

    optimizer.register_step_pre_hook(_pre_step)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen["iteration_lr"].append(e.state.output["lr"]))
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: seen["state"].append((e.state.learning_rate, e.state.weight_decay))
    )
    return trainer, network, optimizer, seen


def test_the_optimizer_sees_the_schedule_at_each_real_step():
    trainer, _, _, seen = _trainer(_data())
    trainer.run()
    assert trainer.total_optimizer_steps == 4 and trainer.state.optimizer_steps == 4
    assert seen["step_lr"] == pytest.approx(STEP_LR)
    assert seen["step_wd"] == pytest.approx(STEP_WD)
    assert seen["fixed_wd"] == [0.0] * 4  # biases and norm parameters: no weight decay
    # per iteration: the steps done before it are 0, 0, 1 | 2, 2, 3 (an accumulation window shares a value)
    expected = [STEP_LR[k] for k in (0, 0, 1, 2, 2, 3)]
    assert seen["iteration_lr"] == pytest.approx(expected)
    assert [v for pair in seen["state"] for v in pair] == pytest.approx(
        [v for k in (0, 0, 1, 2, 2, 3) for v in (STEP_LR[k], STEP_WD[k])]
    )


def test_a_resumed_run_continues_the_schedule(tmp_path):
    data = _data()
    full, full_network, _, full_seen = _trainer(data)
    full.run()

    first, network, optimizer, first_seen = _trainer(data)
    first.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda e: e.terminate())
    first.run()
    assert first.state.optimizer_steps == 2 and first_seen["step_lr"] == pytest.approx(STEP_LR[:2])
    path = tmp_path / "checkpoint.pt"
    torch.save(
        {"trainer": first.state_dict(), "network": network.state_dict(), "optimizer": optimizer.state_dict()}, path
    )
    saved = torch.load(path, weights_only=True)
    resumed, network, optimizer, seen = _trainer(data)
    resumed.load_state_dict(saved["trainer"])
    network.load_state_dict(saved["network"])
    optimizer.load_state_dict(saved["optimizer"])
    resumed.run()
    assert resumed.state.optimizer_steps == 4
    assert seen["step_lr"] == pytest.approx(STEP_LR[2:]) and seen["step_wd"] == pytest.approx(STEP_WD[2:])
    for key, value in full_network.state_dict().items():
        torch.testing.assert_close(network.state_dict()[key], value, msg=key)


def test_a_warmup_longer_than_half_the_run_is_shortened_with_a_warning(caplog):
    trainer, _, _, _ = _trainer(_data(), learning_rate=0.1, warmup_epochs=2)
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.learning_rate))
    with caplog.at_level("WARNING", logger="monai_ssl"):
        trainer.run()
    assert "warms up over the first 2 steps instead" in caplog.text
    assert seen[0] == pytest.approx(0.0) and seen[2] == pytest.approx(0.1)  # the peak is reached at step 2 of 4
