"""Clustering on the features' device: PiCIE's mini-batch k-means and its pixel helpers."""

from __future__ import annotations

from .kmeans import MiniBatchKMeans
from .pixels import assign_pixels, cluster_shares, flatten_pixels, sample_pixels
from .seeding import farthest_rows, kmeans_plus_plus, nearest_centroid, squared_distances

__all__ = [
    "MiniBatchKMeans",
    "assign_pixels",
    "cluster_shares",
    "farthest_rows",
    "flatten_pixels",
    "kmeans_plus_plus",
    "nearest_centroid",
    "sample_pixels",
    "squared_distances",
]
