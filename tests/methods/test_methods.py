"""The method plug-ins on their own: views, parameter groups, momentum schedules, the registry."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from helpers import TinyEncoder

from monai_ssl.losses import DINOLoss
from monai_ssl.methods import (
    BYOLMethod,
    CASSMethod,
    DINOMethod,
    MethodState,
    SelfSupervisedMethod,
    method_from_name,
    method_optimizers,
)
from monai_ssl.networks import BYOL, CASS, DINO, cosine_momentum


def test_registry_builds_by_name_and_names_the_choices():
    assert isinstance(method_from_name("BYOL", tau_base=0.9), BYOLMethod)
    assert isinstance(method_from_name("dino", out_features=8), DINOMethod)
    plus = method_from_name("byol_plus")
    assert isinstance(plus, BYOLMethod) and plus.name == "byol_plus"
    with pytest.raises(ValueError, match=r"'simclr'.*\['byol', 'byol_plus', 'cass', 'dino'\]"):
        method_from_name("simclr")


def test_view_keys_and_checks():
    assert DINOMethod(out_features=8, global_views=2, local_views=3).view_keys == tuple(f"view{i}" for i in range(1, 6))
    assert CASSMethod().view_keys == ("view1",) and CASSMethod().num_views == 1
    with pytest.raises(ValueError, match="exactly 2 views"):
        BYOLMethod(view_keys=("a",))
    with pytest.raises(ValueError, match="export must be one of"):
        CASSMethod(export="vit")
    with pytest.raises(ValueError, match="the loss expects 4 views"):
        DINOMethod(out_features=8, local_views=1, loss_function=DINOLoss(8, num_views=4))
    with pytest.raises(TypeError):
        SelfSupervisedMethod()  # abstract: needs a loss


def test_byol_momentum_is_byol_trainers_and_moves_the_target():
    method = BYOLMethod(tau_base=0.5, tau_final=0.5)
    assert [method.momentum(k, 10) for k in (0, 5, 10)] == [cosine_momentum(k, 10, 0.5, 0.5) for k in (0, 5, 10)]
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=8, projection_dim=4)
    with torch.no_grad():
        for p in network.online_parameters():
            p.add_(1.0)
    target, online = [p.clone() for p in network.target_parameters()], [p.clone() for p in network.online_parameters()]
    assert method.after_optimizer_step(network, 0, 10) == 0.5
    for new, xi, theta in zip(network.target_parameters(), target, online):
        torch.testing.assert_close(new, 0.5 * xi + 0.5 * theta)
    assert len(method.parameter_groups(network)["network"]) == len(network.online_parameters()) + len(
        list(network.predictor.parameters())
    )


def test_dino_loss_outputs_and_gradient_freeze():
    torch.manual_seed(0)
    network = DINO(TinyEncoder(), out_features=16, hidden_features=8, bottleneck_features=4)
    method = DINOMethod(out_features=16, local_views=1)
    views = [torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), torch.rand(2, 1, 4, 4)]
    state = MethodState(epoch=0, iteration=1, optimizer_steps=0, total_optimizer_steps=4)
    loss, outputs = method.loss(network, views, state)
    assert loss.requires_grad and torch.isfinite(loss)
    assert outputs["teacher_momentum"] == pytest.approx(0.996)
    assert float(loss.detach()) == pytest.approx(float(outputs["teacher_entropy"] + outputs["kl"]), rel=1e-5)
    loss.backward()
    last = list(network.student_head.last_layer.parameters())
    assert any(p.grad is not None for p in last)
    method.before_optimizer_step(network, epoch=1)
    assert any(p.grad is not None for p in last)
    method.before_optimizer_step(network, epoch=0)
    assert all(p.grad is None for p in last)
    assert set(method.parameter_groups(network)) == {"student"}
    assert method.state_modules()["dino_loss"] is method.loss_function
    exported = method.export_backbone(network)
    assert all(p.requires_grad for p in exported.parameters())


def test_cass_loss_gives_gradients_to_both_members():
    torch.manual_seed(0)
    network = CASS(TinyEncoder(), TinyEncoder(out_features=6), out_features=5)
    method = CASSMethod(export="transformer")
    loss, outputs = method.loss(network, [torch.rand(3, 1, 8, 8)], MethodState(0, 1, 0, 1))
    loss.backward()
    for name in ("cnn", "transformer"):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.members[name].head.parameters()), name
    assert float(outputs["cosine"]) == pytest.approx(1 - float(loss.detach()) / 2, abs=1e-6)
    assert list(method.parameter_groups(network)) == ["cnn", "transformer"]
    assert method.export_backbone(network).out_features == 6
    assert set(method.other_backbones(network)) == {"cnn"}


def test_cass_reports_the_spread_of_its_outputs_so_a_constant_solution_is_seen():
    torch.manual_seed(0)
    method = CASSMethod()
    network = CASS(TinyEncoder(), TinyEncoder(out_features=6), out_features=5)
    _, spread_out = method.loss(network, [torch.rand(4, 1, 8, 8)], MethodState(0, 1, 0, 1))
    assert spread_out["projection_dim"] == 5 and float(spread_out["projection_std"]) > 0.01
    with torch.no_grad():  # both networks map every image to one vector: agreement, and no spread at all
        for member in network.members.values():
            member.head.weight.zero_()
            member.head.bias.fill_(1.0)
    loss, collapsed = method.loss(network, [torch.rand(4, 1, 8, 8)], MethodState(0, 1, 0, 1))
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(collapsed["projection_std"]) == pytest.approx(0.0, abs=1e-6)


def test_method_optimizers_keep_the_groups_by_default():
    torch.manual_seed(0)
    network = CASS(TinyEncoder(), TinyEncoder(out_features=6), out_features=5)
    method = CASSMethod()
    optimizers = method_optimizers(method, network, functools.partial(torch.optim.SGD, lr=0.1, weight_decay=0.3))
    groups = method.parameter_groups(network)
    assert len(optimizers) == 2
    for optimizer, params in zip(optimizers, groups.values()):
        assert len(optimizer.param_groups) == 1
        (group,) = optimizer.param_groups
        assert [id(p) for p in group["params"]] == [id(p) for p in params]
        assert group["weight_decay"] == 0.3 and "fixed_weight_decay" not in group


def test_method_optimizers_exclude_bias_and_norm_from_weight_decay():
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=8, projection_dim=4)
    method = BYOLMethod()
    (optimizer,) = method_optimizers(
        method, network, functools.partial(torch.optim.SGD, lr=0.1, weight_decay=0.3),
        exclude_bias_and_norm_from_weight_decay=True,
    )
    params = method.parameter_groups(network)["network"]
    regularised, fixed = optimizer.param_groups
    assert [id(p) for p in regularised["params"]] == [id(p) for p in params if p.ndim >= 2]
    assert [id(p) for p in fixed["params"]] == [id(p) for p in params if p.ndim <= 1]
    assert len(regularised["params"]) + len(fixed["params"]) == len(params)
    # the conv weight and the projector's and predictor's two linear weights each; the rest are biases and norms
    assert all(p.ndim >= 2 for p in regularised["params"]) and len(regularised["params"]) == 1 + 2 + 2
    assert {p.ndim for p in fixed["params"]} == {1}
    assert regularised["weight_decay"] == 0.3 and not regularised.get("fixed_weight_decay", False)
    assert fixed["weight_decay"] == 0.0 and fixed["fixed_weight_decay"] is True
    assert regularised["lr"] == fixed["lr"] == 0.1


def test_dino_reports_the_spread_of_the_teacher_outputs_for_the_collapse_monitor():
    torch.manual_seed(0)
    network = DINO(TinyEncoder(), out_features=16, hidden_features=8, bottleneck_features=4)
    method = DINOMethod(out_features=16)
    _, varied = method.loss(network, [torch.rand(6, 1, 8, 8) for _ in range(2)], MethodState(0, 1, 0, 10))
    assert varied["projection_dim"] == 16 and float(varied["projection_std"]) > 0.01
    assert float(varied["entropy_ratio"]) == pytest.approx(float(varied["teacher_entropy"]) / math.log(16))
    same = torch.rand(1, 1, 8, 8).repeat(6, 1, 1, 1)  # every image the same: one teacher output for all
    _, collapsed = method.loss(network, [same, same.clone()], MethodState(0, 1, 0, 10))
    assert float(collapsed["projection_std"]) == pytest.approx(0.0, abs=1e-6)
