from __future__ import annotations

import pytest
import torch
from helpers import TinyEncoder

from ignite.engine import Events

from monai_ssl.engines import BYOLTrainer
from monai_ssl.handlers.checkpoint import CheckpointSaver, ResumeFromCheckpoint, latest_checkpoint
from monai_ssl.networks import BYOL


def _setup(encoder, max_epochs):
    data = [{"view1": torch.rand(2, 1, 8, 8), "view2": torch.rand(2, 1, 8, 8)} for _ in range(2)]
    net = BYOL(encoder, hidden_dim=16, projection_dim=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    trainer = BYOLTrainer("cpu", max_epochs, data, net, opt)
    return trainer, {"network": net, "optimizer": opt, "trainer": trainer}


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


def test_resume_errors(tiny_encoder, tmp_path):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    (tmp_path / "checkpoint_epoch=1.pt").write_bytes(b"truncated")
    ResumeFromCheckpoint(tmp_path, objects).attach(trainer)
    with pytest.raises(RuntimeError, match="cannot read checkpoint"):
        trainer.run()


def test_resume_without_checkpoint_starts_fresh(tiny_encoder, tmp_path, caplog):
    trainer, objects = _setup(tiny_encoder, max_epochs=1)
    ResumeFromCheckpoint(tmp_path, objects).attach(trainer)
    trainer.run()
    assert trainer.state.epoch == 1 and "starting fresh" in caplog.text
