from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from monai_ssl.engines import OptimizerStepTrainer, clip_gradients, scaled_optimizers_step


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


class FixedGradTrainer(OptimizerStepTrainer):
    """Parameters ``w`` (2 values) and ``b`` (1) whose gradients are the batch's ``gw`` and ``gb``; SGD, lr 1.

    One optimizer for both, or one each (``optimizers=2``), so a step moves each parameter by minus its
    (clipped) gradient and the expected values can be written down by hand.
    """

    def __init__(self, data, optimizers=1, **kwargs):
        self.w = torch.nn.Parameter(torch.zeros(2))
        self.b = torch.nn.Parameter(torch.zeros(1))
        if optimizers == 1:
            opts = torch.optim.SGD([self.w, self.b], lr=1.0)
        else:
            opts = [torch.optim.SGD([self.w], lr=1.0), torch.optim.SGD([self.b], lr=1.0)]
        super().__init__("cpu", 1, data, opts, run_name="fixed-gradient training", **kwargs)

    def _iteration(self, engine, batch):
        engine.zero_grad()
        with engine.autocast():
            loss = (engine.w * batch["gw"]).sum() + (engine.b * batch["gb"]).sum()
        engine.check_finite(loss)
        engine.backward(loss)
        return {"stepped": engine.step_optimizers()}


def _grad_batch(gw=(3.0, 4.0), gb=(12.0,)):
    """Gradients of norms 5 (w) and 12 (b): 13 together."""
    return [{"gw": torch.tensor(gw), "gb": torch.tensor(gb)}]


# (max_grad_norm, per parameter) -> the gradients after clipping, by hand; eps = 1e-6 as in the rules
CLIPPED = {
    (None, False): ([3.0, 4.0], [12.0]),
    (6.5, False): ([3.0 * 6.5 / (13 + 1e-6), 4.0 * 6.5 / (13 + 1e-6)], [12.0 * 6.5 / (13 + 1e-6)]),  # 1.5, 2, 6
    (20.0, False): ([3.0, 4.0], [12.0]),  # the global norm 13 is under the limit
    (6.0, True): ([3.0, 4.0], [12.0 * 6.0 / (12 + 1e-6)]),  # only b (norm 12 > 6) is clipped, to 6
    (4.0, True): ([3.0 * 4.0 / (5 + 1e-6), 4.0 * 4.0 / (5 + 1e-6)], [12.0 * 4.0 / (12 + 1e-6)]),  # 2.4, 3.2; 4
}


@pytest.mark.parametrize(("max_norm", "per_parameter"), list(CLIPPED))
def test_clipping_by_global_norm_and_per_parameter(max_norm, per_parameter):
    trainer = FixedGradTrainer(_grad_batch(), max_grad_norm=max_norm, grad_norm_per_parameter=per_parameter)
    trainer.run()
    gw, gb = CLIPPED[(max_norm, per_parameter)]
    torch.testing.assert_close(trainer.w.detach(), -torch.tensor(gw))
    torch.testing.assert_close(trainer.b.detach(), -torch.tensor(gb))
    assert trainer.state.optimizer_steps == 1


def test_clipping_spans_every_optimizer_for_the_global_norm():
    trainer = FixedGradTrainer(_grad_batch(), optimizers=2, max_grad_norm=6.5)
    trainer.run()
    torch.testing.assert_close(trainer.w.detach(), -torch.tensor([1.5, 2.0]))  # 13 is the norm of both together
    torch.testing.assert_close(trainer.b.detach(), -torch.tensor([6.0]))


def _real_scaler(trainer, init_scale=1024.0):
    """Run ``trainer`` under amp with a real CPU gradient scaler (MONAI makes a disabled CUDA one on the CPU)."""
    trainer.amp = True

    @trainer.on(Events.STARTED)
    def _scaler(engine):
        engine.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)


@pytest.mark.parametrize("optimizers", [1, 2])
@pytest.mark.parametrize(("max_norm", "per_parameter"), [(6.5, False), (4.0, True)])
def test_under_gradient_scaling_the_true_gradients_are_clipped(optimizers, max_norm, per_parameter):
    trainer = FixedGradTrainer(
        _grad_batch(), optimizers=optimizers, max_grad_norm=max_norm, grad_norm_per_parameter=per_parameter
    )
    _real_scaler(trainer)
    trainer.run()
    assert trainer.gradient_scaling
    gw, gb = CLIPPED[(max_norm, per_parameter)]  # clipping the scaled gradients (x1024) would give far smaller steps
    torch.testing.assert_close(trainer.w.detach(), -torch.tensor(gw))
    torch.testing.assert_close(trainer.b.detach(), -torch.tensor(gb))
    assert trainer.state.optimizer_steps == 1 and trainer.scaler.get_scale() == 1024.0


@pytest.mark.parametrize("optimizers", [1, 2])
@pytest.mark.parametrize("per_parameter", [False, True])
def test_an_overflow_under_clipping_is_still_a_skipped_step(optimizers, per_parameter):
    trainer = FixedGradTrainer(
        _grad_batch(gw=(1e38, 4.0)), optimizers=optimizers, max_grad_norm=1.0,  # x1024 overflows float32
        grad_norm_per_parameter=per_parameter,
    )
    _real_scaler(trainer)
    trainer.run()
    assert trainer.state.output["stepped"] is False and trainer.state.optimizer_steps == 0
    assert torch.equal(trainer.w.detach(), torch.zeros(2)) and torch.equal(trainer.b.detach(), torch.zeros(1))
    assert trainer.scaler.get_scale() == 512.0  # lowered once by the skip


def test_clipping_under_bfloat16_amp_without_scaling():
    trainer = FixedGradTrainer(_grad_batch(), max_grad_norm=6.5, amp=True, amp_kwargs={"dtype": torch.bfloat16})
    trainer.run()
    assert not trainer.gradient_scaling
    torch.testing.assert_close(trainer.w.detach(), -torch.tensor([1.5, 2.0]))
    torch.testing.assert_close(trainer.b.detach(), -torch.tensor([6.0]))


@pytest.mark.parametrize("per_parameter", [False, True])
def test_clipping_keeps_non_finite_gradients_non_finite(per_parameter):
    w, b, unused = (torch.nn.Parameter(torch.zeros(n)) for n in (2, 1, 3))
    w.grad, b.grad = torch.tensor([float("inf"), 4.0]), torch.tensor([12.0])
    clip_gradients([torch.optim.SGD([w, b, unused], lr=1.0)], 6.0, per_parameter)
    assert not torch.isfinite(w.grad).all()
    assert unused.grad is None
    if per_parameter:  # the finite tensor is clipped on its own
        torch.testing.assert_close(b.grad, torch.tensor([12.0 * 6.0 / (12 + 1e-6)]))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "3"])
def test_max_grad_norm_must_be_positive(bad):
    with pytest.raises(ValueError, match=r"`max_grad_norm` must be None \(no clipping\) or a number > 0"):
        FixedGradTrainer(_grad_batch(), max_grad_norm=bad)
