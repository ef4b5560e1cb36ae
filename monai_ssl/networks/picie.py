"""PiCIE's network: a ResNet with an FPN head that gives one feature vector per pixel, and the cluster centroids.

PiCIE (Cho et al., "PiCIE: Unsupervised Semantic Segmentation using Invariance and Equivariance in
Clustering", CVPR 2021, Sec. 3) clusters pixel features and trains the features on the cluster labels. Its
feature extractor (Sec. 4, "Implementation details"; the reference code's ``PanopticFPN``) is a ResNet
with a feature-pyramid head whose finest level, at a quarter of the input's resolution, gives a
``feature_size``-channel vector per pixel (128 in the reference for ResNet-18). S4MI (Singh et al.) uses
a ResNet-34 backbone.

Here the backbone is the **standard** ResNet of He et al. (7x7 stride-2 stem and max pooling, type-B
shortcuts: :func:`~monai_ssl.networks.resnet18_encoder` / :func:`~monai_ssl.networks.resnet34_encoder`),
not MONAI's stride-1 ``resnet18`` factory, and the head is MONAI's
:class:`~monai.networks.blocks.FeaturePyramidNetwork` over the four stages (1x1 lateral convolutions,
top-down nearest upsampling, a 3x3 convolution per level, as Lin et al. 2017); the reference's head
omits the 3x3 convolutions and upsamples bilinearly, a detail that changes no interface.

The network also holds the **centroids** of its clusters (a buffer, saved with the weights): training
sets them to the k-means centroids of the training images' features when it ends, so that the saved
model segments on its own. :meth:`PiCIENet.forward` gives, per pixel, the negative squared distance
to each centroid (up to a per-pixel constant), upsampled to the input's size: its arg-max is the
nearest centroid, the cluster k-means would assign. It is a MONAI-style segmentation network with
``num_clusters`` output channels, usable by ``SlidingWindowInferer`` and the bundle's postprocessing;
the clusters become classes through a cluster-to-class map (:mod:`monai_ssl.recipes.cluster_naming`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.blocks.feature_pyramid_network import FeaturePyramidNetwork
from torch import nn

from monai_ssl.utils import choose

from .resnet import ResNetEncoder, resnet18_encoder, resnet34_encoder

__all__ = ["PICIE_BACKBONES", "PiCIENet", "centroid_logits"]

PICIE_BACKBONES = {"resnet18": resnet18_encoder, "resnet34": resnet34_encoder}
STAGE_CHANNELS = [64, 128, 256, 512]


def centroid_logits(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Per-pixel scores ``2 f.c - |c|^2`` of ``features`` ``(B, D, h, w)`` against ``centroids`` ``(K, D)``.

    This is ``-|f - c|^2 + |f|^2``: for each pixel its arg-max over the ``K`` channels is the nearest
    centroid in squared Euclidean distance (k-means' assignment), whatever the feature norms.
    """
    centroids = centroids.to(dtype=features.dtype)
    dots = torch.einsum("bdhw,kd->bkhw", features, centroids)
    return 2 * dots - (centroids * centroids).sum(dim=1).view(1, -1, 1, 1)


class PiCIENet(nn.Module):
    """ResNet + FPN pixel features for PiCIE, with the model's cluster centroids (see the module docstring).

    Args:
        spatial_dims: 2 (PiCIE segments 2D images).
        in_channels: image channels (3 for dermoscopy).
        num_clusters: K, the number of clusters (2: lesion and skin), at least 2.
        backbone: ``"resnet18"`` (tests, small runs) or ``"resnet34"`` (S4MI).
        feature_size: channels of the pixel features (128, the reference's ``in_dim``).

    Raises:
        ValueError: ``spatial_dims`` other than 2, ``num_clusters`` below 2, an unknown ``backbone`` or a
            ``feature_size`` below 1 (the setting is named).
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 3, num_clusters: int = 2, backbone: str = "resnet18",
                 feature_size: int = 128) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"`spatial_dims` must be 2 for PiCIE (2D images), got {spatial_dims!r}.")
        if isinstance(num_clusters, bool) or int(num_clusters) != num_clusters or num_clusters < 2:
            raise ValueError(f"`num_clusters` must be an integer of at least 2 (e.g. 2: lesion and skin), got "
                             f"{num_clusters!r}.")
        if isinstance(feature_size, bool) or int(feature_size) != feature_size or feature_size < 1:
            raise ValueError(f"`feature_size` must be a positive integer, got {feature_size!r}.")
        build = choose("backbone", backbone, PICIE_BACKBONES)
        self.backbone: ResNetEncoder = build(spatial_dims=2, in_channels=in_channels, pool=False)
        self.fpn = FeaturePyramidNetwork(spatial_dims=2, in_channels_list=STAGE_CHANNELS, out_channels=int(feature_size))
        self.num_clusters = int(num_clusters)
        self.feature_size = int(feature_size)
        self.register_buffer("centroids", torch.zeros(self.num_clusters, self.feature_size))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised pixel features ``(B, feature_size, H/4, W/4)`` (the finest FPN level)."""
        maps = self.backbone.stage_maps(x)
        pyramid = self.fpn({str(i): m for i, m in enumerate(maps)})
        return F.normalize(pyramid["0"], dim=1)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        """Scores of the ``num_clusters`` clusters per pixel at the input's size (arg-max: the nearest centroid).

        With ``return_features`` the normalised pixel features of :meth:`features` instead (what training
        calls, through a ``DistributedDataParallel`` wrapper too).
        """
        features = self.features(x)
        if return_features:
            return features
        logits = centroid_logits(features, self.centroids)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)
