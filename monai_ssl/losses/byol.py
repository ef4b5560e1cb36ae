"""The BYOL loss: normalised mean squared error between online predictions and target projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

__all__ = ["BYOLLoss", "normalized_mse"]


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||q/||q|| - z/||z|| ||^2 = 2 - 2 cos(q, z)`` (Grill et al. 2020, eq. 2)."""
    return 2.0 - 2.0 * F.cosine_similarity(prediction, target.detach(), dim=-1)


class BYOLLoss(_Loss):
    """Symmetric BYOL loss, ``L + L~`` of Grill et al. 2020 (eq. 2 and Sec. 3.1; thesis eq. 2.7).

    ``L = 2 - 2 cos(q(z_1), z'_2)`` compares the online prediction of view 1 with the target
    projection of view 2; ``L~`` swaps the views. Each term lies in [0, 4], so the loss lies in
    [0, 8]; it is 0 when predictions and target projections point the same way. Target projections
    are detached (stop-gradient).

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch.
    """

    def forward(  # type: ignore[override]
        self,
        online_pred1: torch.Tensor,
        online_pred2: torch.Tensor,
        target_proj1: torch.Tensor,
        target_proj2: torch.Tensor,
    ) -> torch.Tensor:
        """Loss of the online predictions of views 1 and 2 against the target projections of views 2 and 1."""
        loss = normalized_mse(online_pred1, target_proj2) + normalized_mse(online_pred2, target_proj1)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss
