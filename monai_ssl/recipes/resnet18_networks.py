"""The BYOL bundles' networks from a few settings: one definition for pre-training, fine-tuning, evaluation and inference.

Both BYOL bundles use the standard ResNet-18 (:func:`~monai_ssl.networks.resnet18_encoder`, He et al.,
CVPR 2016) as the encoder ``f``, in one of two layouts named by ``encoder``:

- ``"resnet18"``: a 2D image to its 512 globally average-pooled features (the OCT bundle);
- ``"slice_resnet18"``: BYOLMed2D's exam encoder, the 2D ResNet-18 on every slice of a
  ``(B, C, S, H, W)`` exam, maximum over slices, then global average pooling
  (:class:`~monai_ssl.networks.SliceEncoder`; Bien et al., PLOS Medicine 2018).

:func:`byol_network` puts BYOL's projector and predictor on it (Grill et al., NeurIPS 2020),
:func:`classifier_network` a linear task head (:class:`~monai_ssl.networks.EncoderClassifier`). The
classifier's state dict keys are those of the pre-trained encoder under ``encoder.``, so
:func:`~monai_ssl.networks.init_from_pretrained` and :func:`~monai_ssl.networks.load_weights` fit it.
"""

from __future__ import annotations

from torch import nn

from monai_ssl.networks import BYOL, EncoderClassifier, SliceEncoder, resnet18_encoder

__all__ = ["ENCODERS", "byol_network", "classifier_network", "resnet18_features"]

ENCODERS = ("resnet18", "slice_resnet18")


def resnet18_features(encoder: str, in_channels: int) -> nn.Module:
    """The encoder ``f`` named by ``encoder`` (see the module docstring): input to ``(B, 512)`` features.

    Raises:
        ValueError: an ``encoder`` not in :data:`ENCODERS`, or ``in_channels`` below 1.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"`encoder` must be one of {ENCODERS}, got {encoder!r}.")
    if int(in_channels) < 1:
        raise ValueError(f"`in_channels` must be at least 1, got {in_channels!r}.")
    if encoder == "slice_resnet18":
        return SliceEncoder(resnet18_encoder(spatial_dims=2, in_channels=int(in_channels), pool=False))
    return resnet18_encoder(spatial_dims=2, in_channels=int(in_channels), pool=True)


def byol_network(encoder: str, in_channels: int, hidden_dim: int = 4096, projection_dim: int = 256) -> BYOL:
    """BYOL over the encoder named by ``encoder``: projector and predictor ``512 -> hidden_dim -> projection_dim``."""
    return BYOL(resnet18_features(encoder, in_channels), hidden_dim=int(hidden_dim), projection_dim=int(projection_dim))


def classifier_network(
    encoder: str,
    in_channels: int,
    out_channels: int,
    head_input: str = "encoder",
    hidden_dim: int = 4096,
    projection_dim: int = 256,
    freeze_encoder: bool = False,
) -> EncoderClassifier:
    """A linear head of ``out_channels`` logits on the encoder named by ``encoder`` (optionally through BYOL's projector).

    Args:
        encoder: ``"resnet18"`` or ``"slice_resnet18"``.
        in_channels: input channels.
        out_channels: logits (1 for a binary finding with ``BCEWithLogitsLoss``, else the number of classes).
        head_input: ``"encoder"`` (the 512 features) or ``"projector"`` (BYOL's projector output, Feng et al.).
        hidden_dim: the projector's hidden size, as in pre-training (``head_input="projector"`` only).
        projection_dim: the projector's output size, as in pre-training (``head_input="projector"`` only).
        freeze_encoder: keep the encoder (and projector) fixed: linear probing.

    Raises:
        ValueError: a bad ``encoder``, ``in_channels``, ``head_input`` or ``out_channels`` below 1.
    """
    if int(out_channels) < 1:
        raise ValueError(f"`out_channels` must be at least 1, got {out_channels!r}.")
    return EncoderClassifier(
        resnet18_features(encoder, in_channels), out_channels=int(out_channels), freeze_encoder=freeze_encoder,
        head_input=head_input, hidden_dim=int(hidden_dim), projection_dim=int(projection_dim),
    )
