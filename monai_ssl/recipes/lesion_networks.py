"""The networks of the dermoscopy (ISIC) bundle, one definition for training, evaluation, inference and export.

Three architectures, named by the ``architecture`` setting:

- ``"cross_teaching"``: a :class:`~monai_ssl.networks.SegmentationPair` of a MONAI ``UNet`` (channels 16-256,
  strides 2, 2 residual units: the CNN) and a 2D ``SwinUNETR`` (the Transformer), trained together by
  cross teaching (Luo et al., MIDL 2022); ``output`` chooses what the pair returns (see the class);
- ``"supervised"``: the fully supervised baseline of S4MI (Singh et al.), a U-Net with a ResNet-34 encoder
  (MONAI ``FlexibleUNet``, no ImageNet weights);
- ``"picie"``: PiCIE (Cho et al., CVPR 2021), trained with no label at all: a
  :class:`~monai_ssl.networks.PiCIENet` (ResNet-18/34 + FPN pixel features and ``num_clusters`` centroids)
  whose output channels are clusters, named as classes by a cluster-to-class map
  (:mod:`~monai_ssl.recipes.cluster_naming`).

Each architecture also names its weights file in ``models/``, the training config that writes it and the
network an evaluation report names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from torch import nn

from monai_ssl.utils import choose

__all__ = ["LESION_ARCHITECTURES", "LesionArchitecture", "lesion_model_file", "lesion_network", "lesion_network_name",
           "lesion_outputs_clusters", "lesion_selection_split", "lesion_trained_by", "served_architecture"]

UNET_CHANNELS = (16, 32, 64, 128, 256)
UNET_STRIDES = (2, 2, 2, 2)


@dataclass(frozen=True)
class LesionArchitecture:
    """What an architecture of the bundle is called by.

    Attributes:
        model_name: its selected weights in ``models/`` (``model.pt``: the file inference and MONAI Label serve).
        trained_by: the training config that writes them (named by load errors).
        report_name: the network named in an evaluation report; ``None`` names the pair's ``inference_network``.
        selection_split: the split its training selects the model on (``"val"``: the best epoch), or ``None``:
            it selects nothing (PiCIE keeps its last epoch, with no label to validate on).
        outputs_clusters: its output channels are clusters, named with classes by a cluster-to-class map
            (:mod:`~monai_ssl.recipes.lesion_clusters`), not classes.
    """

    model_name: str
    trained_by: str
    report_name: str | None
    selection_split: str | None = "val"
    outputs_clusters: bool = False


LESION_ARCHITECTURES = {
    "cross_teaching": LesionArchitecture("model.pt", "train.json", None),
    "supervised": LesionArchitecture("supervised_model.pt", "train.json + supervised_train.json", "resnet34_unet"),
    "picie": LesionArchitecture("picie_model.pt", "train.json + picie.json", "picie", selection_split=None,
                                outputs_clusters=True),
}


def _architecture(name: str) -> LesionArchitecture:
    return choose("architecture", name, LESION_ARCHITECTURES)


def lesion_network(architecture: str = "cross_teaching", in_channels: int = 3, num_classes: int = 2,
                   swin_feature_size: int = 24, output: str = "cnn", num_clusters: int = 2,
                   picie_backbone: str = "resnet34", feature_size: int = 128,
                   pretrained_weights: str | None = None) -> nn.Module:
    """The network of ``architecture`` (see the module docstring), on the CPU.

    Args:
        architecture: ``"cross_teaching"``, ``"supervised"`` or ``"picie"``.
        in_channels: image channels (3 for RGB).
        num_classes: output channels (background and lesion: 2).
        swin_feature_size: the SwinUNETR's width (cross-teaching only; a multiple of 12).
        output: what the cross-teaching pair returns: ``"cnn"``, ``"transformer"``, ``"mean"`` or ``"all"``.
        num_clusters: PiCIE's clusters (its output channels), at least 2.
        picie_backbone: PiCIE's ResNet, ``"resnet34"`` (S4MI) or ``"resnet18"``.
        feature_size: PiCIE's pixel-feature channels.
        pretrained_weights: PiCIE only: an ImageNet checkpoint of its ResNet (torchvision or timm layout, e.g.
            ``resnet34-b627a593.pth``) to start the backbone from, as the reference code does (``--pretrain``);
            read with :func:`~monai_ssl.networks.load_imagenet_weights` (the report is logged). ``None``: random.

    Raises:
        ValueError: an unknown ``architecture`` or ``output`` (the message names the setting and the choices).
    """
    from monai.networks.nets import FlexibleUNet, SwinUNETR, UNet

    from monai_ssl.networks import PiCIENet, SegmentationPair

    _architecture(architecture)
    if architecture == "picie":
        network = PiCIENet(spatial_dims=2, in_channels=in_channels, num_clusters=num_clusters, backbone=picie_backbone,
                           feature_size=feature_size)
        if pretrained_weights:
            from monai_ssl.networks import load_imagenet_weights

            load_imagenet_weights(network.backbone, pretrained_weights, log=logging.getLogger("monai_ssl").info)
        return network
    if pretrained_weights:
        raise ValueError(f"`pretrained_weights` is for architecture 'picie' (its ResNet backbone); architecture "
                         f"{architecture!r} starts from random weights.")
    if architecture == "supervised":
        return FlexibleUNet(in_channels=in_channels, out_channels=num_classes, backbone="resnet34", pretrained=False,
                            spatial_dims=2)
    cnn = UNet(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, channels=UNET_CHANNELS,
               strides=UNET_STRIDES, num_res_units=2)
    transformer = SwinUNETR(spatial_dims=2, in_channels=in_channels, out_channels=num_classes,
                            feature_size=swin_feature_size)
    return SegmentationPair(cnn, transformer, output=output)


def lesion_model_file(ckpt_dir: str, architecture: str) -> str:
    """``<ckpt_dir>/model.pt`` (cross-teaching), ``supervised_model.pt`` (the baseline) or ``picie_model.pt``."""
    return f"{ckpt_dir}/{_architecture(architecture).model_name}"


def lesion_trained_by(architecture: str) -> str:
    """The training config whose run writes the weights of ``architecture``."""
    return _architecture(architecture).trained_by


def lesion_network_name(architecture: str, inference_network: str) -> str:
    """The network an evaluation report names: the pair's ``inference_network``, ``"resnet34_unet"`` or ``"picie"``."""
    return _architecture(architecture).report_name or inference_network


def lesion_selection_split(architecture: str) -> str | None:
    """The split the training of ``architecture`` selects its model on (``"val"``), or ``None`` when it selects none,
    so that evaluate.json refuses to report on a split only where the model was chosen on it."""
    return _architecture(architecture).selection_split



def lesion_outputs_clusters(architecture: str) -> bool:
    """Whether the output channels of ``architecture`` are clusters (PiCIE), which a cluster-to-class map names."""
    return _architecture(architecture).outputs_clusters

def served_architecture(ckpt_dir: str, default: str = "cross_teaching") -> str:
    """The architecture of the served model ``<ckpt_dir>/model.pt``, as its settings file records it (``default`` when
    there is none, e.g. a model trained before architectures were recorded).

    What ``inference.json`` (and so MONAI Label, which serves ``models/model.pt``) builds by default: the
    cross-teaching pair after ``train.json``, or PiCIE's network once ``picie.json --publish True`` has made the
    label-free model the served one.

    Raises:
        ValueError: the settings name an architecture this bundle does not know.
    """
    from monai_ssl.networks.model_settings import read_model_settings, settings_file

    served = f"{ckpt_dir}/model.pt"
    settings = read_model_settings(served) if settings_file(served).is_file() else {}
    architecture = settings.get("architecture", default)
    _architecture(architecture)
    return architecture
