"""MLP heads of BYOL: the projector g and the predictor q."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLPHead"]


class MLPHead(nn.Sequential):
    """Linear - BatchNorm - ReLU - Linear, the projector and predictor of BYOL.

    Grill et al., "Bootstrap your own latent", NeurIPS 2020, Sec. 3.3: a linear layer of
    ``hidden_features`` (4096) units, batch normalisation, ReLU, and a linear layer of
    ``out_features`` (256) units. The batch normalisation needs more than one sample per batch in
    training mode.

    Args:
        in_features: size of the input vector.
        hidden_features: size of the hidden layer (4096 in the paper).
        out_features: size of the output vector (256 in the paper).
    """

    def __init__(self, in_features: int, hidden_features: int = 4096, out_features: int = 256) -> None:
        super().__init__(
            nn.Linear(in_features, hidden_features),
            nn.BatchNorm1d(hidden_features),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_features, out_features),
        )
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.training and x.shape[0] < 2:
            raise ValueError(
                f"MLPHead got a batch of {x.shape[0]} sample in training mode; its batch normalisation needs at "
                "least 2 samples per batch (use batch_size >= 2 and drop_last=True in the DataLoader)."
            )
        for layer in self:  # not super().forward(): TorchScript (bundle export) cannot compile it
            x = layer(x)
        return x
