"""Distances to centroids and the seeding steps of k-means, in PyTorch on the features' device.

The squared L2 distance is expanded as ``||f||^2 - 2 f.c + ||c||^2`` so that one (N, D) x (D, K) matmul gives
every distance, the same expansion PiCIE's reference ``utils.compute_negative_euclidean`` uses with the
centroids as a 1x1 convolution. Rows are processed in chunks so the (N, K) distance matrix of a large
collection is never held at once.
"""

from __future__ import annotations

import torch

__all__ = ["check_feature_rows", "farthest_rows", "kmeans_plus_plus", "nearest_centroid", "squared_distances"]

# rows per distance chunk: a 65536 x K float32 block (K <= ~30 here, under 8 MiB)
CHUNK_ROWS = 65536


def check_feature_rows(features: torch.Tensor, name: str = "features") -> None:
    """Raise a ValueError naming ``name`` unless ``features`` is a 2-D floating-point tensor."""
    if not isinstance(features, torch.Tensor) or features.ndim != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"{name} must be an (N, D) tensor of feature rows, got {shape}")
    if not features.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {features.dtype}")


def squared_distances(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Squared L2 distances of every row to every centroid, ``||f||^2 - 2 f.c + ||c||^2`` in one matmul.

    Follows the expansion of the reference ``utils.compute_negative_euclidean`` (PiCIE, Cho et al. 2021),
    without the sign. Computed in float32 (autocast disabled) and clamped at 0 (rounding can make the expansion slightly negative).

    Args:
        features: (N, D) floating-point rows.
        centroids: (K, D) floating-point centroids.

    Returns:
        (N, K) float32 tensor on the features' device.

    Raises:
        ValueError: when the shapes are not (N, D) and (K, D) with the same D.
    """
    check_feature_rows(features)
    check_feature_rows(centroids, "centroids")
    if features.shape[1] != centroids.shape[1]:
        raise ValueError(
            f"features have {features.shape[1]} channels but the centroids have {centroids.shape[1]}: "
            "the k-means centroids must come from features of the same size"
        )
    f = features.float()
    c = centroids.to(device=f.device, dtype=torch.float32)
    # in float32 even under AMP's autocast: the expansion cancels, and fp16 would lose the small distances
    with torch.autocast(device_type=f.device.type, enabled=False):
        dist = (f * f).sum(1, keepdim=True) - 2.0 * (f @ c.T) + (c * c).sum(1)[None, :]
    return dist.clamp_min_(0.0)


def nearest_centroid(features: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of, and squared distance to, each row's nearest centroid (chunked over rows).

    Args:
        features: (N, D) floating-point rows.
        centroids: (K, D) centroids.

    Returns:
        ``(labels, distances)``: (N,) long and (N,) float32, on the features' device.
    """
    check_feature_rows(features)
    labels, dists = [], []
    for start in range(0, max(features.shape[0], 1), CHUNK_ROWS):
        d, i = squared_distances(features[start : start + CHUNK_ROWS], centroids).min(dim=1)
        labels.append(i)
        dists.append(d)
    return torch.cat(labels), torch.cat(dists)


def kmeans_plus_plus(features: torch.Tensor, num_clusters: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007): each new seed drawn with probability ~ D(x)^2.

    Stands in for the seeding of ``faiss.Clustering`` that the reference ``utils.get_init_centroids`` calls.
    Sampling uses the cumulative sum and ``searchsorted`` (no category limit as in ``torch.multinomial``).

    Args:
        features: (N, D) float32 rows.
        num_clusters: K, the number of seeds.
        generator: a ``torch.Generator`` on the features' device.

    Returns:
        (K, D) float32 seeds, rows of ``features``.

    Raises:
        ValueError: when the rows have fewer than K distinct values (every remaining distance is 0),
            e.g. the features of a constant image.
    """
    check_feature_rows(features)
    n = features.shape[0]
    if n < num_clusters:
        raise ValueError(f"k-means with num_clusters={num_clusters} needs at least {num_clusters} feature rows, got {n}")
    first = torch.randint(n, (1,), generator=generator, device=generator.device).to(features.device)
    chosen = [first]
    closest = squared_distances(features, features[first]).squeeze(1)
    for k in range(1, num_clusters):
        cumulative = closest.double().cumsum(0)
        total = cumulative[-1]
        if total.item() <= 0.0:
            raise ValueError(
                f"k-means with num_clusters={num_clusters} needs {num_clusters} distinct feature rows, but the "
                f"{n} rows given have only {k} distinct values (e.g. features of a constant image)"
            )
        u = torch.rand(1, generator=generator, device=generator.device, dtype=torch.float64).to(features.device)
        index = torch.searchsorted(cumulative, u * total, right=True).clamp_max_(n - 1)
        chosen.append(index)
        closest = torch.minimum(closest, squared_distances(features, features[index]).squeeze(1))
    return features[torch.cat(chosen)].float().clone()


def farthest_rows(distances: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` rows farthest from their own nearest centroid, farthest first.

    The rule for re-seeding empty clusters: an empty cluster takes a row its current cluster explains worst
    (as scikit-learn's k-means relocates empty clusters), each empty cluster a different row.

    Args:
        distances: (N,) squared distance of each row to its nearest centroid.
        count: how many rows.

    Raises:
        ValueError: when there are fewer rows than ``count``.
    """
    if count > distances.shape[0]:
        raise ValueError(f"cannot re-seed {count} empty clusters from only {distances.shape[0]} feature rows")
    return distances.topk(count).indices
