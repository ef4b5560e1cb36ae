"""The run length of a bundle run: epochs, or enough epochs for a number of optimizer steps (``num_steps``)."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers import TinyEncoder
from monai.data import DataLoader, DistributedSampler

from monai_ssl.engines import BYOLTrainer
from monai_ssl.handlers import RunIdentity, run_length
from monai_ssl.handlers.run_length import epochs_for_steps, optimizer_steps_per_epoch
from monai_ssl.networks import BYOL

DATA = [{"image": f"/data/exam_{i}.npy", "label": i % 2} for i in range(4)]


def _saved_run(folder, num_epochs: int) -> None:
    """A checkpoint folder whose latest file records a run of ``num_epochs`` epochs."""
    folder.mkdir(parents=True, exist_ok=True)
    identity = RunIdentity("byol/train.json", DATA, num_epochs, dataset="/data")
    torch.save({"run": identity.state_dict()}, folder / "checkpoint_epoch=2.pt")


def test_epochs_requested_else_saved_on_resume_else_default(tmp_path):
    _saved_run(tmp_path / "ckpt", num_epochs=9)
    assert run_length(4, 2) == 4
    assert run_length(None, 2) == 2
    assert run_length(None, 2, resume=True, checkpoint_dir=tmp_path / "ckpt") == 9
    assert run_length(5, 2, resume=True, checkpoint_dir=tmp_path / "ckpt") == 5  # an explicit length wins
    assert run_length(None, 2, resume=True, checkpoint_dir=tmp_path / "empty") == 2
    # steps_per_epoch is ignored without num_steps (the configs always pass it)
    assert run_length(None, 2, steps_per_epoch=0) == 2 and run_length(3, 2, steps_per_epoch=7) == 3


@pytest.mark.parametrize("num_steps, steps_per_epoch, epochs", [
    (30000, 320, 94),  # 30080 steps: the last epoch runs to its end
    (30000, 300, 100),  # exactly
    (10, 3, 4),
    (1, 50, 1),
    (7, 1, 7),
])
def test_num_steps_gives_whole_epochs_of_at_least_that_many_steps(num_steps, steps_per_epoch, epochs, caplog):
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        assert run_length(None, 2, num_steps=num_steps, steps_per_epoch=steps_per_epoch) == epochs
    assert epochs * steps_per_epoch >= num_steps > (epochs - 1) * steps_per_epoch
    assert (f"num_steps={num_steps}: {epochs} epoch(s) of {steps_per_epoch} optimizer steps, "
            f"{epochs * steps_per_epoch} steps in all") in caplog.text


def test_num_steps_is_an_explicit_length_on_resume(tmp_path):
    _saved_run(tmp_path / "ckpt", num_epochs=9)
    assert run_length(None, 2, True, tmp_path / "ckpt", num_steps=100, steps_per_epoch=25) == 4
    assert run_length(None, 2, True, tmp_path / "ckpt") == 9  # without it, the saved run's length as before


def test_num_steps_and_num_epochs_together_are_refused():
    with pytest.raises(ValueError, match=r"`num_epochs` \(5\) and `num_steps` \(1000\) both set the run length"):
        run_length(5, 2, num_steps=1000, steps_per_epoch=10)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_epochs": 0}, r"`num_epochs` must be a positive whole number of epochs, got 0"),
    ({"num_epochs": 2.5}, r"`num_epochs` must be a positive whole number of epochs, got 2.5"),
    ({"num_epochs": True}, r"`num_epochs` must be a positive whole number of epochs, got True"),
    ({"default": "3"}, r"`default_num_epochs` must be a positive whole number of epochs, got '3'"),
    ({"num_steps": 0, "steps_per_epoch": 5}, r"`num_steps` must be a positive whole number of optimizer steps, got 0"),
    ({"num_steps": 3e4, "steps_per_epoch": 5}, r"`num_steps` must be .* got 30000.0"),
    ({"num_steps": "30000", "steps_per_epoch": 5}, r"`num_steps` must be .* got '30000'"),
    ({"num_steps": 100, "steps_per_epoch": -2}, r"`steps_per_epoch` must be a positive whole number .* got -2"),
    ({"num_steps": 100, "steps_per_epoch": 2.0}, r"`steps_per_epoch` must be a positive whole number .* got 2.0"),
    ({"num_steps": 100, "steps_per_epoch": 0}, r"`steps_per_epoch` is 0: one epoch of the training data takes no"),
    ({"num_steps": 100}, r"`num_steps` needs `steps_per_epoch`"),
])
def test_bad_values_are_refused_naming_the_key(kwargs, message):
    args = {"num_epochs": None, "default": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_length(args.pop("num_epochs"), args.pop("default"), **args)


def test_epochs_for_steps_matches_run_length():
    assert epochs_for_steps(30000, 320) == 94
    with pytest.raises(ValueError, match="`num_steps`"):
        epochs_for_steps(None, 320)  # type: ignore[arg-type]


def test_steps_per_epoch_of_a_loader_with_accumulation_and_a_distributed_sampler():
    data = list(range(10))
    assert optimizer_steps_per_epoch(DataLoader(data, batch_size=3)) == 4
    assert optimizer_steps_per_epoch(DataLoader(data, batch_size=3, drop_last=True)) == 3
    assert optimizer_steps_per_epoch(DataLoader(data, batch_size=1), accumulation_steps=4) == 3  # 4 + 4 + a rest of 2
    # multi-GPU: the loader's length is this process's share (10 items on 4 processes: 3 each, padded)
    sampler = DistributedSampler(data, num_replicas=4, rank=1, even_divisible=True, shuffle=False)
    assert optimizer_steps_per_epoch(DataLoader(data, batch_size=2, sampler=sampler)) == 2
    with pytest.raises(ValueError, match="`accumulation_steps` must be a positive integer, got 0"):
        optimizer_steps_per_epoch(DataLoader(data), accumulation_steps=0)
    with pytest.raises(TypeError, match="has no length.*`num_epochs` instead of `num_steps`"):
        optimizer_steps_per_epoch(iter(data))  # type: ignore[arg-type]


def test_a_trainer_run_for_the_computed_epochs_takes_at_least_num_steps():
    """The count agrees with the trainer's own: BYOL with accumulation over 7 batches steps 3 times an epoch."""
    batches = [{"view1": torch.rand(2, 1, 8, 8), "view2": torch.rand(2, 1, 8, 8)} for _ in range(7)]
    per_epoch = optimizer_steps_per_epoch(batches, accumulation_steps=3)
    epochs = run_length(None, 1, num_steps=5, steps_per_epoch=per_epoch)
    net = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=4)
    trainer = BYOLTrainer("cpu", epochs, batches, net, torch.optim.SGD(net.parameters(), lr=0.01), accumulation_steps=3)
    trainer.run()
    assert (per_epoch, epochs) == (3, 2)
    assert trainer.state.optimizer_steps == trainer.total_optimizer_steps == 6
