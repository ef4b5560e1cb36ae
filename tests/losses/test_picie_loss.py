"""PiCIELoss: within-view and cross-view cross-entropy against the cluster labels (Cho et al. 2021, Sec. 3.3)."""

from __future__ import annotations

import math

import pytest
import torch

from monai_ssl.losses import PiCIELoss, cluster_scores


def _ce(scores: list[float], target: int) -> float:
    return -scores[target] + math.log(sum(math.exp(s) for s in scores))


def test_terms_match_a_hand_computation():
    # one pixel per view, D = 2, K = 2
    z1 = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    z2 = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    c1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c2 = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
    y1, y2 = torch.tensor([[[0]]]), torch.tensor([[[1]]])
    terms = PiCIELoss()(z1, z2, c1, c2, y1, y2)
    # scores: z1.c1 = [1, 0]; z2.c2 = [2, 0]; z1.c2 = [0, 2]; z2.c1 = [0, 1]
    within = (_ce([1, 0], 0) + _ce([2, 0], 1)) / 2
    cross = (_ce([0, 2], 1) + _ce([0, 1], 0)) / 2
    assert terms["within"].item() == pytest.approx(within, rel=1e-6)
    assert terms["cross"].item() == pytest.approx(cross, rel=1e-6)
    assert terms["loss"].item() == pytest.approx((within + cross) / 2, rel=1e-6)


def test_weights_follow_torch_cross_entropy():
    torch.manual_seed(0)
    z1, z2 = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    c1, c2 = torch.randn(3, 4), torch.randn(3, 4)
    y1, y2 = torch.randint(0, 3, (2, 3, 3)), torch.randint(0, 3, (2, 3, 3))
    w1, w2 = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.1, 0.1, 0.8])
    ce = torch.nn.functional.cross_entropy
    terms = PiCIELoss()(z1, z2, c1, c2, y1, y2, w1, w2)
    within = (ce(cluster_scores(z1, c1), y1, weight=w1) + ce(cluster_scores(z2, c2), y2, weight=w2)) / 2
    cross = (ce(cluster_scores(z1, c2), y2, weight=w2) + ce(cluster_scores(z2, c1), y1, weight=w1)) / 2
    assert torch.allclose(terms["loss"], (within + cross) / 2)


def test_gradient_reaches_the_features_not_the_centroids():
    z1 = torch.randn(1, 4, 2, 2, requires_grad=True)
    z2 = torch.randn(1, 4, 2, 2, requires_grad=True)
    c = torch.randn(2, 4, requires_grad=True)
    y = torch.zeros(1, 2, 2, dtype=torch.long)
    PiCIELoss()(z1, z2, c, c, y, y)["loss"].backward()
    assert z1.grad is not None and z2.grad is not None and z1.grad.abs().sum() > 0
    assert c.grad is None


def test_shape_errors_name_the_argument():
    z = torch.randn(1, 4, 2, 2)
    c = torch.randn(2, 4)
    y = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="one shape"):
        PiCIELoss()(z, torch.randn(1, 4, 3, 3), c, c, y, y)
    with pytest.raises(ValueError, match="labels2"):
        PiCIELoss()(z, z, c, c, y, torch.zeros(1, 3, 3, dtype=torch.long))
