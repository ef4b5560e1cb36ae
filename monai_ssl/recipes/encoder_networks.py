"""The BYOL network and the classifier from a few settings: one definition for pre-training, fine-tuning, evaluation and inference.

The encoder ``f`` is named by ``encoder`` (:mod:`monai_ssl.recipes.encoders`): the standard ResNet-18
(He et al., CVPR 2016) by default in both BYOL bundles (``"resnet18"`` for 2D images,
``"slice_resnet18"`` for BYOLMed2D's exams), or ResNet-50, ViT-S/16, ViT-B/16.

:func:`byol_network` puts BYOL's projector and predictor on it (Grill et al., NeurIPS 2020),
:func:`classifier_network` a linear task head (:class:`~monai_ssl.networks.EncoderClassifier`). The
classifier's state dict keys are those of the pre-trained encoder under ``encoder.``, so
:func:`~monai_ssl.networks.init_from_pretrained` and :func:`~monai_ssl.networks.load_weights` fit it.
"""

from __future__ import annotations

from monai_ssl.networks import BYOL, EncoderClassifier

from .encoders import encoder_features

__all__ = ["byol_network", "classifier_network"]


def byol_network(
    encoder: str,
    in_channels: int,
    hidden_dim: int = 4096,
    projection_dim: int = 256,
    image_size: int = 224,
    small_images: bool = False,
) -> BYOL:
    """BYOL over the encoder named by ``encoder``: projector and predictor ``F -> hidden_dim -> projection_dim``."""
    features = encoder_features(encoder, in_channels, image_size=image_size, small_images=small_images)
    return BYOL(features, hidden_dim=int(hidden_dim), projection_dim=int(projection_dim))


def classifier_network(
    encoder: str,
    in_channels: int,
    out_channels: int,
    head_input: str = "encoder",
    hidden_dim: int = 4096,
    projection_dim: int = 256,
    freeze_encoder: bool = False,
    image_size: int = 224,
    small_images: bool = False,
) -> EncoderClassifier:
    """A linear head of ``out_channels`` logits on the encoder named by ``encoder`` (optionally through BYOL's projector).

    Args:
        encoder: one of :data:`~monai_ssl.recipes.encoders.ENCODERS` (``"resnet18"``, ``"slice_resnet18"``...).
        in_channels: input channels.
        out_channels: logits (1 for a binary finding with ``BCEWithLogitsLoss``, else the number of classes).
        head_input: ``"encoder"`` (the encoder's features) or ``"projector"`` (BYOL's projector output, Feng et al.).
        hidden_dim: the projector's hidden size, as in pre-training (``head_input="projector"`` only).
        projection_dim: the projector's output size, as in pre-training (``head_input="projector"`` only).
        freeze_encoder: keep the encoder (and projector) fixed: linear probing.
        image_size: the side of the images (a ViT encoder's position embeddings).
        small_images: the small-image ResNet stem, as in pre-training.

    Raises:
        ValueError: a bad ``encoder``, ``in_channels``, ``head_input`` or ``out_channels`` below 1.
    """
    if int(out_channels) < 1:
        raise ValueError(f"`out_channels` must be at least 1, got {out_channels!r}.")
    return EncoderClassifier(
        encoder_features(encoder, in_channels, image_size=image_size, small_images=small_images),
        out_channels=int(out_channels), freeze_encoder=freeze_encoder,
        head_input=head_input, hidden_dim=int(hidden_dim), projection_dim=int(projection_dim),
    )
