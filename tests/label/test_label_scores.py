"""Active-learning scores: pair disagreement (1 - Dice of the two masks) and least confidence."""

from __future__ import annotations

import math

import pytest
import torch

from monai_ssl.label import least_confidence, pair_disagreement


def _logits(mask: torch.Tensor) -> torch.Tensor:
    """Two-channel logits whose argmax is ``mask``."""
    return torch.stack([(mask == 0).float(), (mask == 1).float()])


def test_pair_disagreement_values():
    a = torch.zeros(4, 4, dtype=torch.long)
    a[:2] = 1  # 8 pixels
    b = torch.zeros(4, 4, dtype=torch.long)
    b[1:3] = 1  # 8 pixels, 4 shared with a
    assert pair_disagreement(_logits(a), _logits(a)) == 0.0
    assert pair_disagreement(_logits(a), _logits(b)) == pytest.approx(1 - 2 * 4 / 16)
    assert pair_disagreement(_logits(a), _logits(1 - a)) == 1.0
    empty = torch.zeros(4, 4, dtype=torch.long)
    assert pair_disagreement(_logits(empty), _logits(empty)) == 0.0  # both find nothing: they agree
    assert pair_disagreement(_logits(a), _logits(empty)) == 1.0


def test_pair_disagreement_counts_other_classes_as_disagreement():
    a = torch.tensor([[1, 2]])
    b = torch.tensor([[2, 2]])
    one_hot = lambda m: torch.nn.functional.one_hot(m, 3).permute(2, 0, 1).float()  # noqa: E731
    assert pair_disagreement(one_hot(a), one_hot(b)) == pytest.approx(1 - 2 * 1 / 4)


def test_pair_disagreement_refuses_other_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        pair_disagreement(torch.zeros(2, 4, 4), torch.zeros(2, 4, 5))


def test_least_confidence_softmax_and_single_logit():
    assert least_confidence(torch.tensor([0.0, 0.0, 0.0, 0.0])) == pytest.approx(0.75)
    assert least_confidence(torch.tensor([[10.0, -10.0]])) == pytest.approx(0.0, abs=1e-6)
    # one logit of a binary head: sigmoid(0) = 0.5 is the least confident a binary classifier can be
    assert least_confidence(torch.tensor([0.0])) == pytest.approx(0.5)
    p = torch.sigmoid(torch.tensor(2.0)).item()
    assert least_confidence(torch.tensor([2.0])) == pytest.approx(1 - p)
    assert math.isfinite(least_confidence(torch.tensor([1e4, -1e4])))
