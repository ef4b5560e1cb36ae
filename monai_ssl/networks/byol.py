"""BYOL: online network (encoder, projector, predictor) and its momentum target."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .heads import MLPHead
from .momentum import momentum_update, trainable_pairs

__all__ = ["BYOL"]


class BYOL(nn.Module):
    """Bootstrap Your Own Latent (Grill et al., NeurIPS 2020).

    The online network is ``encoder -> projector g -> predictor q``; the target network is a copy
    of ``encoder -> projector`` that receives no gradients and follows the online weights by the
    momentum update ``xi <- tau * xi + (1 - tau) * theta`` (eq. 1), called by the trainer after each
    optimizer step (:meth:`update_target`).

    ``forward(view1, view2)`` returns the online predictions ``q(g(f(v)))`` of both views and the
    target projections ``g'(f'(v))`` of both views (computed without gradients), ready for the
    symmetric loss of eq. 2 (:class:`monai_ssl.losses.BYOLLoss`), plus the online projections for
    the collapse monitor.

    Batch-norm policy: the target's batch-norm layers run in training mode like the online ones
    (batch statistics, as in the paper); their running statistics come from the target's own
    forward passes and are not averaged. Only parameters are averaged. The target is never used
    after pre-training: :meth:`export_backbone` returns the online encoder.

    Args:
        encoder: maps a view to a feature vector ``(B, F)``, e.g. a
            :class:`~monai_ssl.networks.SliceEncoder` for volumes or a pooled
            :func:`~monai_ssl.networks.resnet18_encoder` for images.
        feature_dim: ``F``; read from ``encoder.out_features`` when not given.
        hidden_dim: hidden size of projector and predictor (4096).
        projection_dim: output size of projector and predictor (256).
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int | None = None,
        hidden_dim: int = 4096,
        projection_dim: int = 256,
    ) -> None:
        super().__init__()
        feature_dim = feature_dim if feature_dim is not None else getattr(encoder, "out_features", None)
        if feature_dim is None:
            raise ValueError("BYOL needs `feature_dim` when the encoder has no `out_features` attribute.")
        self.online_encoder = encoder
        self.online_projector = MLPHead(feature_dim, hidden_dim, projection_dim)
        self.predictor = MLPHead(projection_dim, hidden_dim, projection_dim)
        self.target_encoder = copy.deepcopy(encoder)
        self.target_projector = copy.deepcopy(self.online_projector)
        for p in self.target_parameters():
            p.requires_grad_(False)
        self.projection_dim = projection_dim
        self._pairs: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    def target_parameters(self) -> list[nn.Parameter]:
        """Parameters of the target encoder and projector, in the order of :meth:`online_parameters`."""
        return list(self.target_encoder.parameters()) + list(self.target_projector.parameters())

    def online_parameters(self) -> list[nn.Parameter]:
        """Parameters of the online encoder and projector (the predictor has no target)."""
        return list(self.online_encoder.parameters()) + list(self.online_projector.parameters())

    def _online(self, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projection = self.online_projector(self.online_encoder(view))
        return projection, self.predictor(projection)

    @torch.no_grad()
    def _target(self, view: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_encoder(view))

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, torch.Tensor]:
        """Online predictions and target projections of two views of the same batch.

        Returns:
            ``online_pred1``, ``online_pred2`` (with gradients), ``target_proj1``,
            ``target_proj2`` (detached), ``online_proj1``, ``online_proj2``, each ``(B, D)``.
        """
        if view1.shape != view2.shape:
            raise ValueError(f"the two views must have the same shape, got {tuple(view1.shape)} and {tuple(view2.shape)}.")
        if self.training and view1.shape[0] < 2:
            raise ValueError(
                f"BYOL got a batch of {view1.shape[0]} sample; the batch norm in its heads needs at least 2 samples "
                "per batch (use batch_size >= 2 and drop_last=True)."
            )
        proj1, pred1 = self._online(view1)
        proj2, pred2 = self._online(view2)
        return {
            "online_pred1": pred1,
            "online_pred2": pred2,
            "target_proj1": self._target(view1).detach(),
            "target_proj2": self._target(view2).detach(),
            "online_proj1": proj1,
            "online_proj2": proj2,
        }

    def update_target(self, tau: float) -> None:
        """Momentum update of the target parameters (eq. 1), one fused pass over all tensors."""
        if self._pairs is None:
            # built once: the parameter tensors keep their identity across optimizer steps and load_state_dict
            online = nn.ModuleList([self.online_encoder, self.online_projector])
            target = nn.ModuleList([self.target_encoder, self.target_projector])
            self._pairs = trainable_pairs(target, online)
        target_params, online_params = self._pairs
        momentum_update(target_params, online_params, tau)

    def export_backbone(self) -> nn.Module:
        """A copy of the trained online encoder, detached from this module, for downstream tasks."""
        return copy.deepcopy(self.online_encoder)
