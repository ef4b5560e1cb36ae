"""The standard ResNet-18 as a MONAI network that returns feature maps or pooled features."""

from __future__ import annotations

import torch
from monai.networks.nets.resnet import ResNet

__all__ = ["ResNetEncoder", "resnet18_encoder"]


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.act(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.pool:
            x = torch.flatten(self.avgpool(x), 1)
        return x


def resnet18_encoder(spatial_dims: int = 2, in_channels: int = 1, pool: bool = True) -> ResNetEncoder:
    """The standard ResNet-18 of He et al. (CVPR 2016, Table 1) as an encoder with 512 output features.

    Unlike ``monai.networks.nets.resnet18`` (stride-1 first convolution and type-A shortcuts, the
    MedicalNet variant), this is the network of the papers: a 7x7 stride-2 first convolution, 3x3
    stride-2 max pooling, four stages of two basic blocks (64, 128, 256, 512 channels) and type-B
    (1x1 convolution + batch norm, no bias) projection shortcuts. At 224x224 it has 11.2 M
    parameters and downsamples by 32 (7x7 feature maps).

    Args:
        spatial_dims: 2 for images (or slices), 3 for volumes.
        in_channels: input channels (1 for grayscale MRI/ultrasound, 3 for RGB).
        pool: return pooled ``(N, 512)`` features; False returns ``(N, 512, h, w)`` feature maps.
    """
    return ResNetEncoder(
        pool=pool,
        block="basic",
        layers=[2, 2, 2, 2],
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=2,
        shortcut_type="B",
        bias_downsample=False,
    )
