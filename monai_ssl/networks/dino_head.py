"""The projection head of DINO and the freezing of its last layer in the first epoch(s)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["DINOHead", "cancel_last_layer_gradients"]


class DINOHead(nn.Module):
    """MLP - L2 normalisation - weight-normalised linear layer, the projection head of DINO.

    Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021, Sec. 3.1
    and Appendix C: a 3-layer MLP with hidden dimension 2048 (GELU activations, no batch
    normalisation by default), a bottleneck of 256 features that is L2-normalised, then a
    weight-normalised linear layer without bias to ``K`` outputs (65,536 in the paper). With
    ``norm_last_layer`` the magnitude ``g`` of the weight normalisation is fixed to 1, so every row
    of the last weight has unit norm and the outputs are cosines times the row directions (the
    paper's reference code does this for stability with ViTs).

    The hidden linear layers start from a truncated normal (std 0.02) with zero bias, as the
    reference code does; the last layer keeps PyTorch's default initialisation of its direction.

    Args:
        in_features: size of the backbone's feature vector (2048 for ResNet-50, 768 for ViT-B).
        out_features: ``K``, the number of output dimensions (prototypes).
        hidden_features: width of the hidden layers of the MLP.
        bottleneck_features: size of the L2-normalised bottleneck.
        num_layers: linear layers of the MLP, the bottleneck layer included (1 means a single
            linear layer from the input to the bottleneck).
        use_bn: batch normalisation after each hidden linear layer (the paper's ResNet-50 runs use it).
        norm_last_layer: fix the weight-norm magnitude of the last layer to 1 (not trained).

    Example:
        >>> head = DINOHead(in_features=512, out_features=1024)
        >>> head(torch.randn(4, 512)).shape
        torch.Size([4, 1024])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 65536,
        hidden_features: int = 2048,
        bottleneck_features: int = 256,
        num_layers: int = 3,
        use_bn: bool = False,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"DINOHead needs num_layers >= 1, got {num_layers}.")
        self.in_features = in_features
        self.out_features = out_features
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(width, hidden_features))
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_features))
            layers.append(nn.GELU())
            width = hidden_features
        layers.append(nn.Linear(width, bottleneck_features))
        self.mlp = nn.Sequential(*layers)
        for module in self.mlp.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_features, out_features, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0  # g of w = g * v / ||v||
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad_(not norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_features)`` backbone features to ``(B, out_features)`` logits."""
        bottleneck = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(bottleneck)


def cancel_last_layer_gradients(network: nn.Module, epoch: int, freeze_last_layer_epochs: int = 1) -> bool:
    """Drop the gradients of the last layer of every :class:`DINOHead` in ``network`` while it is frozen.

    The DINO reference code keeps the last layer fixed during the first epoch (``freeze_last_layer = 1``)
    because training it from the start makes training unstable (Caron et al. 2021, Appendix C): after
    the backward pass and before the optimizer step, the gradients of that layer are set to ``None``,
    so the optimizer skips those parameters altogether (no update, no weight decay).

    Args:
        network: a :class:`DINOHead`, or a module holding one or more (student backbone + head,
            a DDP wrapper).
        epoch: epochs completed so far, counted from 0 (Ignite's ``engine.state.epoch - 1``).
        freeze_last_layer_epochs: how many epochs the last layer stays frozen (1 in the reference, 0 never).

    Returns:
        whether gradients were cancelled (``epoch < freeze_last_layer_epochs``).

    Raises:
        ValueError: ``network`` contains no :class:`DINOHead`.
    """
    heads = [module for module in network.modules() if isinstance(module, DINOHead)]
    if not heads:
        raise ValueError(f"cancel_last_layer_gradients: {type(network).__name__} contains no DINOHead.")
    if epoch >= freeze_last_layer_epochs:
        return False
    for head in heads:
        for parameter in head.last_layer.parameters():
            parameter.grad = None
    return True
