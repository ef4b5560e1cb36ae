"""BYOL as a :class:`~monai_ssl.methods.SelfSupervisedMethod`: two views, an online network and its momentum target."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from monai_ssl.losses import BYOLLoss
from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.networks.momentum import cosine_momentum

from .base import MethodState, SelfSupervisedMethod

__all__ = ["BYOLMethod"]


class BYOLMethod(SelfSupervisedMethod):
    """Bootstrap Your Own Latent (Grill et al., NeurIPS 2020, Algorithm 1) on a :class:`~monai_ssl.networks.BYOL`.

    The loss is the symmetric normalised MSE of the online predictions of each view against the target
    projections of the other (eq. 2, :class:`~monai_ssl.losses.BYOLLoss`). After each real optimizer step
    the target moves towards the online network, ``xi <- tau xi + (1 - tau) theta`` (eq. 1), with ``tau``
    on the cosine of Sec. 3.2 over optimizer steps (:func:`~monai_ssl.networks.cosine_momentum`), exactly
    as :class:`~monai_ssl.engines.BYOLTrainer` (this method on the one trainer) does.

    Outputs for handlers: ``loss``, ``tau`` (the rate of this iteration's update) and ``projection_std``
    (mean over dimensions of the standard deviation over the batch of the L2-normalised online
    projections: about ``1/sqrt(D)`` when spread, 0 when collapsed), ``projection_dim``.

    Args:
        tau_base: ``tau`` at the first step (0.99).
        tau_final: ``tau`` at the last step (1.0).
        loss_function: defaults to :class:`~monai_ssl.losses.BYOLLoss`.
        view_keys: keys of the two views in each batch.
    """

    name = "byol"
    num_global_views = 2

    def __init__(
        self,
        tau_base: float = 0.99,
        tau_final: float = 1.0,
        loss_function: Callable | None = None,
        view_keys: Sequence[str] = ("view1", "view2"),
    ) -> None:
        if not 0.0 <= tau_base <= tau_final <= 1.0:
            raise ValueError(f"need 0 <= tau_base <= tau_final <= 1, got tau_base={tau_base}, tau_final={tau_final}.")
        if len(view_keys) != 2:
            raise ValueError(f"BYOL reads exactly 2 views, got view_keys={tuple(view_keys)}.")
        self.tau_base = tau_base
        self.tau_final = tau_final
        self.loss_function = loss_function if loss_function is not None else BYOLLoss()
        self.view_keys = tuple(view_keys)

    def loss(
        self, network: nn.Module, views: Sequence[torch.Tensor], state: MethodState
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Eq. 2 over both views; ``tau`` is the rate the target will move with after this step."""
        view1, view2 = views
        if view1.shape[0] < 2:
            raise ValueError(
                f"BYOL got a batch of {view1.shape[0]} sample in '{self.view_keys[0]}' at iteration {state.iteration}; "
                "batch norm in the BYOL heads needs at least 2 samples per batch (use batch_size >= 2 and "
                "drop_last=True)."
            )
        out = network(view1, view2)
        loss = self.loss_function(out["online_pred1"], out["online_pred2"], out["target_proj1"], out["target_proj2"])
        with torch.no_grad():
            projection = F.normalize(out["online_proj1"].detach().float(), dim=1)
            projection_std = projection.std(dim=0).mean()
        return loss, {
            "tau": self.momentum(state.optimizer_steps, state.total_optimizer_steps),
            "projection_std": projection_std,
            "projection_dim": projection.shape[1],
        }

    def momentum(self, step: int, total_steps: int) -> float:
        """``tau`` at optimizer step ``step`` of ``total_steps`` (Grill et al. 2020, Sec. 3.2)."""
        return cosine_momentum(step, total_steps, self.tau_base, self.tau_final)

    def after_optimizer_step(self, network: nn.Module, step: int, total_steps: int) -> float:
        """Move the target towards the new online weights (eq. 1); return ``tau``."""
        tau = self.momentum(step, total_steps)
        unwrap_parallel(network).update_target(tau)
        return tau


class BYOLPlusMethod(BYOLMethod):
    """BYOL+ (Feng et al.): BYOL's loss and target on views with BYOL+'s cutout, contrast and brightness.

    The method is BYOL's; only its name (in TensorBoard tags and checkpoints' run records) differs. The
    views that make it BYOL+ come from the loader: :class:`~monai_ssl.transforms.BYOLViewsd` with
    ``byol_plus=True`` (what ``--method byol_plus`` builds through :mod:`monai_ssl.recipes.pretraining`).
    """

    name = "byol_plus"
