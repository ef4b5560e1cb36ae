"""The BYOL network and the classifier from a few settings: one definition for pre-training, fine-tuning, evaluation and inference.

The encoder ``f`` is named by ``encoder`` (:mod:`monai_ssl.recipes.encoders`): the standard ResNet-18
(He et al., CVPR 2016) by default in both BYOL bundles (``"resnet18"`` for 2D images,
``"slice_resnet18"`` for BYOLMed2D's exams), or ResNet-50, ViT-S/16, ViT-B/16.

:func:`byol_network` puts BYOL's projector and predictor on it (Grill et al., NeurIPS 2020),
:func:`classifier_network` a linear task head (:class:`~monai_ssl.networks.EncoderClassifier`). The
classifier's state dict keys are those of the pre-trained encoder under ``encoder.``, so
:func:`~monai_ssl.networks.init_from_pretrained` and :func:`~monai_ssl.networks.load_weights` fit it.
With ``pretrained_weights`` its encoder starts from an ImageNet checkpoint instead (S4MI's
``imagenet_transfer`` baseline, :func:`~monai_ssl.networks.load_imagenet_weights`).
"""

from __future__ import annotations

import logging
import os

from torch import nn

from monai_ssl.networks import BYOL, EncoderClassifier, SliceEncoder, load_imagenet_weights

from .encoders import encoder_features

__all__ = ["byol_network", "classifier_network"]

logger = logging.getLogger("monai_ssl")

_NO_WEIGHTS = ("", "none", "null")


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
    pretrained_weights: str | os.PathLike | None = None,
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
        pretrained_weights: an ImageNet checkpoint file loaded into the encoder, the ``imagenet_transfer``
            baseline of S4MI (Singh et al. 2022: ImageNet-initialised ResNet-50 / ViT-B/16 fine-tuned on the
            task). ``None``, ``""``, ``"none"`` or ``"null"``: the encoder stays randomly initialised.
            The file is one the user downloaded, in the torchvision or timm key layout (nothing is
            downloaded here): torchvision's published ``resnet50-*.pth`` / ``vit_b_16-*.pth`` (the URLs listed
            by ``torchvision.models.ResNet50_Weights`` / ``ViT_B_16_Weights``) or a timm ``resnet50`` /
            ``vit_base_patch16_224`` state dict (``timm.create_model(..., pretrained=True).state_dict()``
            saved with ``torch.save``). The ImageNet head is dropped, an RGB stem summed into a
            1-channel encoder, ViT position embeddings resized to ``image_size``; the load report (tensors
            loaded, missing and unexpected keys) goes to the ``monai_ssl`` logger. A ``slice_resnet18``
            encoder gets the weights in its 2D ResNet. The BYOL projector (``head_input="projector"``) and
            the head stay random.

    Raises:
        ValueError: a bad ``encoder``, ``in_channels``, ``head_input`` or ``out_channels`` below 1; a
            ``pretrained_weights`` file of another architecture than ``encoder`` (one message naming the file,
            the checkpoint's network and the encoder's), of no known key layout, or not a state dict.
        FileNotFoundError: ``pretrained_weights`` does not exist.
    """
    if int(out_channels) < 1:
        raise ValueError(f"`out_channels` must be at least 1, got {out_channels!r}.")
    network = EncoderClassifier(
        encoder_features(encoder, in_channels, image_size=image_size, small_images=small_images),
        out_channels=int(out_channels), freeze_encoder=freeze_encoder,
        head_input=head_input, hidden_dim=int(hidden_dim), projection_dim=int(projection_dim),
    )
    if pretrained_weights is not None and str(pretrained_weights).strip().lower() not in _NO_WEIGHTS:
        _load_imagenet(network.encoder, encoder, pretrained_weights)
    return network


def _load_imagenet(module: nn.Module, encoder: str, path: str | os.PathLike) -> None:
    """Load the ImageNet checkpoint ``path`` into the classifier's encoder (the 2D ResNet of a slice encoder)."""
    target = module.backbone if isinstance(module, SliceEncoder) else module
    try:
        report = load_imagenet_weights(target, path)
    except ValueError as err:
        raise ValueError(f"`pretrained_weights` for encoder={encoder!r}: {err}") from err
    logger.info("classifier_network(encoder=%r): ImageNet weights loaded (imagenet_transfer):\n%s",
                encoder, report.summary())
