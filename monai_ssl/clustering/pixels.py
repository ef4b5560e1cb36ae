"""Pixel features to k-means rows and back: flatten, sample, label each pixel, count the cluster shares.

PiCIE (Cho et al., CVPR 2021, Sec. 3) clusters every pixel's feature vector of a (B, D, h, w) feature map;
the reference flattens the map with ``utils.feature_flatten``, labels the pixels with the centroids as a 1x1
convolution (``commons.compute_labels``) and counts the labels per cluster (``utils.postprocess_label``).
Everything here stays on the features' device.
"""

from __future__ import annotations

import torch

from .seeding import nearest_centroid

__all__ = ["assign_pixels", "cluster_shares", "flatten_pixels", "sample_pixels"]


def _check_feature_map(features: torch.Tensor) -> None:
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must be a (B, D, h, w) feature map, got {shape}")
    if not features.is_floating_point():
        raise ValueError(f"features must be a floating-point tensor, got dtype {features.dtype}")


def flatten_pixels(features: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) feature map -> (B*h*w, D) rows, image by image, pixels in row-major order.

    The reference's ``utils.feature_flatten``.
    """
    _check_feature_map(features)
    return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])


def sample_pixels(
    features: torch.Tensor, per_image: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random subset of each image's pixel features, as (B*per_image, D) rows on the features' device.

    Sampling bounds the rows the k-means sees per batch (the issue's "sampled pixels"); each image gives
    ``per_image`` distinct pixels.

    Args:
        features: (B, D, h, w) feature map.
        per_image: pixels per image; None or at least h*w keeps every pixel (``flatten_pixels``).
        generator: the random generator (its device draws the random keys); None uses the global one.

    Raises:
        ValueError: for a map that is not (B, D, h, w) or ``per_image`` < 1.
    """
    _check_feature_map(features)
    b, d, h, w = features.shape
    if per_image is not None and (isinstance(per_image, bool) or not isinstance(per_image, int) or per_image < 1):
        raise ValueError(f"per_image (pixels sampled per image) must be a positive int or None, got {per_image!r}")
    if per_image is None or per_image >= h * w:
        return flatten_pixels(features)
    device = generator.device if generator is not None else features.device
    keys = torch.rand(b, h * w, generator=generator, device=device)
    index = keys.topk(per_image, dim=1).indices.to(features.device)  # (B, p) distinct pixels per image
    picked = features.flatten(2).gather(2, index[:, None, :].expand(b, d, per_image))  # (B, D, p)
    return picked.transpose(1, 2).reshape(-1, d)


def assign_pixels(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Nearest centroid (squared L2) of every pixel: the pixel labels of ``commons.compute_labels``.

    Args:
        features: (B, D, h, w) feature map.
        centroids: (K, D) centroids.

    Returns:
        (B, h, w) long labels on the features' device.

    Raises:
        ValueError: when the map's D differs from the centroids'.
    """
    _check_feature_map(features)
    b, _, h, w = features.shape
    labels, _ = nearest_centroid(flatten_pixels(features), centroids)
    return labels.reshape(b, h, w)


def cluster_shares(labels: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """Share of the pixels in each cluster, (K,) float32 on the labels' device, summing to 1 (a collapse shows as one
    share near 1).

    The reference's per-cluster counts (``utils.postprocess_label``), normalised as in ``compute_labels``.

    Args:
        labels: cluster labels of any shape, integers in [0, K).
        num_clusters: K.

    Raises:
        ValueError: for no labels, non-integer labels, K < 1, or a label outside [0, K).
    """
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
        raise ValueError(f"num_clusters must be a positive int, got {num_clusters!r}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor of cluster indices, got dtype {labels.dtype}")
    if labels.numel() == 0:
        raise ValueError("cluster_shares: labels is empty (no pixels to count)")
    flat = labels.flatten()  # bincount counts any integer dtype: a uint8 label bank is not copied to int64
    if flat.is_signed() and bool((flat < 0).any()):
        raise ValueError(f"cluster labels must lie in [0, {num_clusters}), got a negative label")
    counts = torch.bincount(flat, minlength=num_clusters)
    if counts.shape[0] > num_clusters:
        raise ValueError(f"cluster labels must lie in [0, {num_clusters}), got a label {counts.shape[0] - 1}")
    return counts.float() / flat.numel()
