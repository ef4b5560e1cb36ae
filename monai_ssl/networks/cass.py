"""CASS: a CNN and a Transformer, each with a linear output layer, trained as one model to agree."""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

__all__ = ["CASS", "CASS_MEMBERS"]

CASS_MEMBERS = ("cnn", "transformer")


def _features(network: nn.Module, given: int | None, name: str) -> int:
    """``given``, or ``network.out_features``; one clear line when neither is known."""
    features = given if given is not None else getattr(network, "out_features", None)
    if features is None:
        raise ValueError(f"CASS needs `{name}_features` when the {name} network has no `out_features` attribute.")
    return int(features)


class CASS(nn.Module):
    """Cross Architectural Self-Supervision (Singh, Sizikova and Cirrone, arXiv:2206.04170, 2022).

    A CNN (ResNet-50 in the paper) and a Transformer (ViT-B/16) see the *same* augmented image and
    are trained together so that their outputs agree, with the loss ``2 - 2 cos`` of
    :class:`monai_ssl.losses.CASSLoss`. In the authors' reference code (github.com/pranavsinghps1/CASS,
    ``Examples/MedMNIST/CASS.ipynb``) the compared vectors are the two networks' own classifier
    outputs (the 1000-way ImageNet heads of the ``timm`` models it starts from); there is no
    projection MLP, no predictor, no stop-gradient and no momentum network, and each network has
    its own Adam optimiser. Our encoders return pooled features without a classifier, so each one
    gets a linear layer to ``out_features`` (1000 by default, the reference's head size).

    ``members`` maps ``"cnn"`` and ``"transformer"`` to ``encoder -> head`` (an ``nn.Sequential``
    with children ``encoder`` and ``head``), so a trainer can give each member its own optimiser
    (``members["cnn"].parameters()``), and one checkpoint holds both (``members.cnn.encoder.*``,
    ``members.transformer.head.*``...). After pre-training, :meth:`export_backbone` returns either
    encoder for fine-tuning: the CNN by default.

    Args:
        cnn: the CNN encoder, images ``(B, C, H, W)`` to features ``(B, F_c)`` (e.g.
            :func:`~monai_ssl.networks.resnet50_encoder`).
        transformer: the Transformer encoder, the same images to ``(B, F_t)`` (e.g.
            :func:`~monai_ssl.networks.vit_encoder`).
        out_features: size of the compared outputs (1000, as the reference's ImageNet heads).
        cnn_features: ``F_c``; read from ``cnn.out_features`` when None.
        transformer_features: ``F_t``; read from ``transformer.out_features`` when None.

    Raises:
        ValueError: a network's feature size neither given nor readable from ``out_features``.
    """

    def __init__(
        self,
        cnn: nn.Module,
        transformer: nn.Module,
        out_features: int = 1000,
        cnn_features: int | None = None,
        transformer_features: int | None = None,
    ) -> None:
        super().__init__()
        sizes = {
            "cnn": _features(cnn, cnn_features, "cnn"),
            "transformer": _features(transformer, transformer_features, "transformer"),
        }
        encoders = {"cnn": cnn, "transformer": transformer}
        self.members = nn.ModuleDict(
            {
                name: nn.Sequential(OrderedDict(encoder=encoders[name], head=nn.Linear(sizes[name], out_features)))
                for name in CASS_MEMBERS
            }
        )
        self.out_features = out_features

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both networks' outputs for the same batch of augmented images.

        Returns:
            ``{"cnn": (B, out_features), "transformer": (B, out_features)}``, both with gradients
            (the reference has no stop-gradient): the inputs of
            :class:`monai_ssl.losses.CASSLoss`.
        """
        return {name: member(image) for name, member in self.members.items()}

    def export_backbone(self, name: str = "cnn") -> nn.Module:
        """A copy of one trained encoder (its head left out), detached from this module.

        Args:
            name: ``"cnn"`` (the default) or ``"transformer"``.

        Raises:
            ValueError: another name; the message lists the choices.
        """
        if name not in self.members:
            raise ValueError(f"CASS.export_backbone: name must be one of {list(self.members)}, got {name!r}.")
        return copy.deepcopy(self.members[name].encoder)
