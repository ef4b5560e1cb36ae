"""BYOLMed2D's volume encoder: a 2D encoder on every slice, max over slices, global average pool."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SliceEncoder"]


class SliceEncoder(nn.Module):
    """Encode a volume of slices with any 2D backbone (BYOLMed2D).

    The input ``(B, C, S, H, W)`` (S slices, kept in slice order) is folded to ``(B*S, C, H, W)`` so
    that the 2D backbone sees all slices of all volumes as one batch. The backbone's features are
    unfolded to ``(B, S, ...)``, reduced by the maximum over slices, and, if they are feature maps,
    globally average-pooled to ``(B, F)``. This is the MRNet recipe (Bien et al., PLOS Medicine
    2018) used by BYOLMed2D: max over slices, then global average pooling. A backbone that already
    pools (returns ``(N, F)``) gets the maximum over slices of the pooled vectors.

    Args:
        backbone: a 2D network mapping ``(N, C, H, W)`` to ``(N, F, h, w)`` or ``(N, F)``, e.g.
            :func:`monai_ssl.networks.resnet18_encoder` with ``pool=False``.
        out_features: ``F``; read from ``backbone.out_features`` when not given.
    """

    def __init__(self, backbone: nn.Module, out_features: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        if out_features is None:
            out_features = getattr(backbone, "out_features", None)
        if out_features is None:
            raise ValueError("SliceEncoder needs `out_features` when the backbone has no `out_features` attribute.")
        self.out_features = int(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, S, H, W)`` volumes to ``(B, F)`` features."""
        if x.ndim != 5:
            raise ValueError(f"SliceEncoder expects (batch, channels, slices, H, W) input, got shape {x.shape}.")
        b, s = x.shape[0], x.shape[2]
        features = self.backbone(x.transpose(1, 2).flatten(0, 1))
        features = features.reshape([b, s] + list(features.shape[1:])).amax(dim=1)
        if features.ndim > 2:
            features = features.flatten(2).mean(dim=2)
        return features
