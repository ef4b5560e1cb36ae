from __future__ import annotations

import math

import pytest
import torch

from monai_ssl.losses import BYOLLoss


def test_hand_computed_values():
    p1 = torch.tensor([[1.0, 0.0]])
    p2 = torch.tensor([[1.0, 1.0]])
    z1 = torch.tensor([[2.0, 2.0]])  # same direction as p2: that term is 0
    z2 = torch.tensor([[0.0, 3.0]])  # orthogonal to p1: that term is 2
    assert BYOLLoss()(p1, p2, z1, z2).item() == pytest.approx(2.0)
    # 60 degrees: 2 - 2 cos = 1 for each term
    q = torch.tensor([[1.0, 0.0]])
    z = torch.tensor([[0.5, math.sqrt(3) / 2]])
    assert BYOLLoss()(q, q, z, z).item() == pytest.approx(2.0)


def test_range_end_points_and_reductions():
    x = torch.randn(4, 8)
    assert BYOLLoss()(x, x, x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert BYOLLoss()(x, x, -x, -x).item() == pytest.approx(8.0)
    per_sample = BYOLLoss(reduction="none")(x, x, -x, -x)
    assert per_sample.shape == (4,)
    assert BYOLLoss(reduction="sum")(x, x, -x, -x).item() == pytest.approx(32.0)


def test_no_gradient_into_targets():
    p = torch.randn(3, 4, requires_grad=True)
    z = torch.randn(3, 4, requires_grad=True)
    BYOLLoss()(p, p, z, z).backward()
    assert p.grad is not None and z.grad is None
