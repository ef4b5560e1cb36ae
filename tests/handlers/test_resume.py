from __future__ import annotations

import logging
import math

import pytest
import torch
from helpers import TinyEncoder
from ignite.engine import Engine, Events

from monai_ssl.engines import BYOLTrainer
from monai_ssl.handlers import CheckpointSaver, ResumeFromCheckpoint, RunIdentity, latest_checkpoint
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
