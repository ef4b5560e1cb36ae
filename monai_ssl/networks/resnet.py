"""The standard ResNet-18 and ResNet-50 as MONAI networks that return feature maps or pooled features."""

from __future__ import annotations

import torch
from monai.networks.nets.resnet import ResNet

__all__ = ["ResNetEncoder", "resnet18_encoder", "resnet34_encoder", "resnet50_encoder"]


class ResNetEncoder(ResNet):
    """A MONAI ``ResNet`` without its classification layer.

    ``forward`` returns the last stage's feature maps ``(N, F, h, w)`` when ``pool`` is False, or the
    globally average-pooled features ``(N, F)`` when ``pool`` is True. ``out_features`` is ``F``.

    Args:
        pool: average-pool the feature maps to a vector.
        kwargs: arguments of :class:`monai.networks.nets.ResNet` (``feed_forward`` is forced False).
    """

    def __init__(self, pool: bool = True, **kwargs) -> None:
        kwargs["feed_forward"] = False
        super().__init__(**kwargs)
        self.pool = pool
        self.out_features = int(self.in_planes)  # channels after the last stage (times the block expansion)

    def stage_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps after each of the four stages (strides 4, 8, 16, 32 with the standard stem).

        An FPN reads these (e.g. PiCIE's feature extractor, :class:`~monai_ssl.networks.PiCIENet`).
        """
        x = self.act(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [c1, c2, c3, self.layer4(c3)]  # written out, not a loop over the stages: TorchScript scripts it

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.stage_maps(x)[-1]
        if self.pool:
            x = torch.flatten(self.avgpool(x), 1)
        return x


def _stem_arguments(small_images: bool) -> dict:
    """First-convolution and max-pooling arguments of :class:`monai.networks.nets.ResNet` for a stem.

    The standard stem of He et al. (CVPR 2016, Table 1) is a 7x7 stride-2 convolution followed by
    3x3 stride-2 max pooling (downsampling by 4 before the first stage). The small-image stem, used
    for 32x32 CIFAR images (He et al. Sec. 4.2; the usual choice of self-supervised libraries for
    CIFAR/MedMNIST-size inputs), is a 3x3 stride-1 convolution without max pooling, so the network
    downsamples by 8 instead of 32.
    """
    if small_images:
        return {"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True}
    return {"conv1_t_size": 7, "conv1_t_stride": 2, "no_max_pool": False}


def _basic_resnet(layers: list[int], spatial_dims: int, in_channels: int, pool: bool, small_images: bool) -> ResNetEncoder:
    """A standard ResNet of basic blocks (ResNet-18/34): ``layers`` blocks per stage, 64-512 channels, type-B
    shortcuts (1x1 convolution + batch norm, no bias), the stem of :func:`_stem_arguments`."""
    return ResNetEncoder(
        pool=pool,
        block="basic",
        layers=layers,
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        shortcut_type="B",
        bias_downsample=False,
        **_stem_arguments(small_images),
    )


def resnet18_encoder(
    spatial_dims: int = 2, in_channels: int = 1, pool: bool = True, small_images: bool = False
) -> ResNetEncoder:
    """The standard ResNet-18 of He et al. (CVPR 2016, Table 1) as an encoder with 512 output features.

    Unlike ``monai.networks.nets.resnet18`` (stride-1 first convolution and type-A shortcuts, the
    MedicalNet variant), this is the network of the papers: a 7x7 stride-2 first convolution, 3x3
    stride-2 max pooling, four stages of two basic blocks (64, 128, 256, 512 channels) and type-B
    (1x1 convolution + batch norm, no bias) projection shortcuts. At 224x224 it has 11.2 M
    parameters and downsamples by 32 (7x7 feature maps).

    With ``small_images`` the stem is a 3x3 stride-1 convolution without max pooling (for 28-64 px
    images such as MedMNIST's): the network downsamples by 8 (4x4 feature maps at 32x32) and has
    7,680 fewer parameters with 3 input channels.

    Args:
        spatial_dims: 2 for images (or slices), 3 for volumes.
        in_channels: input channels (1 for grayscale MRI/ultrasound, 3 for RGB).
        pool: return pooled ``(N, 512)`` features; False returns ``(N, 512, h, w)`` feature maps.
        small_images: use the small-image stem (3x3 stride-1 convolution, no max pooling).
    """
    return _basic_resnet([2, 2, 2, 2], spatial_dims, in_channels, pool, small_images)


def resnet34_encoder(
    spatial_dims: int = 2, in_channels: int = 3, pool: bool = True, small_images: bool = False
) -> ResNetEncoder:
    """The standard ResNet-34 of He et al. (CVPR 2016, Table 1) as an encoder with 512 output features.

    The stem, shortcuts and channels of :func:`resnet18_encoder` with 3, 4, 6 and 3 basic blocks per
    stage (21.3 M parameters with 3 input channels). The backbone of PiCIE in S4MI (Singh et al.).

    Args:
        spatial_dims: 2 for images (or slices), 3 for volumes.
        in_channels: input channels (3 for RGB).
        pool: return pooled ``(N, 512)`` features; False returns ``(N, 512, h, w)`` feature maps.
        small_images: use the small-image stem (3x3 stride-1 convolution, no max pooling).
    """
    return _basic_resnet([3, 4, 6, 3], spatial_dims, in_channels, pool, small_images)


def resnet50_encoder(
    spatial_dims: int = 2, in_channels: int = 3, pool: bool = True, small_images: bool = False
) -> ResNetEncoder:
    """The standard ResNet-50 of He et al. (CVPR 2016, Table 1) as an encoder with 2048 output features.

    A 7x7 stride-2 first convolution, 3x3 stride-2 max pooling, four stages of 3, 4, 6 and 3
    bottleneck blocks (1x1, 3x3, 1x1 convolutions; 64, 128, 256, 512 inner channels expanded 4
    times; the stride on the 3x3 convolution, as in torchvision's "ResNet v1.5") and type-B
    projection shortcuts (1x1 convolution + batch norm, no bias). With 3 input channels it has
    23,508,032 parameters: torchvision's ``resnet50`` has 25,557,032, of which 2,049,000 are its
    2048x1000 classifier. At 224x224 it downsamples by 32 (7x7 feature maps). This is the CNN of
    DINO (Caron et al. 2021) and CASS (Singh et al. 2022).

    Args:
        spatial_dims: 2 for images (or slices), 3 for volumes.
        in_channels: input channels (3 for RGB, as in the papers; 1 for grayscale).
        pool: return pooled ``(N, 2048)`` features; False returns ``(N, 2048, h, w)`` feature maps.
        small_images: use the small-image stem (3x3 stride-1 convolution, no max pooling) for
            28-64 px images; 4x4 feature maps at 32x32.
    """
    return ResNetEncoder(
        pool=pool,
        block="bottleneck",
        layers=[3, 4, 6, 3],
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        shortcut_type="B",
        bias_downsample=False,
        **_stem_arguments(small_images),
    )
