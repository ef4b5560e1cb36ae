"""The encoders ``f`` a bundle can pre-train and fine-tune, by name: one place that builds each architecture.

========================  ============================================================================
``encoder``               network (input -> pooled features)
========================  ============================================================================
``"resnet18"``            standard ResNet-18 (He et al., CVPR 2016, Table 1): 512 features
``"resnet50"``            standard ResNet-50 (the CNN of DINO and CASS): 2048 features
``"vit_s16"``             ViT-S/16 (DINO's lighter Transformer, Caron et al. 2021, Table 1): 384 features
``"vit_b16"``             ViT-B/16 (Dosovitskiy et al., ICLR 2021; the Transformer of DINO and CASS): 768
``"slice_resnet18"``      BYOLMed2D's exam encoder: the 2D ResNet-18 on every slice of a ``(B, C, S, H, W)``
                          exam, maximum over slices, global average pooling (Bien et al., PLOS Med. 2018)
========================  ============================================================================

``small_images`` gives the ResNets the small-image stem (3x3 stride-1 first convolution, no max pooling;
:func:`~monai_ssl.networks.resnet18_encoder`) for 28-64 px images such as MedMNIST's. A ViT takes the
image size its position embeddings are made for; ``interpolate_position`` lets it take other multiples of
the patch size (DINO's local crops).
"""

from __future__ import annotations

from torch import nn

from monai_ssl.networks import SliceEncoder, resnet18_encoder, resnet50_encoder, vit_encoder

__all__ = ["CNN_ENCODERS", "ENCODERS", "TRANSFORMER_ENCODERS", "encoder_features"]

CNN_ENCODERS = ("resnet18", "resnet50")
TRANSFORMER_ENCODERS = ("vit_s16", "vit_b16")
ENCODERS = (*CNN_ENCODERS, *TRANSFORMER_ENCODERS, "slice_resnet18")
_VIT_SIZES = {"vit_s16": {"hidden_size": 384, "num_heads": 6}, "vit_b16": {"hidden_size": 768, "num_heads": 12}}
_PATCH = 16


def encoder_features(
    encoder: str,
    in_channels: int,
    image_size: int = 224,
    small_images: bool = False,
    interpolate_position: bool = False,
) -> nn.Module:
    """The encoder named ``encoder`` (see the module table): input to ``(B, out_features)`` features.

    Args:
        encoder: one of :data:`ENCODERS`.
        in_channels: input channels (1 grayscale, 3 RGB).
        image_size: the side of the images it receives (a ViT's position embeddings; unused by the ResNets).
        small_images: the small-image ResNet stem (ResNets only).
        interpolate_position: a ViT accepts other sizes that are multiples of 16 (DINO's local crops).

    Raises:
        ValueError: an unknown ``encoder``, ``in_channels`` below 1, or a ViT whose ``image_size`` is not a
            multiple of its 16 px patches (the message names the setting).
    """
    if encoder not in ENCODERS:
        raise ValueError(f"`encoder` must be one of {ENCODERS}, got {encoder!r}.")
    if int(in_channels) < 1:
        raise ValueError(f"`in_channels` must be at least 1, got {in_channels!r}.")
    channels = int(in_channels)
    if encoder in _VIT_SIZES:
        if small_images:
            raise ValueError(f"`small_images` is a ResNet stem setting; encoder={encoder!r} is a ViT: leave it false.")
        if int(image_size) % _PATCH:
            raise ValueError(
                f"encoder={encoder!r} cuts images into {_PATCH}x{_PATCH} patches: `image_size` must be a multiple of "
                f"{_PATCH}, got {image_size} (e.g. {max(_PATCH, int(image_size) // _PATCH * _PATCH)})."
            )
        return vit_encoder(channels, int(image_size), patch_size=_PATCH, interpolate_position=interpolate_position,
                           **_VIT_SIZES[encoder])
    if encoder == "slice_resnet18":
        return SliceEncoder(resnet18_encoder(spatial_dims=2, in_channels=channels, pool=False, small_images=small_images))
    build = resnet18_encoder if encoder == "resnet18" else resnet50_encoder
    return build(spatial_dims=2, in_channels=channels, pool=True, small_images=small_images)
