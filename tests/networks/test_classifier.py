from __future__ import annotations

import pytest
import torch
from helpers import TinyEncoder

from monai_ssl.networks import BYOL, EncoderClassifier, load_pretrained_encoder


def test_loads_exported_encoder_and_byol_checkpoint(tiny_encoder, tmp_path):
    byol = BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)
    torch.save(byol.online_encoder.state_dict(), tmp_path / "encoder.pt")
    torch.save({"network": byol.state_dict(), "optimizer": {}}, tmp_path / "checkpoint.pt")
    for name in ("encoder.pt", "checkpoint.pt"):
        torch.manual_seed(1)
        fresh = TinyEncoder()
        load_pretrained_encoder(fresh, tmp_path / name)
        for a, b in zip(fresh.state_dict().values(), tiny_encoder.state_dict().values()):
            torch.testing.assert_close(a, b)


def test_missing_file_and_mismatch_are_clear(tiny_encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json"):
        load_pretrained_encoder(tiny_encoder, tmp_path / "nope.pt")
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not match"):
        load_pretrained_encoder(tiny_encoder, tmp_path / "bad.pt")
    for no_file in (None, "", "none", "null"):
        assert load_pretrained_encoder(tiny_encoder, no_file) is tiny_encoder


def test_classifier_shapes_and_frozen_encoder(tiny_encoder):
    model = EncoderClassifier(tiny_encoder, out_channels=3, freeze_encoder=True)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    model.train()
    assert not model.encoder.training and model.head.training
    assert all(not p.requires_grad for p in model.encoder.parameters())
