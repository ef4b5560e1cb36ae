"""The networks of the dermoscopy (ISIC) bundle, one definition for training, evaluation, inference and export.

Two architectures, named by the ``architecture`` setting:

- ``"cross_teaching"``: a :class:`~monai_ssl.networks.SegmentationPair` of a MONAI ``UNet`` (channels 16-256,
  strides 2, 2 residual units: the CNN) and a 2D ``SwinUNETR`` (the Transformer), trained together by
  cross teaching (Luo et al., MIDL 2022); ``output`` chooses what the pair returns (see the class);
- ``"supervised"``: the fully supervised baseline of S4MI (Singh et al.), a U-Net with a ResNet-34 encoder
  (MONAI ``FlexibleUNet``, no ImageNet weights).

Each architecture also names its weights file in ``models/``, the training config that writes it and the
network an evaluation report names.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from monai_ssl.utils import choose

__all__ = ["LESION_ARCHITECTURES", "LesionArchitecture", "lesion_model_file", "lesion_network", "lesion_network_name",
           "lesion_trained_by"]

UNET_CHANNELS = (16, 32, 64, 128, 256)
UNET_STRIDES = (2, 2, 2, 2)


@dataclass(frozen=True)
class LesionArchitecture:
    """What an architecture of the bundle is called by.

    Attributes:
        model_name: its selected weights in ``models/`` (``model.pt``: the file inference and MONAI Label serve).
        trained_by: the training config that writes them (named by load errors).
        report_name: the network named in an evaluation report; ``None`` names the pair's ``inference_network``.
    """

    model_name: str
    trained_by: str
    report_name: str | None


LESION_ARCHITECTURES = {
    "cross_teaching": LesionArchitecture("model.pt", "train.json", None),
    "supervised": LesionArchitecture("supervised_model.pt", "train.json + supervised_train.json", "resnet34_unet"),
}


def _architecture(name: str) -> LesionArchitecture:
    return choose("architecture", name, LESION_ARCHITECTURES)


def lesion_network(architecture: str = "cross_teaching", in_channels: int = 3, num_classes: int = 2,
                   swin_feature_size: int = 24, output: str = "cnn") -> nn.Module:
    """The network of ``architecture`` (see the module docstring), on the CPU.

    Args:
        architecture: ``"cross_teaching"`` or ``"supervised"``.
        in_channels: image channels (3 for RGB).
        num_classes: output channels (background and lesion: 2).
        swin_feature_size: the SwinUNETR's width (cross-teaching only; a multiple of 12).
        output: what the cross-teaching pair returns: ``"cnn"``, ``"transformer"``, ``"mean"`` or ``"all"``.

    Raises:
        ValueError: an unknown ``architecture`` or ``output`` (the message names the setting and the choices).
    """
    from monai.networks.nets import FlexibleUNet, SwinUNETR, UNet

    from monai_ssl.networks import SegmentationPair

    _architecture(architecture)
    if architecture == "supervised":
        return FlexibleUNet(in_channels=in_channels, out_channels=num_classes, backbone="resnet34", pretrained=False,
                            spatial_dims=2)
    cnn = UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=UNET_CHANNELS,
               strides=UNET_STRIDES, num_res_units=2)
    transformer = SwinUNETR(spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
                            feature_size=swin_feature_size)
    return SegmentationPair(cnn, transformer, output=output)


def lesion_model_file(ckpt_dir: str, architecture: str) -> str:
    """``<ckpt_dir>/model.pt`` (cross-teaching) or ``<ckpt_dir>/supervised_model.pt`` (the baseline)."""
    return f"{ckpt_dir}/{_architecture(architecture).model_name}"


def lesion_trained_by(architecture: str) -> str:
    """The training config whose run writes the weights of ``architecture``."""
    return _architecture(architecture).trained_by


def lesion_network_name(architecture: str, inference_network: str) -> str:
    """The network an evaluation report names: the pair's ``inference_network``, or ``"resnet34_unet"``."""
    return _architecture(architecture).report_name or inference_network
