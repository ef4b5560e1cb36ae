from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Events

from monai_ssl.engines import BYOLTrainer
from monai_ssl.handlers import EncoderExporter
from monai_ssl.networks import BYOL


def _train(encoder, exporter_kwargs, max_epochs=1):
    """One short BYOL run (tau 0.5, so target != online afterwards) with an ``EncoderExporter`` attached."""
    g = torch.Generator().manual_seed(0)
    data = [{"view1": torch.rand(4, 1, 8, 8, generator=g), "view2": torch.rand(4, 1, 8, 8, generator=g)}]
    net = BYOL(encoder, hidden_dim=16, projection_dim=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    exporter = EncoderExporter(net, **exporter_kwargs)
    trainer = BYOLTrainer("cpu", max_epochs, data, net, opt, tau_base=0.5, tau_final=0.5, train_handlers=[exporter])
    trainer.run()
    return net


def _assert_same_state(saved, module):
    expected = module.state_dict()
    assert list(saved) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(saved[key], value, msg=key)


def _differs_in_weights(saved, module):
    return any(not torch.equal(saved[k], v) for k, v in module.state_dict().items() if k.endswith("weight"))


def test_exports_the_online_encoder_not_the_target(tiny_encoder, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        net = _train(tiny_encoder, {"path": tmp_path / "models" / "encoder.pt"})
    saved = torch.load(tmp_path / "models" / "encoder.pt", weights_only=True)
    _assert_same_state(saved, net.online_encoder)
    assert _differs_in_weights(saved, net.target_encoder)
    assert not (tmp_path / "models" / "projector.pt").exists()
    assert "pre-trained encoder written to" in caplog.text


def test_exports_the_online_projector_when_asked(tiny_encoder, tmp_path):
    net = _train(tiny_encoder, {"path": tmp_path / "encoder.pt", "projector_path": tmp_path / "projector.pt"})
    encoder, projector = (torch.load(tmp_path / f, weights_only=True) for f in ("encoder.pt", "projector.pt"))
    _assert_same_state(encoder, net.online_encoder)  # the encoder file keeps its format
    _assert_same_state(projector, net.online_projector)
    assert _differs_in_weights(projector, net.target_projector)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # atomic writes leave no temporary file


def test_writes_once_when_the_run_completes(tiny_encoder, tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(
        "monai_ssl.handlers.export_encoder.atomic_torch_save", lambda obj, path: written.append(path.name)
    )
    _train(tiny_encoder, {"path": tmp_path / "e.pt", "projector_path": tmp_path / "p.pt"}, max_epochs=3)
    assert written == ["e.pt", "p.pt"]


def test_a_run_that_fails_leaves_the_previous_encoder(tiny_encoder, tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save({"previous": torch.ones(1)}, path)
    g = torch.Generator().manual_seed(0)
    data = [{"view1": torch.rand(4, 1, 8, 8, generator=g), "view2": torch.rand(4, 1, 8, 8, generator=g)}]
    net = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    trainer = BYOLTrainer("cpu", 3, data, net, torch.optim.SGD(net.parameters(), lr=0.1),
                          train_handlers=[EncoderExporter(net, path)])

    @trainer.on(Events.EPOCH_COMPLETED(once=2))
    def _killed(_):
        raise RuntimeError("killed at epoch 2")

    with pytest.raises(RuntimeError, match="killed at epoch 2"):
        trainer.run()
    assert list(torch.load(path, weights_only=True)) == ["previous"]


def test_refuses_to_export_non_finite_weights(tiny_encoder, tmp_path):
    path = tmp_path / "encoder.pt"
    g = torch.Generator().manual_seed(0)
    data = [{"view1": torch.rand(4, 1, 8, 8, generator=g), "view2": torch.rand(4, 1, 8, 8, generator=g)}]
    net = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    trainer = BYOLTrainer("cpu", 1, data, net, torch.optim.SGD(net.parameters(), lr=0.1),
                          train_handlers=[EncoderExporter(net, path)])

    @trainer.on(Events.EPOCH_COMPLETED)
    def _diverge(_):
        with torch.no_grad():
            next(net.online_encoder.parameters()).fill_(float("nan"))

    with pytest.raises(FloatingPointError, match="not writing .*encoder.pt.*NaN/inf"):
        trainer.run()
    assert not path.exists()


def test_a_run_stopped_by_the_nan_guard_exports_nothing(tiny_encoder, tmp_path):
    path = tmp_path / "encoder.pt"
    data = [{"view1": torch.full((4, 1, 8, 8), float("nan")), "view2": torch.rand(4, 1, 8, 8)}]
    net = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    trainer = BYOLTrainer("cpu", 2, data, net, torch.optim.SGD(net.parameters(), lr=0.1),
                          train_handlers=[EncoderExporter(net, path)])
    with pytest.raises(FloatingPointError, match="BYOL loss is nan"):
        trainer.run()
    assert not path.exists()
