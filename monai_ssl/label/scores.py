"""Active-learning scores of one image: how much the two cross-teaching networks disagree, how unsure a classifier is."""

from __future__ import annotations

import torch

from monai_ssl.pseudo_label.scoring import logits_to_probabilities

__all__ = ["least_confidence", "pair_disagreement"]


def pair_disagreement(cnn_logits: torch.Tensor, transformer_logits: torch.Tensor) -> float:
    """``1 - Dice`` between the two networks' predicted masks of one image, in ``[0, 1]``.

    Cross-teaching trains a CNN and a Transformer to agree on unlabeled images (Luo et al., MIDL 2022,
    Eq. 2 uses each one's argmax as the other's target); where they still disagree, a label teaches the
    most. With ``a`` and ``b`` the foreground pixels (argmax over channels not 0) of each network,
    counting a pixel as shared only when both give it the same class:
    ``1 - 2 |a ∩ b| / (|a| + |b|)``. Two empty masks agree (score 0).

    Args:
        cnn_logits: ``(K, *spatial)`` logits (or probabilities) of the first network, one image.
        transformer_logits: the same for the second network.

    Raises:
        ValueError: the two outputs differ in shape.
    """
    if cnn_logits.shape != transformer_logits.shape:
        raise ValueError(f"pair_disagreement: shapes differ, {tuple(cnn_logits.shape)} vs {tuple(transformer_logits.shape)}.")
    a = torch.argmax(cnn_logits, dim=0)
    b = torch.argmax(transformer_logits, dim=0)
    total = int((a > 0).sum()) + int((b > 0).sum())
    if total == 0:
        return 0.0
    shared = int(((a > 0) & (a == b)).sum())
    return 1.0 - 2.0 * shared / total


def least_confidence(logits: torch.Tensor) -> float:
    """``1 - max_k p_k`` of one image's classifier output, in ``[0, 1 - 1/K]``.

    ``p`` are the probabilities the pseudo-label rounds rank the pool by
    (:func:`~monai_ssl.pseudo_label.scoring.logits_to_probabilities`: softmax, or sigmoid for one
    logit); the rounds take the most confident images as pseudo-labels, active learning asks a human
    for the least confident one.

    Args:
        logits: the classifier's ``(K,)`` or ``(1, K)`` output for one image (a single logit for a binary head).
    """
    p = logits_to_probabilities(logits.reshape(1, -1))
    return float(1.0 - p.max())
