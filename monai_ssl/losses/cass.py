"""The CASS loss: agreement between a CNN's and a Transformer's outputs on the same augmented image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CASSLoss"]

REDUCTIONS = ("mean", "sum", "none")


class CASSLoss(nn.Module):
    """CASS agreement loss of Singh, Sizikova and Cirrone, "CASS: Cross Architectural Self-Supervision
    for Medical Image Analysis" (arXiv:2206.04170, 2022; also arXiv:2301.12025).

    CASS trains a CNN (ResNet-50) and a Transformer (ViT-B/16) together: both see the *same*
    augmented image (one view, not two), and the loss pulls their outputs together. Per sample,

    ``L(c, t) = || c/||c|| - t/||t|| ||^2 = 2 - 2 cos(c, t)``

    where ``c`` and ``t`` are the final outputs of the CNN and the Transformer (their classification
    heads' logits in the reference code, 1000-dimensional for the ImageNet heads of the ``timm``
    models it starts from). The loss is symmetric, lies in [0, 4], is 0 when the two outputs point
    the same way and 4 when they point opposite ways, and is averaged over the batch.

    What it computes, and where each fact comes from:

    * The formula, the inputs and the reduction come from the authors' reference code
      (github.com/pranavsinghps1/CASS, ``Examples/MedMNIST/CASS.ipynb``, its pre-training loop):
      ``2 - 2 * (normalize(x) * normalize(y)).sum(-1)`` on ``model_vit(img)`` and ``model_cnn(img)``
      for one batch ``img``, then ``.mean()``; it is BYOL's normalised MSE (Grill et al. 2020,
      eq. 2) applied across the two architectures.
    * There is no stop-gradient: one ``backward`` of this loss updates both networks, each with its
      own optimiser (Adam wrapped in SWA, cosine-annealed learning rate, in that notebook). Unlike
      :class:`monai_ssl.losses.BYOLLoss`, neither input is detached here.
    * There is no separate projection or prediction head and no momentum (EMA) network: the
      networks' own last linear layers produce the compared vectors. A caller that builds encoders
      without a classifier should give each network a linear layer to a common output size.
    * The paper's own equation numbering could not be checked: the paper text was not reachable
      from this project's search tools, only its abstract, so the formula above is cited from the
      reference code rather than from a numbered equation.

    Args:
        reduction: ``"mean"`` (default, as in the reference code), ``"sum"`` or ``"none"`` over the
            batch.

    Raises:
        ValueError: an unknown ``reduction``, or outputs of different shapes.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"CASSLoss reduction must be one of {REDUCTIONS}, got {reduction!r}.")
        self.reduction = reduction

    def forward(self, cnn_output: torch.Tensor, transformer_output: torch.Tensor) -> torch.Tensor:
        """Loss between the CNN's and the Transformer's outputs ``(N, D)`` for the same images.

        Args:
            cnn_output: the CNN's outputs, features on the last dimension.
            transformer_output: the Transformer's outputs for the same images, same shape.

        Returns:
            The mean (or sum) of ``2 - 2 cos`` over the batch, or the per-sample values ``(N,)``
            with ``reduction="none"``. Gradients flow into both inputs.
        """
        if cnn_output.shape != transformer_output.shape:
            raise ValueError(
                "CASSLoss compares the CNN's and the Transformer's outputs for the same images; their shapes differ: "
                f"CNN {tuple(cnn_output.shape)}, Transformer {tuple(transformer_output.shape)}. "
                "Give both networks an output layer of the same size."
            )
        cnn_unit = F.normalize(cnn_output, p=2, dim=-1)
        transformer_unit = F.normalize(transformer_output, p=2, dim=-1)
        loss = 2.0 - 2.0 * (cnn_unit * transformer_unit).sum(dim=-1)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss
