"""Mini-batch k-means on the features' device, PiCIE's per-epoch clustering (Cho et al., CVPR 2021, Sec. 3).

The reference (``commons.run_mini_batch_kmeans`` of janghyuncho/PiCIE) collects the features of the first
batches, runs a full k-means on them with faiss for the initial centroids (``utils.get_init_centroids``),
then moves each centroid toward the mean of the rows each later batch assigns to it with the rate
``n_k / N_k``. This module does the same in PyTorch on the device the features are on, without faiss: with
K of 2 to ~30 clusters and 128 feature channels every step is one (N, 128) x (128, K) matmul, which PyTorch
runs as fast as faiss would, and pip's faiss-gpu wheels are tied to particular CUDA versions (a CPU-only
faiss would move every feature batch off the GPU). Memory is bounded by ``init_points`` rows: the dataset's
features are never held at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .seeding import check_feature_rows, farthest_rows, kmeans_plus_plus, nearest_centroid

__all__ = ["MiniBatchKMeans"]


class MiniBatchKMeans:
    """Mini-batch k-means with a k-means++/Lloyd initialisation, as PiCIE's ``run_mini_batch_kmeans``.

    Usage, once per epoch and view: ``partial_fit`` every batch of flattened pixel features, then
    ``finalize()`` for the (K, D) centroids and ``assign`` for the pixel labels.

    Attributes:
        num_clusters: K.
        centroids: (K, D) float32 centroids on the features' device, None before initialisation.
        counts: (K,) long, the rows each cluster has absorbed (``N_k`` of the update rule), None before.
        reseeded: how many empty clusters were re-seeded so far (cumulative, for the log).
        initialised: whether the initial k-means has run.
        rows_seen: the rows given to ``partial_fit`` so far.

    Args:
        num_clusters: K, at least 2 (background and lesion).
        init_points: rows collected for the initial k-means (the reference's ``num_init_batches`` in rows).
        init_iterations: Lloyd iterations of the initial k-means (the reference's ``kmeans_n_iter``).
        seed: seed of the k-means++ generator.

    Raises:
        ValueError: for ``num_clusters`` < 2 or not an int, ``init_points`` < ``num_clusters``, or
            ``init_iterations`` < 0.
    """

    def __init__(self, num_clusters: int, init_points: int = 200_000, init_iterations: int = 30, seed: int = 0):
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 2:
            raise ValueError(
                f"num_clusters must be an int of at least 2 (background and lesion), got {num_clusters!r}"
            )
        if isinstance(init_points, bool) or not isinstance(init_points, int) or init_points < num_clusters:
            raise ValueError(
                f"init_points must be an int of at least num_clusters={num_clusters} (rows to seed the clusters "
                f"from), got {init_points!r}"
            )
        if isinstance(init_iterations, bool) or not isinstance(init_iterations, int) or init_iterations < 0:
            raise ValueError(f"init_iterations must be a non-negative int, got {init_iterations!r}")
        self.num_clusters = num_clusters
        self.init_points = init_points
        self.init_iterations = init_iterations
        self.seed = int(seed)
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new epoch's clustering starts from scratch, as in the reference)."""
        self.centroids: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.reseeded = 0
        self.initialised = False
        self.rows_seen = 0
        self._collected: list[torch.Tensor] = []
        self._last_rows: torch.Tensor | None = None
        self._inertia: torch.Tensor | None = None

    @property
    def stored_rows(self) -> int:
        """Rows held for the initial k-means (never more than ``init_points``)."""
        return sum(rows.shape[0] for rows in self._collected)

    @property
    def inertia(self) -> float:
        """Mean squared distance of the last assigned rows to their centroid (nan before any assignment)."""
        return float("nan") if self._inertia is None else float(self._inertia)

    # ------------------------------------------------------------------ fitting
    def partial_fit(self, features: torch.Tensor) -> MiniBatchKMeans:
        """Collect rows for the initial k-means, or apply one mini-batch update once initialised.

        Args:
            features: (N, D) floating-point rows (fp16 from AMP is fine: cast to float32 here).

        Returns:
            self.
        """
        rows = self._rows(features)
        self.rows_seen += rows.shape[0]
        if not self.initialised:
            room = self.init_points - self.stored_rows
            self._collected.append(rows[:room].clone())  # a copy: a view would keep the whole batch alive
            rows = rows[room:]
            if self.stored_rows < self.init_points:
                return self
            self._initialise()
        if rows.shape[0]:
            self._update(rows)
        return self

    def fit(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """``partial_fit`` every batch, then ``finalize``; returns the (K, D) centroids."""
        for batch in batches:
            self.partial_fit(batch)
        return self.finalize()

    def finalize(self) -> torch.Tensor:
        """Initialise on the collected rows if not yet done, re-seed empty clusters, return the centroids.

        A re-seeded cluster gets a count of 1 (the row it was moved to).

        Returns:
            (K, D) float32 centroids.

        Raises:
            ValueError: when ``partial_fit`` saw no rows, or fewer distinct rows than ``num_clusters``.
        """
        if not self.initialised:
            if not self._collected:
                raise ValueError("MiniBatchKMeans.finalize: partial_fit was given no feature rows to cluster")
            self._initialise()
        assert self.centroids is not None and self.counts is not None
        empty = self.counts == 0
        if self._last_rows is not None and bool(empty.any()):
            self.reseed_empty(self._last_rows, empty)
            self.counts[empty] = 1
        return self.centroids

    def assign(self, features: torch.Tensor) -> torch.Tensor:
        """Nearest centroid (squared L2) of each row; sets ``inertia``.

        Args:
            features: (N, D) floating-point rows.

        Returns:
            (N,) long labels on the features' device.

        Raises:
            RuntimeError: before the centroids exist (call ``partial_fit``/``finalize`` first).
        """
        if self.centroids is None:
            raise RuntimeError("MiniBatchKMeans.assign: no centroids yet; call partial_fit and finalize first")
        labels, dists = nearest_centroid(self._rows(features), self.centroids)
        self._inertia = dists.mean()
        return labels

    def reseed_empty(self, rows: torch.Tensor, empty: torch.Tensor) -> int:
        """Move each empty cluster's centroid to a row its current cluster explains worst.

        The rows are ranked by their squared distance to their nearest centroid; the empty clusters take the
        farthest rows, one each, in cluster order. Counted in ``reseeded``.

        Args:
            rows: (N, D) rows to pick from (the collected rows, or the last batch).
            empty: (K,) bool, the clusters to re-seed.

        Returns:
            How many clusters were re-seeded.
        """
        if self.centroids is None:
            raise RuntimeError("MiniBatchKMeans.reseed_empty: no centroids yet")
        which = torch.nonzero(empty.to(self.centroids.device)).flatten()
        if which.numel() == 0:
            return 0
        rows = self._rows(rows)
        _, dists = nearest_centroid(rows, self.centroids)
        picked = farthest_rows(dists, int(which.numel()))
        self.centroids[which] = rows[picked].to(self.centroids.device)
        self.reseeded += int(which.numel())
        return int(which.numel())

    # ------------------------------------------------------------------ steps
    def _rows(self, features: torch.Tensor) -> torch.Tensor:
        check_feature_rows(features)
        if self.centroids is not None and features.shape[1] != self.centroids.shape[1]:
            raise ValueError(
                f"features have {features.shape[1]} channels but the k-means centroids have "
                f"{self.centroids.shape[1]}"
            )
        return features.detach().float()

    def _initialise(self) -> None:
        """k-means++ seeding then ``init_iterations`` Lloyd iterations (``utils.get_init_centroids``)."""
        rows = torch.cat(self._collected)
        self._collected = []
        generator = torch.Generator(device=rows.device)
        generator.manual_seed(self.seed)
        self.centroids = kmeans_plus_plus(rows, self.num_clusters, generator)
        k = self.num_clusters
        for _ in range(self.init_iterations):
            labels, _ = nearest_centroid(rows, self.centroids)
            sizes = torch.bincount(labels, minlength=k)
            sums = torch.zeros_like(self.centroids).index_add_(0, labels, rows)
            filled = sizes > 0
            self.centroids = torch.where(filled[:, None], sums / sizes.clamp_min(1)[:, None], self.centroids)
            if not bool(filled.all()):
                self.reseed_empty(rows, ~filled)
        labels, dists = nearest_centroid(rows, self.centroids)
        self.counts = torch.bincount(labels, minlength=k)
        self._inertia = dists.mean()
        self._last_rows = rows
        self.initialised = True

    def _update(self, rows: torch.Tensor) -> None:
        """The reference's mini-batch step: ``N_k += n_k``, ``c_k <- (1 - n_k/N_k) c_k + n_k/N_k mean_k``."""
        assert self.centroids is not None and self.counts is not None
        labels, dists = nearest_centroid(rows, self.centroids)
        sizes = torch.bincount(labels, minlength=self.num_clusters)
        sums = torch.zeros_like(self.centroids).index_add_(0, labels, rows)
        self.counts = self.counts + sizes
        rate = (sizes.float() / self.counts.clamp_min(1).float())[:, None]
        means = sums / sizes.clamp_min(1)[:, None]
        self.centroids = torch.where((sizes > 0)[:, None], (1 - rate) * self.centroids + rate * means, self.centroids)
        self._inertia = dists.mean()
        self._last_rows = rows
