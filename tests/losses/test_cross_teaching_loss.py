from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceLoss

from monai_ssl.losses import CrossTeachingLoss, cross_teaching_weight, sigmoid_rampup


def _logits_from_mask(mask, scale=20.0):
    """2-class logits whose argmax is ``mask`` (B, 1, H, W), confident with ``scale``."""
    one = mask.float()
    return torch.cat([(1 - one) * scale, one * scale], dim=1)


def test_ramp_end_points_and_shape():
    assert sigmoid_rampup(0.0) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(1.0) == 1.0
    assert sigmoid_rampup(2.0) == 1.0 and sigmoid_rampup(-1.0) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(0.5) == pytest.approx(math.exp(-1.25))
    assert cross_teaching_weight(0, 100) == pytest.approx(0.1 * math.exp(-5))
    assert cross_teaching_weight(100, 100) == pytest.approx(0.1)
    assert cross_teaching_weight(25, 100, max_weight=1.0, rampup_fraction=0.5) == pytest.approx(math.exp(-1.25))
    assert cross_teaching_weight(80, 100, max_weight=1.0, rampup_fraction=0.5) == 1.0
    weights = [cross_teaching_weight(s, 50) for s in range(51)]
    assert all(a < b for a, b in zip(weights, weights[1:]))
    with pytest.raises(ValueError, match="rampup_fraction"):
        cross_teaching_weight(0, 10, rampup_fraction=0)
    with pytest.raises(ValueError, match="max_weight"):
        cross_teaching_weight(0, 10, max_weight=-1)


def test_supervised_term_is_half_ce_plus_half_dice_on_hand_made_tensors():
    labels = torch.tensor([[[[0, 1], [1, 1]]]])  # (1, 1, 2, 2)
    logits = torch.tensor([[[[1.0, 0.0], [0.5, -1.0]], [[0.0, 2.0], [0.0, 1.0]]]])  # (1, 2, 2, 2)
    terms = CrossTeachingLoss()([logits, logits], labels, [logits[:0], logits[:0]], weight=0.1)
    prob = logits.softmax(dim=1)
    onehot = torch.cat([labels == 0, labels == 1], dim=1).float()
    ce = -(onehot * prob.log()).sum(dim=1).mean()
    inter = (prob * onehot).sum(dim=(0, 2, 3))
    dice = 1 - ((2 * inter + 1e-5) / (prob.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3)) + 1e-5)).mean()
    expected = 0.5 * (ce + dice)
    for s in terms.supervised:
        torch.testing.assert_close(s, expected)
    assert all(c.item() == 0.0 for c in terms.cross)  # no unlabeled images: no cross term
    torch.testing.assert_close(terms.loss, 2 * expected)


def test_cross_term_is_dice_against_the_other_networks_argmax_weighted():
    a_mask = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    a_mask[:, :, :2] = 1
    b_mask = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    b_mask[:, :, :, :2] = 1
    a_u, b_u = _logits_from_mask(a_mask, 3.0), _logits_from_mask(b_mask, 3.0)
    labels = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    a_l = b_l = _logits_from_mask(labels)
    terms = CrossTeachingLoss()([a_l, b_l], labels, [a_u, b_u], weight=0.25)
    dice = DiceLoss(to_onehot_y=True, softmax=True, batch=True)
    torch.testing.assert_close(terms.cross[0], dice(a_u, b_mask))  # network A learns from B's argmax
    torch.testing.assert_close(terms.cross[1], dice(b_u, a_mask))
    assert torch.equal(terms.pseudo_labels[0], a_mask) and torch.equal(terms.pseudo_labels[1], b_mask)
    torch.testing.assert_close(terms.loss, sum(terms.supervised) + 0.25 * sum(terms.cross))
    # agreeing networks have (almost) no cross loss
    same = CrossTeachingLoss()([a_l, b_l], labels, [a_u, _logits_from_mask(a_mask, 3.0)], weight=1.0)
    assert same.cross[0] < terms.cross[0]


def test_gradients_reach_both_networks_but_never_through_the_pseudo_label():
    torch.manual_seed(0)
    net_a, net_b = torch.nn.Conv2d(1, 2, 1), torch.nn.Conv2d(1, 2, 1)
    x_l, x_u = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    labels = (x_l > 0.5).long()
    loss_fn = CrossTeachingLoss()
    # only the cross term of network A: B's parameters must get no gradient from it
    terms = loss_fn([net_a(x_l), net_b(x_l)], labels, [net_a(x_u), net_b(x_u)], weight=1.0)
    terms.cross[0].backward()
    assert net_a.weight.grad.abs().sum() > 0
    assert net_b.weight.grad is None
    net_a.zero_grad()
    terms = loss_fn([net_a(x_l), net_b(x_l)], labels, [net_a(x_u), net_b(x_u)], weight=1.0)
    terms.loss.backward()
    assert net_a.weight.grad.abs().sum() > 0 and net_b.weight.grad.abs().sum() > 0


def test_bad_shapes_are_refused():
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="exactly 2 networks"):
        CrossTeachingLoss()([logits], torch.zeros(1, 1, 4, 4), [logits], 0.1)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        CrossTeachingLoss()([logits, logits], torch.zeros(1, 4, 4), [logits, logits], 0.1)
