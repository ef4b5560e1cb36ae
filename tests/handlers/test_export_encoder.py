from __future__ import annotations

import logging

import pytest
import torch

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


@pytest.mark.parametrize("interval, expected", [(1, [1, 2, 3]), (2, [2, 3])])
def test_writes_every_interval_and_at_the_last_epoch(tiny_encoder, tmp_path, monkeypatch, interval, expected):
    written = []
    monkeypatch.setattr(
        "monai_ssl.handlers.export_encoder.atomic_torch_save", lambda obj, path: written.append(path.name)
    )
    _train(tiny_encoder, {"path": tmp_path / "e.pt", "projector_path": tmp_path / "p.pt", "epoch_interval": interval},
           max_epochs=3)
    assert written == [name for _ in expected for name in ("e.pt", "p.pt")]
