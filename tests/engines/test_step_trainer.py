from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from monai_ssl.engines import OptimizerStepTrainer, scaled_optimizers_step


class TwoNetTrainer(OptimizerStepTrainer):
    """Two networks, one optimizer each (the shape of cross-teaching), on a regression batch."""

    def __init__(self, data, accumulation_steps=1, **kwargs):
        torch.manual_seed(0)
        self.nets = [torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)]
        opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in self.nets]
        super().__init__("cpu", 1, data, opts, run_name="two-net training", accumulation_steps=accumulation_steps,
                         **kwargs)
        self.after_steps: list[int] = []

    def after_optimizer_step(self) -> None:
        self.after_steps.append(self.state.optimizer_steps)

    def _iteration(self, engine, batch):
        zero_grad, step = engine._should_step()
        if zero_grad:
            engine.zero_grad()
        with engine.autocast():
            loss = sum(((n(batch["x"]) - batch["y"]) ** 2).mean() for n in engine.nets)
        engine.check_finite(loss, "the summed loss")
        engine.backward(loss)
        return {"loss": loss.detach(), "stepped": engine.step_optimizers() if step else False}


def _batches(n, value=1.0):
    return [{"x": torch.ones(4, 2), "y": torch.full((4, 1), value)} for _ in range(n)]


def test_every_optimizer_steps_and_the_hook_sees_each_real_step():
    trainer = TwoNetTrainer(_batches(3))
    before = [n.weight.detach().clone() for n in trainer.nets]
    trainer.run()
    assert all(not torch.equal(b, n.weight) for b, n in zip(before, trainer.nets))
    assert trainer.after_steps == [0, 1, 2] and trainer.state.optimizer_steps == 3
    assert trainer.state_dict()["optimizer_steps"] == 3  # checkpointed with the engine


def test_accumulation_steps_at_window_ends_and_the_epoch_end():
    trainer = TwoNetTrainer(_batches(5), accumulation_steps=2)
    outputs = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output["stepped"]))
    trainer.run()
    assert outputs == [False, True, False, True, True] and trainer.optimizer_steps_per_epoch == 3
    assert trainer.total_optimizer_steps == 3 and trainer.state.optimizer_steps == 3


def test_a_nan_loss_stops_the_run_naming_it():
    trainer = TwoNetTrainer(_batches(2, value=float("nan")))
    with pytest.raises(FloatingPointError, match=r"two-net training: the summed loss is nan at epoch 1, iteration 1"):
        trainer.run()
    assert trainer.state.optimizer_steps == 0


def test_an_epoch_without_iterations_is_refused():
    loader = DataLoader(list(range(3)), batch_size=4, drop_last=True)
    trainer = TwoNetTrainer(loader)
    with pytest.raises(ValueError, match=r"two-net training would train zero steps: 3 training items.*batch_size 4"):
        trainer.run()


class FakeScaler:
    """A gradient scaler that skips every optimizer's step while ``skip`` and halves its scale then."""

    def __init__(self, skip):
        self.skip, self._scale, self.updates = skip, 1024.0, 0

    def scale(self, loss):
        return loss

    def unscale_(self, optimizer):  # an fp16 overflow shows as inf gradients once unscaled
        if self.skip:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad.fill_(float("inf"))

    def step(self, optimizer):
        if not self.skip:
            optimizer.step()

    def update(self):
        self.updates += 1
        if self.skip:
            self._scale /= 2

    def get_scale(self):
        return self._scale


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("fused_style", [False, True])
@pytest.mark.parametrize("count", [1, 2])
def test_scaled_steps_report_a_skip_for_plain_and_fused_style_optimizers(skip, fused_style, count):
    nets = [torch.nn.Linear(2, 1) for _ in range(count)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    opts[-1]._step_supports_amp_scaling = fused_style  # handled like a fused optimizer: seen through the scale
    scaler = FakeScaler(skip)
    for n in nets:
        n(torch.ones(1, 2)).sum().backward()
    assert scaled_optimizers_step(scaler, opts) is (not skip)
    assert scaler.updates == 1  # one update for all optimizers


def test_with_several_optimizers_an_overflow_in_one_steps_none():
    nets = [torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    for n in nets:
        scaler.scale(n(torch.ones(1, 2)).sum()).backward()
    nets[0].weight.grad.fill_(float("inf"))
    before = [p.detach().clone() for n in nets for p in n.parameters()]
    assert scaled_optimizers_step(scaler, opts) is False
    after = [p.detach() for n in nets for p in n.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # the finite network did not step alone
    assert scaler.get_scale() == 2.0


def test_a_skipped_scaled_step_is_no_step():
    trainer = TwoNetTrainer(_batches(2))
    trainer.amp = True  # MONAI's Trainer.run makes its own scaler under amp: replace it once the run started

    @trainer.on(Events.STARTED)
    def _fake_scaler(engine):
        engine.scaler = FakeScaler(skip=True)

    trainer.run()
    assert trainer.after_steps == [] and trainer.state.optimizer_steps == 0
