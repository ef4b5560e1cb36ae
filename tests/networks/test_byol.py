from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from monai_ssl.losses import BYOLLoss
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


def _views(batch=4):
    g = torch.Generator().manual_seed(3)
    return torch.rand(batch, 1, 8, 8, generator=g), torch.rand(batch, 1, 8, 8, generator=g)


def test_online_prediction_goes_through_the_trained_predictor(byol):
    """q_theta(z_theta) is the online output (Grill et al. eq. 2), not the projection z_theta itself."""
    out = byol(*_views())
    torch.testing.assert_close(out["online_pred1"], byol.predictor(out["online_proj1"]))
    assert not torch.allclose(out["online_pred1"], out["online_proj1"])
    BYOLLoss()(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"]).backward()
    for name, p in byol.predictor.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"predictor.{name} got no gradient"


def test_target_batch_norm_runs_on_its_own_batch_statistics(byol):
    """Policy: in training the target's batch norm uses the batch statistics, like the online network's."""
    view1, view2 = _views()
    target = nn.Sequential(copy.deepcopy(byol.target_encoder), copy.deepcopy(byol.target_projector))
    byol.train()
    out = byol(view1, view2)
    with torch.no_grad():
        in_eval_mode = target.eval()(view1)
        in_train_mode = target.train()(view1)
    torch.testing.assert_close(out["target_proj1"], in_train_mode)
    assert not torch.allclose(out["target_proj1"], in_eval_mode, atol=1e-3)
    modules = (*byol.target_encoder.modules(), *byol.target_projector.modules())
    bns = [m for m in modules if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert bns and all(int(m.num_batches_tracked) == 2 for m in bns)  # one forward per view, own running stats


def test_target_running_stats_are_its_own_not_averaged(byol):
    """Only parameters are averaged (eq. 1): the target's running statistics are left to its own forwards."""
    byol(*_views())
    bn_t, bn_o = byol.target_encoder[1], byol.online_encoder[1]
    before = bn_t.running_mean.clone()
    with torch.no_grad():
        bn_o.running_mean.add_(5.0)
    byol.update_target(0.0)
    torch.testing.assert_close(bn_t.running_mean, before)
