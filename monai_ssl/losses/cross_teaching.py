"""The cross-teaching loss of a CNN and a Transformer segmentation network (Luo et al., MIDL 2022).

For networks ``f_i`` (``i = 1, 2``), a batch of labeled images ``x_l`` with masks ``y`` and unlabeled
images ``x_u``, Luo et al. (eq. 1-3) minimise for each network

    ``L_i = L_sup(f_i(x_l), y) + lambda * L_ct(f_i(x_u), argmax f_j(x_u))``,  ``j != i``,

with ``L_sup = 0.5 * (CE + Dice)`` and ``L_ct`` the Dice loss against the other network's hard
prediction, which is a constant (no gradient flows into the teacher through the pseudo-label). The
sum ``L_1 + L_2`` is what is back-propagated: each network's parameters only get the gradient of
their own ``L_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.losses import DiceCELoss, DiceLoss
from torch import nn

__all__ = ["CrossTeachingLoss", "CrossTeachingTerms"]


@dataclass
class CrossTeachingTerms:
    """The parts of the cross-teaching loss; ``loss`` is the sum to back-propagate."""

    loss: torch.Tensor
    supervised: list[torch.Tensor]
    cross: list[torch.Tensor]
    pseudo_labels: list[torch.Tensor]


class CrossTeachingLoss(nn.Module):
    """Supervised ``0.5 * (CE + Dice)`` on the labeled part plus the weighted cross-teaching Dice.

    Args:
        supervised_loss: the loss of the labeled part, called ``(logits, labels)`` with labels as class
            indices ``(B, 1, H, W)``. Default: MONAI ``DiceCELoss`` with softmax, one-hot labels and
            ``lambda_dice = lambda_ce = 0.5`` (Luo et al. eq. 1).
        cross_loss: the loss of the unlabeled part against the other network's argmax, same call.
            Default: MONAI ``DiceLoss`` with softmax (eq. 2).
        batch_dice: Dice over the whole batch (as the paper's code) rather than per image; used only by
            the defaults.
    """

    def __init__(
        self, supervised_loss: nn.Module | None = None, cross_loss: nn.Module | None = None, batch_dice: bool = True
    ) -> None:
        super().__init__()
        self.supervised_loss = supervised_loss or DiceCELoss(
            to_onehot_y=True, softmax=True, lambda_dice=0.5, lambda_ce=0.5, batch=batch_dice
        )
        self.cross_loss = cross_loss or DiceLoss(to_onehot_y=True, softmax=True, batch=batch_dice)

    def forward(
        self,
        labeled_logits: Sequence[torch.Tensor],
        labels: torch.Tensor,
        unlabeled_logits: Sequence[torch.Tensor],
        weight: float,
    ) -> CrossTeachingTerms:
        """The loss terms of both networks.

        Args:
            labeled_logits: each network's logits ``(B_l, K, H, W)`` on the labeled images.
            labels: the masks ``(B_l, 1, H, W)`` (class indices).
            unlabeled_logits: each network's logits ``(B_u, K, H, W)`` on the unlabeled images; ``B_u`` may
                be 0 (then the cross term is 0).
            weight: ``lambda``, the weight of the cross-teaching term.

        Raises:
            ValueError: not exactly two networks, or shapes that do not match.
        """
        if len(labeled_logits) != 2 or len(unlabeled_logits) != 2:
            raise ValueError(
                f"CrossTeachingLoss needs the logits of exactly 2 networks, got {len(labeled_logits)} labeled and "
                f"{len(unlabeled_logits)} unlabeled."
            )
        if labels.ndim != labeled_logits[0].ndim or labels.shape[1] != 1:
            raise ValueError(
                f"CrossTeachingLoss: labels must have shape (B, 1, H, W) like the logits {tuple(labeled_logits[0].shape)}, "
                f"got {tuple(labels.shape)}."
            )
        pseudo = [u.detach().argmax(dim=1, keepdim=True) for u in unlabeled_logits]
        supervised = [self.supervised_loss(logits, labels) for logits in labeled_logits]
        if unlabeled_logits[0].shape[0] == 0:
            cross = [logits.sum() * 0.0 for logits in unlabeled_logits]
        else:
            cross = [self.cross_loss(unlabeled_logits[i], pseudo[1 - i]) for i in range(2)]
        loss = sum(s + weight * c for s, c in zip(supervised, cross))
        return CrossTeachingTerms(loss=loss, supervised=supervised, cross=cross, pseudo_labels=pseudo)
