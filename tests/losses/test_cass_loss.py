from __future__ import annotations

import math

import pytest
import torch

from monai_ssl.losses import CASSLoss


def test_hand_computed_values():
    cnn = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.0, 1.0]])
    # same direction (0), orthogonal (2), 60 degrees apart (2 - 2 * 0.5 = 1)
    transformer = torch.tensor([[5.0, 0.0], [0.0, 0.5], [(1 - math.sqrt(3)) / 2, (1 + math.sqrt(3)) / 2]])
    per_sample = CASSLoss(reduction="none")(cnn, transformer)
    assert per_sample.shape == (3,)
    assert per_sample.tolist() == pytest.approx([0.0, 2.0, 1.0], abs=1e-6)
    assert CASSLoss()(cnn, transformer).item() == pytest.approx(1.0)
    assert CASSLoss(reduction="sum")(cnn, transformer).item() == pytest.approx(3.0)


def test_identical_outputs_give_the_minimum_and_opposite_ones_the_maximum():
    torch.manual_seed(0)
    x = torch.randn(8, 16)
    assert CASSLoss()(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert CASSLoss()(x, 2.5 * x).item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    assert CASSLoss()(x, -x).item() == pytest.approx(4.0)
    other = torch.randn(8, 16)
    assert 0.0 < CASSLoss()(x, other).item() < 4.0


def test_symmetric_in_its_two_inputs():
    torch.manual_seed(1)
    a, b = torch.randn(4, 10), torch.randn(4, 10)
    assert CASSLoss()(a, b).item() == pytest.approx(CASSLoss()(b, a).item())


def test_both_networks_receive_gradients():
    torch.manual_seed(2)
    cnn = torch.nn.Linear(6, 5)
    transformer = torch.nn.Linear(6, 5)
    image_features = torch.randn(4, 6)
    CASSLoss()(cnn(image_features), transformer(image_features)).backward()
    for network in (cnn, transformer):
        assert network.weight.grad is not None
        assert network.weight.grad.abs().sum().item() > 0.0


def test_gradient_step_brings_the_outputs_together():
    cnn_output = torch.tensor([[1.0, 0.0]], requires_grad=True)
    transformer_output = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss = CASSLoss()(cnn_output, transformer_output)
    loss.backward()
    with torch.no_grad():
        moved = CASSLoss()(cnn_output - 0.1 * cnn_output.grad, transformer_output - 0.1 * transformer_output.grad)
    assert moved.item() < loss.item()
    # each output is pulled towards the other's direction
    assert cnn_output.grad[0, 1].item() < 0.0 and transformer_output.grad[0, 0].item() < 0.0


def test_mismatched_shapes_and_unknown_reduction_are_refused():
    with pytest.raises(ValueError, match="CNN \\(2, 4\\), Transformer \\(2, 3\\)"):
        CASSLoss()(torch.randn(2, 4), torch.randn(2, 3))
    with pytest.raises(ValueError, match="reduction"):
        CASSLoss(reduction="max")
