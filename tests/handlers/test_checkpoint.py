from __future__ import annotations

import math

import pytest
import torch
from helpers import TinyEncoder

from ignite.engine import Engine, Events
from ignite.handlers import DiskSaver
from ignite.handlers.checkpoint import BaseSaveHandler

from monai_ssl.engines import BYOLTrainer
from monai_ssl.handlers import AtomicDiskSaver, CheckpointSaver, ResumeFromCheckpoint, latest_checkpoint
from monai_ssl.handlers.checkpoint import with_saved_files
from monai_ssl.networks import BYOL


def _setup(encoder, max_epochs):
    data = [{"view1": torch.rand(2, 1, 8, 8), "view2": torch.rand(2, 1, 8, 8)} for _ in range(2)]
    net = BYOL(encoder, hidden_dim=16, projection_dim=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    trainer = BYOLTrainer("cpu", max_epochs, data, net, opt)
    return trainer, {"network": net, "optimizer": opt, "trainer": trainer}


class _Unpicklable:
    def __reduce__(self):
        raise OSError("disk full")


class _Weights:
    """An object to checkpoint whose saved value is the epoch, and whose save fails when asked to."""

    def __init__(self, fail_at_epoch: int | None = None) -> None:
        self.epoch = 0
        self.fail_at_epoch = fail_at_epoch

    def state_dict(self) -> dict:
        state = {"epoch": torch.tensor(self.epoch)}
        if self.epoch == self.fail_at_epoch:
            state["broken"] = _Unpicklable()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])


def _evaluator(weights: _Weights, metrics: list[float]) -> Engine:
    """A 1-iteration-per-epoch engine that sets ``weights.epoch`` and ``state.metrics["val_auc"]``."""
    engine = Engine(lambda e, batch: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _metrics(e):
        weights.epoch = e.state.epoch
        e.state.metrics["val_auc"] = metrics[e.state.epoch - 1]

    return engine


def _saved_epoch(path) -> int:
    return int(torch.load(path, weights_only=True)["epoch"])


def test_latest_checkpoint_orders_by_number(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for n in (2, 9, 10):
        (tmp_path / f"checkpoint_epoch={n}.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=10.pt"


def test_saves_atomically_and_resumes_where_it_stopped(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=2)
    CheckpointSaver(str(tmp_path), objects, save_interval=1, n_saved=1).attach(trainer)
    trainer.run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt"]  # no temp files left
    saved = torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)
    assert saved["trainer"]["optimizer_steps"] == 4 and saved["trainer"]["iteration"] == 4

    resumed, objects2 = _setup(TinyEncoder(), max_epochs=3)
    epochs = []
    resumed.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs.append(e.state.epoch))
    handler = ResumeFromCheckpoint(tmp_path, objects2)
    handler.attach(resumed)
    resumed.run()
    assert handler.loaded.name == "checkpoint_epoch=2.pt"
    assert epochs == [3] and resumed.state.optimizer_steps == 6
    target = resumed.network.target_parameters()[0]
    assert not torch.equal(target, objects["network"].target_parameters()[0])  # trained on from the saved state


def test_engine_key_adds_the_engine_to_the_checkpoint(tmp_path):
    weights = _Weights()
    engine = _evaluator(weights, [0.5])
    CheckpointSaver(str(tmp_path), {"weights": weights}, engine_key="engine", save_interval=1).attach(engine)
    engine.run([0], max_epochs=1)
    saved = torch.load(tmp_path / "checkpoint_epoch=1.pt", weights_only=True)
    assert set(saved) == {"weights", "engine"} and saved["engine"]["iteration"] == 1


def test_files_are_written_by_the_atomic_save_handler(tmp_path):
    saver = CheckpointSaver(str(tmp_path), {"weights": _Weights()}, save_final=True, save_key_metric=True,
                            key_metric_name="val_auc", save_interval=1)
    checkpoints = (saver.final_checkpoint, saver.key_metric_checkpoint, saver.interval_checkpoint)
    # Ignite's public save-handler interface, not a subclass of its DiskSaver
    assert all(isinstance(c.save_handler, AtomicDiskSaver) for c in checkpoints)
    assert all(isinstance(c.save_handler, BaseSaveHandler) and not isinstance(c.save_handler, DiskSaver)
               for c in checkpoints)


def test_atomic_save_leaves_no_partial_file_when_torch_save_raises(tmp_path, monkeypatch):
    saver = AtomicDiskSaver(tmp_path / "new")  # creates its folder
    saver({"epoch": torch.tensor(1)}, "model.pt")
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        saver({"epoch": torch.tensor(2)}, "model.pt")
    with pytest.raises(OSError, match="disk full"):
        saver({"epoch": torch.tensor(2)}, "other.pt")
    monkeypatch.setattr(torch, "save", real_save)
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["model.pt"]  # no temporary, no other.pt
    assert _saved_epoch(tmp_path / "new" / "model.pt") == 1


def test_atomic_saver_removes_a_replaced_file_only_after_the_next_save(tmp_path):
    saver = AtomicDiskSaver(tmp_path)
    saver({"epoch": torch.tensor(1)}, "a_epoch=1.pt")
    saver.remove("a_epoch=1.pt")
    assert (tmp_path / "a_epoch=1.pt").is_file()  # still there: nothing replaces it yet
    saver({"epoch": torch.tensor(2)}, "a_epoch=2.pt", {"priority": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_epoch=2.pt"]
    fixed = AtomicDiskSaver(tmp_path, filename="model.pt")
    fixed({"epoch": torch.tensor(3)}, "ignored_name.pt")
    fixed.remove("model.pt")  # a fixed name is replaced by the next save, never removed
    fixed({"epoch": torch.tensor(4)}, "ignored_name.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_epoch=2.pt", "model.pt"]
    assert _saved_epoch(tmp_path / "model.pt") == 4


def _engine_at_epoch(epoch: int, max_epochs: int) -> Engine:
    """A 1-iteration-per-epoch engine that continues after ``epoch`` (as a resumed run does)."""
    engine = Engine(lambda e, batch: None)
    engine.load_state_dict({"epoch": epoch, "max_epochs": max_epochs, "epoch_length": 1})
    return engine


def test_periodic_files_on_disk_count_in_n_saved_when_a_run_resumes(tmp_path):
    for n in (1, 2):  # the run being resumed kept its n_saved=2 files
        torch.save({"epoch": torch.tensor(n)}, tmp_path / f"checkpoint_epoch={n}.pt")
    (tmp_path / "checkpoint_iteration=7.pt").write_bytes(b"")  # another kind of periodic file: not counted
    (tmp_path / "checkpoint_final_iteration=2.pt").write_bytes(b"")
    engine = _engine_at_epoch(2, max_epochs=4)
    saver = CheckpointSaver(str(tmp_path), {"weights": _Weights()}, engine_key="engine", save_interval=1, n_saved=2)
    saver.attach(engine)
    saver.started(engine)
    saver.started(engine)  # every start of the engine counts them (a second run of one trainer): never twice
    counted = [tuple(item) for items in saver.interval_checkpoint.state_dict().values() for item in items]
    assert counted == [(1, "checkpoint_epoch=1.pt"), (2, "checkpoint_epoch=2.pt")]
    engine.run([0])  # epochs 3 and 4: each removes the oldest file, as in a run that was never stopped
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint_epoch=3.pt", "checkpoint_epoch=4.pt", "checkpoint_final_iteration=2.pt",
                     "checkpoint_iteration=7.pt"]


def test_with_saved_files_adds_the_files_by_priority_once():
    state = {"items": [(2, "b.pt"), (5, "e.pt")], "other": 1}
    merged = with_saved_files(state, [(1, "a.pt"), (5, "e.pt"), (3, "c.pt")])
    assert merged == {"items": [(1, "a.pt"), (2, "b.pt"), (3, "c.pt"), (5, "e.pt")], "other": 1}
    assert state["items"] == [(2, "b.pt"), (5, "e.pt")]  # the given state is left as it was


@pytest.mark.parametrize(
    "kind, kept",
    [
        ({"save_key_metric": True, "key_metric_name": "val_auc", "key_metric_filename": "model.pt"}, "model.pt"),
        ({"save_interval": 1, "n_saved": 1}, "weights_epoch=1.pt"),  # one saved object names the file
    ],
)
def test_a_failing_save_keeps_the_previous_file(tmp_path, kind, kept):
    # MONAI's CheckpointSaver leaves a truncated model.pt / weights_epoch=2.pt here
    weights = _Weights(fail_at_epoch=2)
    engine = _evaluator(weights, [0.5, 0.9])
    CheckpointSaver(str(tmp_path), {"weights": weights}, **kind).attach(engine)
    with pytest.raises(OSError, match="disk full"):
        engine.run([0], max_epochs=2)
    # Ignite removes the replaced file before writing the new one: here that waits for a complete save
    assert [p.name for p in tmp_path.iterdir()] == [kept]  # and no temporary file
    assert _saved_epoch(tmp_path / kept) == 1


def test_fixed_filename_holds_the_best_and_a_nan_metric_never_wins(tmp_path, caplog):
    weights = _Weights()
    engine = _evaluator(weights, [math.nan, 0.6, 0.8, math.nan, 0.7])
    saver = CheckpointSaver(str(tmp_path), {"weights": weights}, save_key_metric=True, key_metric_name="val_auc",
                            key_metric_filename="model.pt", name="test_checkpoint")
    saver.attach(engine)
    best = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: best.append(_saved_epoch(tmp_path / "model.pt")))
    engine.run([0], max_epochs=5)
    # epoch 1 is saved (nothing better yet) but any defined score replaces it; the NaN epoch 4 never does
    assert best == [1, 2, 3, 3, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert "val_auc=nan at epoch 1" in caplog.text and "val_auc=nan at epoch 4" in caplog.text


def test_final_checkpoint_with_fixed_name(tmp_path):
    weights = _Weights()
    engine = _evaluator(weights, [0.5, 0.5])
    CheckpointSaver(str(tmp_path), {"weights": weights}, save_final=True, final_filename="last.pt").attach(engine)
    engine.run([0, 1], max_epochs=2)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"] and _saved_epoch(tmp_path / "last.pt") == 2


def test_resume_from_unreadable_file_names_it(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes(b"truncated")
    ResumeFromCheckpoint(tmp_path, objects).attach(trainer)
    with pytest.raises(RuntimeError, match=r"cannot load checkpoint .*checkpoint_epoch=1\.pt"):
        trainer.run()


def test_resume_loads_weights_only(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    state = {k: v.state_dict() for k, v in objects.items()}
    torch.save({**state, "extra": _Weights()}, tmp_path / "checkpoint_epoch=1.pt")  # an arbitrary pickled object
    ResumeFromCheckpoint(tmp_path, objects).attach(trainer)
    with pytest.raises(RuntimeError, match="Weights only load failed"):
        trainer.run()


def test_resume_from_file_without_an_entry_names_it(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    torch.save({"network": objects["network"].state_dict()}, tmp_path / "checkpoint_epoch=1.pt")
    ResumeFromCheckpoint(tmp_path, objects).attach(trainer)
    with pytest.raises(ValueError, match=r"checkpoint_epoch=1\.pt.*'optimizer'"):
        trainer.run()


def test_resume_past_max_epochs_is_an_error(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=2)
    CheckpointSaver(str(tmp_path), objects, save_interval=1).attach(trainer)
    trainer.run()
    resumed, objects2 = _setup(TinyEncoder(), max_epochs=1)
    ResumeFromCheckpoint(tmp_path, objects2).attach(resumed)
    with pytest.raises(ValueError, match=r"checkpoint_epoch=2\.pt.*max_epochs"):
        resumed.run()


def test_a_new_run_refuses_a_folder_with_checkpoints(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    CheckpointSaver(str(tmp_path), objects, save_interval=1).attach(trainer)
    trainer.run()
    fresh, objects2 = _setup(TinyEncoder(), max_epochs=1)
    ResumeFromCheckpoint(tmp_path, objects2, enabled=False).attach(fresh)
    with pytest.raises(FileExistsError, match=r"earlier run .*checkpoint_epoch=1\.pt.*--resume True.*--existing_checkpoints"):
        fresh.run()


def test_a_new_run_archives_earlier_checkpoints_when_asked(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    CheckpointSaver(str(tmp_path), objects, save_interval=1).attach(trainer)
    trainer.run()
    fresh, objects2 = _setup(TinyEncoder(), max_epochs=1)
    objects2.pop("trainer")
    handler = ResumeFromCheckpoint(tmp_path, objects2, engine_key="trainer", enabled=False, existing_checkpoints="archive")
    handler.attach(fresh)
    assert objects2["trainer"] is fresh  # the engine is named even when resuming is switched off
    fresh.run()
    assert handler.loaded is None and fresh.state.iteration == 2
    assert handler.archived == tmp_path / "archive" / "1"
    assert [p.name for p in handler.archived.iterdir()] == ["checkpoint_epoch=1.pt"]
    assert latest_checkpoint(tmp_path) is None


def test_resume_without_checkpoint_starts_fresh(tiny_encoder, tmp_path, caplog):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    ResumeFromCheckpoint(tmp_path, objects).attach(trainer)
    trainer.run()
    assert trainer.state.epoch == 1 and "starting fresh" in caplog.text
