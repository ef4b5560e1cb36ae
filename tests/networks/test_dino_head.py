from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_ssl.networks import DINOHead, cancel_last_layer_gradients


def _last_weight(head: DINOHead) -> torch.Tensor:
    return head.last_layer.weight  # the parametrization's g * v / ||v||


def test_shapes_layers_and_bottleneck():
    head = DINOHead(in_features=12, out_features=20, hidden_features=16, bottleneck_features=8, num_layers=3)
    assert head(torch.randn(5, 12)).shape == (5, 20)
    linears = [m for m in head.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 16), (16, 16), (16, 8)]
    assert sum(isinstance(m, nn.GELU) for m in head.mlp) == 2
    assert not any(isinstance(m, nn.BatchNorm1d) for m in head.mlp)
    assert all(torch.count_nonzero(m.bias) == 0 for m in linears)
    assert head.last_layer.bias is None and _last_weight(head).shape == (20, 8)
    single = DINOHead(in_features=12, out_features=4, bottleneck_features=6, num_layers=1)
    assert [type(m) for m in single.mlp] == [nn.Linear]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in DINOHead(12, 4, 16, 8, use_bn=True).mlp) == 2
    with pytest.raises(ValueError, match="num_layers"):
        DINOHead(12, num_layers=0)


def test_output_is_last_layer_of_the_normalised_bottleneck():
    head = DINOHead(in_features=6, out_features=5, hidden_features=7, bottleneck_features=4).eval()
    x = torch.randn(3, 6)
    bottleneck = head.mlp(x)
    unit = bottleneck / bottleneck.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(head(x), unit @ _last_weight(head).T)
    # scaling the bottleneck does not change the output: it is L2-normalised
    head.mlp[-1].weight.data.mul_(3.0)
    head.mlp[-1].bias.data.mul_(3.0)
    torch.testing.assert_close(head(x), unit @ _last_weight(head).T)


def test_last_layer_rows_have_unit_norm_and_fixed_magnitude():
    head = DINOHead(in_features=6, out_features=10, hidden_features=8, bottleneck_features=4)
    magnitude = head.last_layer.parametrizations.weight.original0
    assert not magnitude.requires_grad
    torch.testing.assert_close(_last_weight(head).norm(dim=1), torch.ones(10))
    optimizer = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=1.0)
    head(torch.randn(4, 6)).pow(2).sum().backward()
    optimizer.step()
    torch.testing.assert_close(_last_weight(head).norm(dim=1), torch.ones(10))  # still unit rows
    free = DINOHead(in_features=6, out_features=10, hidden_features=8, bottleneck_features=4, norm_last_layer=False)
    assert free.last_layer.parametrizations.weight.original0.requires_grad
    torch.testing.assert_close(free.last_layer.parametrizations.weight.original0, torch.ones(10, 1))


def test_gradients_cancelled_in_the_frozen_epoch_only():
    head = DINOHead(in_features=6, out_features=5, hidden_features=8, bottleneck_features=4)
    network = nn.Sequential(nn.Linear(3, 6), head)
    head_last = [p for p in head.last_layer.parameters() if p.requires_grad]
    assert len(head_last) == 1  # the direction v; g is fixed

    def backward() -> None:
        network.zero_grad(set_to_none=True)
        network(torch.randn(4, 3)).sum().backward()

    backward()
    assert cancel_last_layer_gradients(network, epoch=0, freeze_last_layer_epochs=1) is True
    assert all(p.grad is None for p in head.last_layer.parameters())
    assert all(p.grad is not None for p in head.mlp.parameters()) and network[0].weight.grad is not None
    backward()
    assert cancel_last_layer_gradients(network, epoch=1, freeze_last_layer_epochs=1) is False
    assert head_last[0].grad is not None and torch.count_nonzero(head_last[0].grad) > 0
    backward()
    assert cancel_last_layer_gradients(head, epoch=0, freeze_last_layer_epochs=0) is False
    assert head_last[0].grad is not None
    with pytest.raises(ValueError, match="no DINOHead"):
        cancel_last_layer_gradients(nn.Linear(2, 2), epoch=0)


def test_frozen_last_layer_is_not_updated_by_adamw():
    head = DINOHead(in_features=6, out_features=5, hidden_features=8, bottleneck_features=4)
    optimizer = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=0.1, weight_decay=0.4)
    before = _last_weight(head).detach().clone()
    mlp_before = head.mlp[0].weight.detach().clone()
    head(torch.randn(4, 6)).sum().backward()
    cancel_last_layer_gradients(head, epoch=0)
    optimizer.step()
    torch.testing.assert_close(_last_weight(head), before)
    assert not torch.equal(head.mlp[0].weight, mlp_before)
