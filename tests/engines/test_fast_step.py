"""The GPU fast path of the training core, checked on the CPU: the NaN guard read every N iterations,
bf16 without a gradient scaler, the out-of-memory message, channels_last views and the compile switch."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from monai_ssl.engines import BYOLTrainer, OptimizerStepTrainer
from monai_ssl.networks import BYOL


class RegressionTrainer(OptimizerStepTrainer):
    """One linear layer on a regression batch; ``nan_at`` makes the loss of those iterations NaN."""

    def __init__(self, batches, nan_at=(), max_epochs=1, **kwargs):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(2, 1)
        super().__init__("cpu", max_epochs, batches, torch.optim.SGD(self.net.parameters(), lr=0.1), run_name="regression", **kwargs)
        self.nan_at = set(nan_at)

    def _iteration(self, engine, batch):
        engine.zero_grad()
        loss = ((engine.net(batch["x"]) - batch["y"]) ** 2).mean()
        if engine.state.iteration in engine.nan_at:
            loss = loss * float("nan")
        engine.check_finite(loss, "the loss")
        engine.backward(loss)
        engine.step_optimizers()
        return {"loss": loss.detach()}


def _batches(n):
    return [{"x": torch.ones(4, 2), "y": torch.ones(4, 1)} for _ in range(n)]


def _iterations_run(trainer):
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.iteration))
    return seen


def test_deferred_nan_guard_stops_within_the_interval_naming_the_first_bad_iteration():
    trainer = RegressionTrainer(_batches(12), nan_at=(6, 7), finite_check_interval=4)
    seen = _iterations_run(trainer)
    with pytest.raises(FloatingPointError, match=r"regression: the loss is nan at epoch 1, iteration 6 \(read every 4 iterations\)"):
        trainer.run()
    assert seen == [1, 2, 3, 4, 5, 6, 7]  # iteration 8 read the guard and stopped: within 4 of the NaN


def test_deferred_nan_guard_is_read_at_the_end_of_each_epoch():
    """An epoch shorter than the interval: the guard is read at its last iteration, before the epoch's handlers."""
    trainer = RegressionTrainer(_batches(3), nan_at=(2,), finite_check_interval=50, max_epochs=2)
    epochs_completed = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: epochs_completed.append(e.state.epoch))
    with pytest.raises(FloatingPointError, match=r"epoch 1, iteration 2"):
        trainer.run()
    assert epochs_completed == []  # no checkpoint handler would have seen the NaN epoch


def test_deferred_nan_guard_does_not_read_the_device_between_checks(monkeypatch):
    trainer = RegressionTrainer(_batches(8), finite_check_interval=4)
    reads = []
    original = trainer.raise_if_nonfinite
    monkeypatch.setattr(trainer, "raise_if_nonfinite", lambda: (reads.append(trainer.state.iteration), original())[1])
    trainer.run()
    assert reads == [4, 8]
    with pytest.raises(ValueError, match="finite_check_interval"):
        RegressionTrainer(_batches(1), finite_check_interval=0)


def test_bf16_autocast_needs_no_gradient_scaler():
    trainer = RegressionTrainer(_batches(1), amp=True, amp_kwargs={"dtype": torch.bfloat16})

    class EnabledScaler:
        def is_enabled(self):
            return True

    trainer.scaler = EnabledScaler()
    assert not trainer.gradient_scaling  # bf16: no scaler
    trainer.amp_kwargs = {"dtype": torch.float16}
    assert trainer.gradient_scaling  # fp16 keeps it


def test_out_of_memory_names_the_batch_size_and_what_to_lower():
    class OutOfMemory(RegressionTrainer):
        def _iteration(self, engine, batch):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    loader = DataLoader([{"x": torch.ones(2), "y": torch.ones(1)}] * 64, batch_size=32)
    with pytest.raises(torch.OutOfMemoryError, match=r"regression ran out of GPU memory at batch size 32 .*--batch_size 16.*--accumulation_steps") as err:
        OutOfMemory(loader).run()
    assert "Tried to allocate" in str(err.value.__cause__)


def _byol(tiny_encoder, data, **kwargs):
    net = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    return BYOLTrainer("cpu", 1, data, net, torch.optim.SGD(net.parameters(), lr=0.05), **kwargs)


def test_channels_last_views_reach_the_network(tiny_encoder):
    data = [{"view1": torch.rand(4, 1, 8, 8), "view2": torch.rand(4, 1, 8, 8)}]
    formats = []
    tiny_encoder[0].register_forward_pre_hook(lambda m, args: formats.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    _byol(tiny_encoder, data, channels_last=True).run()
    assert formats and all(formats)


def test_compile_switch_compiles_in_place_and_keeps_the_state_dict_keys(tiny_encoder, monkeypatch):
    calls = []
    monkeypatch.setattr(BYOL, "compile", lambda self, *a, **k: calls.append(self), raising=False)
    trainer = _byol(tiny_encoder, [], compile=True)
    assert calls == [trainer.network]
    assert not any(k.startswith("_orig_mod") for k in trainer.network.state_dict())
    _byol(tiny_encoder, [], compile=False)
    assert len(calls) == 1
