from __future__ import annotations

import logging
import math

import pytest
import torch
from helpers import TinyEncoder
from ignite.engine import Engine, Events
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)

from monai_ssl.engines import BYOLTrainer
from monai_ssl.handlers import CheckpointSaver, ResumeFromCheckpoint, RunIdentity, latest_checkpoint
from monai_ssl.handlers.resume import CLOSED_FORM_SCHEDULERS, closed_form_lr, follow_schedule_shape
from monai_ssl.networks import BYOL

DATA = [{"image": f"/data/exam_{i}.npy", "label": i % 2} for i in range(4)]


def _run(folder, max_epochs, *, resume, data=DATA, config="byol/train.json", stop_after=None, encoder=None, **kw):
    """A BYOL run with cosine LR over ``max_epochs``, checkpoints every epoch, optionally stopped after an epoch."""
    batches = [{"view1": torch.rand(2, 1, 8, 8), "view2": torch.rand(2, 1, 8, 8)} for _ in range(2)]
    net = BYOL(encoder or TinyEncoder(), hidden_dim=16, projection_dim=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
    identity = RunIdentity(config, data, max_epochs, dataset="/data")
    objects = {"network": net, "optimizer": opt, "lr_scheduler": sched}
    loader = ResumeFromCheckpoint(folder, dict(objects), engine_key="trainer", run_identity=identity, enabled=resume, **kw)
    saver = CheckpointSaver(str(folder), dict(objects), engine_key="trainer", run_identity=identity, save_interval=1,
                            n_saved=2)
    trainer = BYOLTrainer("cpu", max_epochs, batches, net, opt, train_handlers=[loader, saver])
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: sched.step())
    lrs = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: lrs.append(opt.param_groups[0]["lr"]))
    if stop_after is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
    trainer.run()
    return trainer, sched, lrs, loader


def test_resume_refuses_a_checkpoint_of_other_data_before_loading_anything(tmp_path):
    _run(tmp_path, 2, resume=False)
    other = [*DATA, {"image": "/data/exam_9.npy", "label": 1}]
    encoder = TinyEncoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ValueError, match=r"checkpoint_epoch=2\.pt: it was trained on other data .*4 train items.*5 train"):
        _run(tmp_path, 2, resume=True, data=other, encoder=encoder)
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    _run(tmp_path, 2, resume=False)
    with pytest.raises(ValueError, match=r"written by byol/train\.json, not other/train\.json"):
        _run(tmp_path, 2, resume=True, config="other/train.json")


def test_the_fingerprint_ignores_where_the_data_lies_and_the_order():
    moved = [{"image": p["image"].replace("/data/", "/mnt/disk2/"), "label": p["label"]} for p in reversed(DATA)]
    relabeled = [{**DATA[0], "label": 1}, *DATA[1:]]
    identity = RunIdentity("c", DATA, 2)
    assert identity.check(RunIdentity("c", moved, 2).state_dict()) == ""
    assert "other data" in identity.check(RunIdentity("c", relabeled, 2).state_dict())
    assert "without a run record" in identity.check(None)


def test_resume_with_a_longer_run_makes_the_schedules_follow(tmp_path, caplog):
    _, sched, lrs_first, _ = _run(tmp_path, 2, resume=False, stop_after=1)  # killed after epoch 1 of 2
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=1.pt"
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        trainer, sched, lrs, _ = _run(tmp_path, 4, resume=True)
    assert trainer.state.epoch == 4 and sched.T_max == 4
    assert "run length changed from 2 to 4 epochs" in caplog.text
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] > 0.0  # decreasing towards epoch 4, not 0 at epoch 2
    saved = torch.load(tmp_path / "checkpoint_epoch=4.pt", weights_only=True)
    assert saved["run"]["num_epochs"] == 4 and saved["lr_scheduler"]["T_max"] == 4


def test_extending_a_finished_cosine_run_restarts_on_the_longer_curve(tmp_path):
    _run(tmp_path, 2, resume=False)  # finished: the cosine rate has reached 0
    trainer, sched, lrs, _ = _run(tmp_path, 4, resume=True)
    assert trainer.state.epoch == 4
    # epochs 3 and 4 train on the 4-epoch curve, not at the finished run's 0 (this harness steps the schedule
    # after the checkpoint is saved, so the saved schedule is one step behind the epoch: steps 1 and 2)
    assert lrs == pytest.approx([0.1 * (1 + math.cos(math.pi * step / 4)) / 2 for step in (1, 2)])


def test_resume_keeps_the_saved_schedule_when_the_length_is_unchanged(tmp_path, caplog):
    _run(tmp_path, 3, resume=False, stop_after=1)
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        trainer, sched, lrs, loader = _run(tmp_path, 3, resume=True)
    assert loader.loaded.name == "checkpoint_epoch=1.pt" and trainer.state.epoch == 3 and sched.T_max == 3
    assert "run length changed" not in caplog.text
    first = torch.load(tmp_path / "checkpoint_epoch=3.pt", weights_only=True)["run"]["run_id"]
    assert first == torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)["run"]["run_id"]


def test_resume_past_the_asked_length_names_the_saved_length(tmp_path):
    _run(tmp_path, 3, resume=False)
    with pytest.raises(ValueError, match=r"trained 3 epochs, more than the 2 asked for.*--num_epochs 3"):
        _run(tmp_path, 2, resume=True)


def test_resuming_a_finished_run_says_there_is_nothing_left(tmp_path, caplog):
    _run(tmp_path, 2, resume=False)
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        trainer, *_ = _run(tmp_path, 2, resume=True)
    assert trainer.state.epoch == 2 and "already finished all its 2 epochs" in caplog.text


def test_a_resumed_run_keeps_n_saved_files_and_removes_temporaries(tmp_path):
    _run(tmp_path, 4, resume=False, stop_after=2)
    (tmp_path / ".checkpoint_epoch=3.pt.abc123.tmp").write_bytes(b"half")  # a save killed midway
    (tmp_path / ".unrelated.pt.abc.tmp").write_bytes(b"another program's")
    _run(tmp_path, 4, resume=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".unrelated.pt.abc.tmp", "checkpoint_epoch=3.pt", "checkpoint_epoch=4.pt"]


def test_replace_removes_earlier_checkpoints_for_a_new_run(tmp_path):
    _run(tmp_path, 2, resume=False)
    _, _, _, loader = _run(tmp_path, 1, resume=False, existing_checkpoints="replace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt"] and loader.archived is None


def test_text_flags_and_unknown_policies_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"setting 'resume' must be True or False, got the text 'false'"):
        ResumeFromCheckpoint(tmp_path, {"x": torch.nn.Linear(1, 1)}, enabled="false")
    with pytest.raises(ValueError, match=r"existing_checkpoints.*'keep'"):
        ResumeFromCheckpoint(tmp_path, {"x": torch.nn.Linear(1, 1)}, existing_checkpoints="keep")


def _validated_run(folder, metrics, *, resume, stop_after=None):
    """A trainer whose validator keeps model.pt on ``val_auc`` (one value per epoch) and saves its best state."""
    net = torch.nn.Linear(2, 1)
    validator = Engine(lambda e, b: None)

    @validator.on(Events.EPOCH_COMPLETED)
    def _metric(e):
        e.state.metrics["val_auc"] = metrics[trainer.state.epoch - 1]
        if e.state.metrics["val_auc"] > e.state.best_metric:  # what MONAI's evaluators do with their key metric
            e.state.best_metric, e.state.best_metric_epoch = e.state.metrics["val_auc"], trainer.state.epoch
        with torch.no_grad():
            net.bias.fill_(trainer.state.epoch)  # model.pt then tells which epoch it is from

    validator.state.best_metric, validator.state.best_metric_epoch = -1.0, -1
    best = CheckpointSaver(str(folder), {"model": net}, save_key_metric=True, key_metric_name="val_auc",
                           key_metric_filename="model.pt")
    best.attach(validator)
    trainer = Engine(lambda e, b: None)
    objects = {"network": net, "best_model": best}
    ResumeFromCheckpoint(folder / "ckpt", dict(objects), engine_key="trainer", enabled=resume).attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: validator.run([0]))  # validate, then checkpoint
    CheckpointSaver(str(folder / "ckpt"), dict(objects), engine_key="trainer", save_interval=1).attach(trainer)
    if stop_after:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
    trainer.run([0], max_epochs=len(metrics))
    return validator


def test_the_best_model_survives_a_resume(tmp_path):
    _validated_run(tmp_path, [0.4, 0.27, 0.3], resume=False, stop_after=1)
    assert float(torch.load(tmp_path / "model.pt", weights_only=True)["bias"]) == 1.0
    validator = _validated_run(tmp_path, [0.4, 0.27, 0.3], resume=True)
    # epochs 2 and 3 (0.27, 0.3) are worse than epoch 1 (0.4): model.pt stays epoch 1's
    assert float(torch.load(tmp_path / "model.pt", weights_only=True)["bias"]) == 1.0
    assert validator.state.best_metric == pytest.approx(0.4) and validator.state.best_metric_epoch == 1


def test_a_non_finite_network_never_becomes_the_best_model(tmp_path):
    net = torch.nn.Linear(2, 1)
    engine = Engine(lambda e, b: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _metric(e):
        e.state.metrics["val_auc"] = [0.5, 0.9][e.state.epoch - 1]
        with torch.no_grad():
            net.bias.fill_(float("nan") if e.state.epoch == 2 else 1.0)

    CheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="val_auc",
                    key_metric_filename="model.pt").attach(engine)
    engine.run([0], max_epochs=2)
    assert float(torch.load(tmp_path / "model.pt", weights_only=True)["bias"]) == 1.0


# ---------------------------------------------------------------- schedules restarted from their closed form
def _two_groups() -> tuple[torch.nn.Linear, torch.optim.SGD]:
    net = torch.nn.Linear(2, 1)
    return net, torch.optim.SGD([{"params": [net.weight], "lr": 0.1}, {"params": [net.bias], "lr": 0.03}])


# every schedule type with a closed form, its shape following the run length n
SCHEDULES = {
    "StepLR": lambda opt, n: StepLR(opt, step_size=max(1, n // 3), gamma=0.5),
    "MultiStepLR": lambda opt, n: MultiStepLR(opt, milestones=[n // 2, n // 2, 3 * n // 4], gamma=0.5),
    "ConstantLR": lambda opt, n: ConstantLR(opt, factor=0.25, total_iters=n // 2),
    "LinearLR": lambda opt, n: LinearLR(opt, start_factor=0.2, end_factor=0.9, total_iters=n // 2),
    "ExponentialLR": lambda opt, n: ExponentialLR(opt, gamma=0.01 ** (1 / n)),
    "PolynomialLR": lambda opt, n: PolynomialLR(opt, total_iters=n, power=2.0),
    "CosineAnnealingLR": lambda opt, n: CosineAnnealingLR(opt, T_max=n, eta_min=0.001),
}


class _HalvingLR(LRScheduler):
    """A schedule type the project knows no closed form of: the rate halves every ``T_max`` steps."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int) -> None:  # noqa: N803 (PyTorch's name)
        self.T_max = T_max
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [base * 0.5 ** (self.last_epoch / self.T_max) for base in self.base_lrs]


def test_every_closed_form_type_is_tested():
    _, opt = _two_groups()
    assert {type(make(opt, 8)) for make in SCHEDULES.values()} == set(CLOSED_FORM_SCHEDULERS)


@pytest.mark.parametrize("kind", SCHEDULES)
def test_the_closed_form_is_the_rate_the_schedule_computes_after_n_steps(kind):
    _, opt = _two_groups()
    scheduler = SCHEDULES[kind](opt, 8)
    for _ in range(13):  # past the end of every schedule
        assert closed_form_lr(scheduler) == pytest.approx([g["lr"] for g in opt.param_groups], rel=1e-9, abs=1e-12)
        opt.step()
        scheduler.step()


def test_schedules_without_a_known_closed_form():
    _, opt = _two_groups()
    assert closed_form_lr(_HalvingLR(opt, 4)) is None
    assert closed_form_lr(torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.9**epoch)) is None
    assert closed_form_lr(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)) is None


def test_an_unchanged_shape_keeps_the_saved_rate():
    _, opt = _two_groups()
    scheduler = CosineAnnealingLR(opt, T_max=4)
    opt.param_groups[0]["lr"] = 0.5  # e.g. changed by a warm-up outside the schedule
    assert not follow_schedule_shape(scheduler, {"T_max": 4, "eta_min": 0.0})
    assert opt.param_groups[0]["lr"] == 0.5
    assert follow_schedule_shape(scheduler, {"T_max": 8, "eta_min": 0.0})
    assert scheduler.T_max == 8 and [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.03])


def _schedule_run(folder, make, max_epochs, *, resume, stop_after=None):
    """Epochs of one iteration; at each epoch's end the schedule steps, then a checkpoint is saved.

    Returns the rates of the parameter groups at the start of each epoch, by epoch, and the schedule.
    """
    net, opt = _two_groups()
    scheduler = make(opt, max_epochs)
    objects = {"network": net, "optimizer": opt, "lr_scheduler": scheduler}
    engine = Engine(lambda e, batch: opt.step())
    ResumeFromCheckpoint(folder, dict(objects), engine_key="trainer", enabled=resume).attach(engine)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: scheduler.step())
    CheckpointSaver(str(folder), dict(objects), engine_key="trainer", save_interval=1).attach(engine)
    rates = {}

    @engine.on(Events.EPOCH_STARTED)
    def _record(e):
        rates[e.state.epoch] = [group["lr"] for group in opt.param_groups]

    if stop_after is not None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
    engine.run([0], max_epochs=max_epochs)
    return rates, scheduler


@pytest.mark.parametrize(
    "first_length, stop_after",
    [(4, 2), (4, None), (8, 3)],
    ids=["stopped-then-longer", "finished-then-longer", "stopped"],
)
@pytest.mark.parametrize("kind", SCHEDULES)
def test_the_rate_after_a_resume_is_the_uninterrupted_runs(tmp_path, kind, first_length, stop_after):
    _schedule_run(tmp_path / "first", SCHEDULES[kind], first_length, resume=False, stop_after=stop_after)
    resumed, _ = _schedule_run(tmp_path / "first", SCHEDULES[kind], 8, resume=True)
    uninterrupted, _ = _schedule_run(tmp_path / "once", SCHEDULES[kind], 8, resume=False)
    first_epoch = (stop_after or first_length) + 1
    assert sorted(resumed) == list(range(first_epoch, 9))
    for epoch, rates in resumed.items():
        assert rates == pytest.approx(uninterrupted[epoch], rel=1e-9, abs=1e-12), f"epoch {epoch}"


def test_a_schedule_without_closed_form_keeps_its_saved_rate_and_takes_the_new_shape(tmp_path):
    def make(opt, n):
        return _HalvingLR(opt, T_max=n)

    _schedule_run(tmp_path, make, 4, resume=False, stop_after=3)
    rates, scheduler = _schedule_run(tmp_path, make, 8, resume=True)
    assert scheduler.T_max == 8
    assert rates[4] == pytest.approx([0.1 * 0.5 ** (3 / 4), 0.03 * 0.5 ** (3 / 4)])  # the saved rate
    assert rates[5] == pytest.approx([0.1 * 0.5 ** (4 / 8), 0.03 * 0.5 ** (4 / 8)])  # then the new shape
