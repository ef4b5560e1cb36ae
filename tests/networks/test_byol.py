from __future__ import annotations

import pytest
import torch

from monai_ssl.networks import BYOL


@pytest.fixture
def byol(tiny_encoder):
    return BYOL(tiny_encoder, hidden_dim=16, projection_dim=4)


def test_outputs_and_stop_gradient(byol):
    out = byol(torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8))
    assert set(out) == {"online_pred1", "online_pred2", "target_proj1", "target_proj2", "online_proj1", "online_proj2"}
    assert all(v.shape == (3, 4) for v in out.values())
    assert out["online_pred1"].requires_grad and not out["target_proj1"].requires_grad
    assert all(not p.requires_grad for p in byol.target_parameters())


def test_target_starts_as_copy_and_follows_online(byol):
    for t, o in zip(byol.target_parameters(), byol.online_parameters()):
        torch.testing.assert_close(t, o)
        assert t.data_ptr() != o.data_ptr()
    with torch.no_grad():
        for p in byol.online_parameters():
            p.add_(1.0)
    before = [t.clone() for t in byol.target_parameters()]
    byol.update_target(1.0)
    for t, b in zip(byol.target_parameters(), before):
        torch.testing.assert_close(t, b)
    byol.update_target(0.9)
    for t, b in zip(byol.target_parameters(), before):
        torch.testing.assert_close(t, b + 0.1)
    byol.update_target(0.0)
    for t, o in zip(byol.target_parameters(), byol.online_parameters()):
        torch.testing.assert_close(t, o)


def test_update_after_load_state_dict_uses_the_loaded_tensors(byol, tiny_encoder):
    byol.update_target(0.5)  # builds the cached parameter lists
    other = BYOL(type(tiny_encoder)(), hidden_dim=16, projection_dim=4)
    byol.load_state_dict(other.state_dict())
    byol.update_target(0.0)
    for t, o in zip(byol.target_parameters(), other.online_parameters()):
        torch.testing.assert_close(t, o)


def test_export_backbone_is_an_independent_copy(byol):
    backbone = byol.export_backbone()
    with torch.no_grad():
        next(backbone.parameters()).add_(1.0)
    assert not torch.equal(next(backbone.parameters()), next(byol.online_encoder.parameters()))


def test_clear_errors(byol, tiny_encoder):
    with pytest.raises(ValueError, match="at least 2 samples"):
        byol(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        byol(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 6, 6))
    with pytest.raises(ValueError, match="feature_dim"):
        BYOL(torch.nn.Identity())
