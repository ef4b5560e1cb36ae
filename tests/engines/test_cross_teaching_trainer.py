from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Events
from torch.utils.data import DataLoader

from monai_ssl.engines import CrossTeachingTrainer, cross_teaching_scalars
from monai_ssl.networks import SegmentationPair


def _labeled(n=4, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, size, size, generator=g)
    return [{"image": images[i], "label": (images[i] > 0.5).long()} for i in range(n)]


def _unlabeled(n=3, size=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(1, size, size, generator=g)} for _ in range(n)]


def _pair():
    torch.manual_seed(0)
    return SegmentationPair(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Conv2d(1, 2, 3, padding=1))


def _trainer(pair, labeled_batch=2, unlabeled_batch=2, max_epochs=2, **kwargs):
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in pair.members.values()]
    return CrossTeachingTrainer(
        "cpu",
        max_epochs,
        DataLoader(_labeled(), batch_size=labeled_batch),
        DataLoader(_unlabeled(), batch_size=unlabeled_batch),
        pair.members,
        optimizers,
        **kwargs,
    )


def test_both_networks_train_and_the_ramp_follows_optimizer_steps():
    pair = _pair()
    before = {k: v.clone() for k, v in pair.state_dict().items()}
    trainer = _trainer(pair, max_epochs=2)
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(dict(e.state.output)))
    trainer.run()
    assert trainer.state.optimizer_steps == 4
    after = pair.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)  # every parameter of both networks moved
    weights = [o["cross_weight"] for o in seen]
    assert weights == pytest.approx([0.1 * math.exp(-5 * (1 - s / 4) ** 2) for s in range(4)])
    first = seen[0]
    assert first["pred_cnn"].shape == (2, 2, 8, 8) and first["unlabeled_image"].shape == (2, 1, 8, 8)
    scalars = cross_teaching_scalars(first)
    assert set(scalars) == {
        "train/loss", "train/cross_weight", "train/supervised_loss/cnn", "train/supervised_loss/transformer",
        "train/cross_loss/cnn", "train/cross_loss/transformer", "train/lr/cnn", "train/lr/transformer",
    }
    assert scalars["train/loss"] == pytest.approx(
        sum(scalars[f"train/supervised_loss/{n}"] + first["cross_weight"] * scalars[f"train/cross_loss/{n}"]
            for n in ("cnn", "transformer")), rel=1e-5)


def test_the_unlabeled_stream_cycles_and_calls_set_epoch():
    class Sampler(torch.utils.data.Sampler):
        def __init__(self):
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter(range(3))

        def __len__(self):
            return 3

    pair = _pair()
    sampler = Sampler()
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in pair.members.values()]
    trainer = CrossTeachingTrainer("cpu", 3, DataLoader(_labeled(), batch_size=2),
                                   DataLoader(_unlabeled(), batch_size=2, sampler=sampler), pair.members, optimizers)
    trainer.run()  # 6 iterations, 2 unlabeled batches per pass
    assert sampler.epochs == [0, 1, 2]


def test_a_nan_loss_stops_naming_it_and_bad_batches_are_named():
    pair = _pair()
    with torch.no_grad():
        pair.members["transformer"].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="cross-teaching loss is nan at epoch 1, iteration 1"):
        _trainer(pair).run()
    trainer = _trainer(_pair())
    trainer.data_loader = DataLoader([{"image": d["image"]} for d in _labeled()], batch_size=2)
    with pytest.raises(KeyError, match="no 'label'"):
        trainer.run()


def test_an_empty_unlabeled_stream_and_wrong_settings_are_refused():
    pair = _pair()
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in pair.members.values()]
    trainer = CrossTeachingTrainer("cpu", 1, DataLoader(_labeled(), batch_size=2),
                                   DataLoader(_unlabeled(1), batch_size=2, drop_last=True), pair.members, optimizers)
    with pytest.raises(ValueError, match="unlabeled data loader gives no batch"):
        trainer.run()
    with pytest.raises(ValueError, match="one optimizer per network"):
        CrossTeachingTrainer("cpu", 1, [], [], pair.members, optimizers[:1])
    with pytest.raises(ValueError, match="exactly 2 networks"):
        CrossTeachingTrainer("cpu", 1, [], [], {"a": pair.members["cnn"]}, optimizers)
    with pytest.raises(ValueError, match="rampup_fraction"):
        CrossTeachingTrainer("cpu", 1, [], [], pair.members, optimizers, rampup_fraction=0)


def test_resume_continues_the_ramp_from_the_saved_optimizer_steps():
    trainer = _trainer(_pair(), max_epochs=4)
    state = {}
    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=2), lambda e: state.update(e.state_dict()))
    trainer.run()
    resumed = _trainer(_pair(), max_epochs=4)
    resumed.load_state_dict(state)
    seen = []
    resumed.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.output["cross_weight"]))
    resumed.run()
    assert resumed.state.optimizer_steps == 8
    assert seen == pytest.approx([0.1 * math.exp(-5 * (1 - s / 8) ** 2) for s in range(4, 8)])


@pytest.mark.filterwarnings("ignore:.*GradScaler.*")
def test_amp_on_the_cpu_uses_no_gradient_scaling(monkeypatch):
    import monai_ssl.engines.step_trainer as step_trainer

    calls = []
    monkeypatch.setattr(step_trainer, "_gradients_finite", lambda opts: calls.append(1) or True)
    trainer = _trainer(_pair(), max_epochs=1, amp=True)  # MONAI makes a disabled CUDA scaler on a CPU machine
    trainer.run()
    assert trainer.state.optimizer_steps == 2 and not trainer.gradient_scaling
    assert calls == []  # no scaler bookkeeping (or its host syncs) for bf16 autocast on the CPU
