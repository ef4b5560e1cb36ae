"""PiCIE's clustering step, run before each training epoch: k-means of both views' pixel features, then labels.

Cho et al., CVPR 2021, Sec. 3.3 and Algorithm 1; the reference's ``run_mini_batch_kmeans`` and
``compute_labels``. With no gradient, and batch norm on its running statistics (eval mode, the reference's) or on
each batch's own (:func:`clustering_mode`, what :class:`~monai_ssl.engines.PiCIETrainer` uses by default):

1. **Centroids.** One pass over the training images: the pixel features of view 1 and of view 2
   (:meth:`PiCIEViewFeatures.__call__`: the epoch's photometric views, both in the geometry of the epoch's
   equivariant transform) feed one mini-batch k-means per view (:class:`~monai_ssl.clustering.MiniBatchKMeans`,
   on the device; at most ``init_points`` pixel features are held, never the dataset's).
2. **Labels.** A second pass assigns every pixel of both views to its nearest centroid. The labels are kept
   on the device in a bank of ``(images, 2, h, w)`` bytes (one per pixel of the quarter-resolution feature
   map), read by the training iterations by item index.

The views of an image are drawn from ``(seed, epoch, index)`` (:func:`~monai_ssl.transforms.picie_view_params`),
so the training pass sees the very views the labels were computed on, in any batch order; and a run resumed
at an epoch recomputes the same labels from the same weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from monai_ssl.clustering import MiniBatchKMeans, assign_pixels, cluster_shares, sample_pixels
from monai_ssl.transforms import PiCIEAugmentation, geometric_transform, photometric_views, picie_view_params

__all__ = ["ClusteringResult", "PiCIEViewFeatures", "batch_images_and_indices", "cluster_epoch", "cluster_plain_images",
           "clustering_mode"]

logger = logging.getLogger("monai_ssl")
CLUSTER_WEIGHTINGS = ("frequency", "none")
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@dataclass
class ClusteringResult:
    """What one clustering step gives the training epoch and the logs.

    Attributes:
        centroids: per view, the ``(K, D)`` centroids.
        labels: the bank ``(N, 2, h, w)`` (uint8) of every image's cluster labels of both views, on the device.
        weights: per view, the cross-entropy class weights ``(K,)`` (the clusters' pixel shares, the reference's
            default), or ``None`` (``cluster_weighting="none"``).
        shares: per view, the share of the pixels in each cluster ``(K,)``, on the CPU.
        reseeded: empty clusters re-seeded during this step (both views).
        inertia: per view, the k-means mean squared distance of its last update.
        seconds: wall time of the step.
        preview: ``(images, labels)`` of a few un-augmented images with their nearest view-1 centroid per
            pixel, on the CPU, for the TensorBoard overlays (``None``: none asked for).
    """

    centroids: list[torch.Tensor]
    labels: torch.Tensor
    weights: list[torch.Tensor | None]
    shares: list[torch.Tensor]
    reseeded: int
    inertia: list[float]
    seconds: float
    preview: tuple[torch.Tensor, torch.Tensor] | None = None


def batch_images_and_indices(batch: Mapping[str, Any], device: torch.device, non_blocking: bool = False,
                             run_name: str = "PiCIE") -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``(B, C, H, W)`` on ``device`` and the item indices ``(B,)`` (CPU, int64) of a PiCIE batch.

    Raises:
        KeyError: the batch has no ``image`` or no ``index`` (the datalist must come from
            :func:`~monai_ssl.data.indexed_images`); the keys present are named.
    """
    missing = [k for k in ("image", "index") if k not in batch]
    if missing:
        raise KeyError(f"{run_name}: the batch has no {missing} (keys present: {sorted(batch)}); PiCIE's datalist "
                       "items need an 'index' (monai_ssl.data.indexed_images), which finds each image's cluster labels.")
    images = torch.as_tensor(batch["image"]).to(device=device, non_blocking=non_blocking)
    indices = torch.as_tensor(batch["index"]).reshape(-1).long().cpu()
    return images.float() if not images.is_floating_point() else images, indices


class PiCIEViewFeatures:
    """The pixel features of PiCIE's two views of a batch, both in the geometry of the equivariant transform.

    View 1 is the photometric view 1 of the images, transformed geometrically *before* the network; view 2
    is the photometric view 2, transformed *after* the network, on its feature map (Cho et al., Fig. 2,
    ``z1 = f(G(P1(x)))`` and ``z2 = G(f(P2(x)))``; the reference applies the same order). Both feature maps
    are L2-normalised (view 2 again after the resampling).

    Args:
        network: a :class:`~monai_ssl.networks.PiCIENet` (or a DDP wrapper of one): ``network(x, return_features=True)``.
        augmentation: the photometric and geometric settings.
        seed: the run's seed; the views of an image are drawn from ``(seed, epoch, index)``.
    """

    def __init__(self, network: nn.Module, augmentation: PiCIEAugmentation, seed: int = 0) -> None:
        self.network = network
        self.augmentation = augmentation
        self.seed = int(seed)

    def __call__(self, images: torch.Tensor, indices: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z1, z2)``, each ``(B, D, h, w)``, for ``images`` ``(B, C, H, W)`` in [0, 1] with item ``indices``."""
        params = picie_view_params(indices, epoch, self.seed, self.augmentation, channels=images.shape[1])
        view1, view2 = photometric_views(images, params)
        geometric = params.geometric  # per-image rows stay on the host: geometric_transform reads them there
        z1 = self.network(geometric_transform(view1, geometric), return_features=True)
        z2 = self.network(view2, return_features=True)
        z2 = F.normalize(geometric_transform(z2, geometric, size=tuple(z1.shape[2:])), dim=1)
        return z1, z2


def clustering_mode(network: nn.Module, batch_statistics: bool) -> Callable[[], None]:
    """Put ``network`` in its clustering mode and return the function that restores its previous mode.

    ``batch_statistics=False``: eval mode, as the reference (batch norm with its running statistics).
    ``batch_statistics=True``: batch norm normalises with each batch's own statistics, as in the training steps,
    and its running statistics are left untouched (momentum 0 while clustering); nothing else of the network
    changes between modes (the ResNet and FPN have no dropout). A network trained from random weights has
    running statistics that lag far behind its weights in the first epochs (at the start they are the
    initial 0 and 1), so its eval-mode features are not the features the training steps see; clustering with the
    batch statistics gives labels for the features that are trained. The reference's own comment on this
    ("only first run use online batch stats", left disabled) starts from ImageNet weights, whose statistics are
    sensible from the first epoch.
    """
    was_training = network.training
    if not batch_statistics:
        network.eval()
        return lambda: network.train(was_training)
    norms = [m for m in network.modules() if isinstance(m, _BATCH_NORMS)]
    momenta = [m.momentum for m in norms]
    tracked = [m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None for m in norms]
    network.train()
    for m in norms:
        m.momentum = 0.0

    def restore() -> None:
        for m, momentum, count in zip(norms, momenta, tracked):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)
        network.train(was_training)

    return restore


def _progress(loader: Iterable, desc: str, show: bool) -> Iterable:
    total = len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    return tqdm(loader, desc=desc, total=total, leave=False, disable=not show, dynamic_ncols=True)


def _new_kmeans(num_clusters: int, init_points: int, init_iterations: int, seed: int) -> MiniBatchKMeans:
    return MiniBatchKMeans(num_clusters, init_points=init_points, init_iterations=init_iterations, seed=seed)


def cluster_epoch(
    views: PiCIEViewFeatures,
    loader: Iterable[Mapping[str, Any]],
    num_items: int,
    epoch: int,
    num_clusters: int,
    device: torch.device,
    init_points: int = 300_000,
    init_iterations: int = 30,
    pixels_per_image: int | None = None,
    cluster_weighting: str = "frequency",
    amp: bool = False,
    preview_images: int = 0,
    show_progress: bool = True,
    labels: torch.Tensor | None = None,
    batch_statistics: bool = False,
) -> ClusteringResult:
    """The clustering step of ``epoch`` (see the module docstring).

    Args:
        views: the view features of the run.
        loader: every training image once, as ``{"image", "index"}`` batches (no shuffling needed).
        num_items: the number of items (the bank's first dimension); every ``index`` must be below it.
        epoch: the epoch about to be trained (1-based), which draws the views.
        num_clusters: K.
        device: where the network runs.
        init_points: pixel features collected to initialise each view's k-means (its memory bound).
        init_iterations: Lloyd iterations of the initialisation.
        pixels_per_image: pixel features of each image fed to k-means (``None``: all of them).
        cluster_weighting: ``"frequency"`` (cross-entropy weights = the clusters' pixel shares, the reference's
            default) or ``"none"``.
        amp: run the network under autocast.
        preview_images: how many un-augmented images of the first batch to label for the overlays.
        show_progress: show progress bars.
        labels: a bank from the previous epoch to fill again (same shape), to avoid reallocating it.
        batch_statistics: normalise with each batch's own statistics, as the training steps do, instead of the
            running ones (see :func:`clustering_mode`).

    Raises:
        ValueError: an unknown ``cluster_weighting``, an index outside ``[0, num_items)``, or images of another
            size than the first batch's (the bank holds one feature-map size).
    """
    if cluster_weighting not in CLUSTER_WEIGHTINGS:
        raise ValueError(f"`cluster_weighting` must be one of {CLUSTER_WEIGHTINGS}, got {cluster_weighting!r}.")
    start = time.perf_counter()
    network = views.network
    restore = clustering_mode(network, batch_statistics)
    seed = views.seed * 100_003 + int(epoch)
    kmeans = [_new_kmeans(num_clusters, init_points, init_iterations, seed + v) for v in (0, 1)]
    sampler = torch.Generator().manual_seed(seed)
    autocast = torch.autocast(torch.device(device).type, enabled=bool(amp))
    preview = None
    try:
        with torch.no_grad(), autocast:
            for batch in _progress(loader, f"clustering (epoch {epoch})", show_progress):
                images, indices = batch_images_and_indices(batch, device)
                for km, z in zip(kmeans, views(images, indices, epoch)):
                    km.partial_fit(sample_pixels(z, pixels_per_image, sampler))
            centroids = [km.finalize() for km in kmeans]
            for batch in _progress(loader, f"cluster labels (epoch {epoch})", show_progress):
                images, indices = batch_images_and_indices(batch, device)
                z1, z2 = views(images, indices, epoch)
                if labels is None or labels.shape[2:] != z1.shape[2:] or labels.shape[0] != num_items:
                    labels = torch.zeros((num_items, 2, *z1.shape[2:]), dtype=torch.uint8, device=z1.device)
                _check_batch(indices, num_items, z1, labels)
                for v, (z, c) in enumerate(((z1, centroids[0]), (z2, centroids[1]))):
                    labels[indices.to(labels.device), v] = assign_pixels(z, c).to(torch.uint8)
                if preview is None and preview_images > 0:
                    shown = images[:preview_images]
                    plain = network(shown, return_features=True)
                    preview = (shown.float().cpu(), assign_pixels(plain, centroids[0]).cpu())
    finally:
        restore()
    if labels is None:
        raise ValueError("PiCIE clustering: the training loader gave no batch; there is nothing to cluster.")
    shares = [cluster_shares(labels[:, v], num_clusters) for v in (0, 1)]  # every image's labels of this epoch
    weights = [share if cluster_weighting == "frequency" else None for share in shares]
    return ClusteringResult(
        centroids=centroids, labels=labels, weights=weights, shares=[share.cpu() for share in shares],
        reseeded=sum(km.reseeded for km in kmeans), inertia=[float(km.inertia) for km in kmeans],
        seconds=time.perf_counter() - start, preview=preview,
    )


def _check_batch(indices: torch.Tensor, num_items: int, features: torch.Tensor, labels: torch.Tensor) -> None:
    if int(indices.min()) < 0 or int(indices.max()) >= num_items:
        raise ValueError(f"PiCIE clustering: item index {int(indices.max())} is outside [0, {num_items}); the "
                         "datalist's 'index' values must number its items from 0 (monai_ssl.data.indexed_images).")
    if features.shape[2:] != labels.shape[2:]:
        raise ValueError(f"PiCIE clustering: images give {tuple(features.shape[2:])} feature maps, the first batch "
                         f"{tuple(labels.shape[2:])}; every training image must be resized to one size.")


def cluster_plain_images(
    network: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    num_clusters: int,
    device: torch.device,
    seed: int = 0,
    init_points: int = 300_000,
    init_iterations: int = 30,
    pixels_per_image: int | None = None,
    amp: bool = False,
    show_progress: bool = True,
) -> tuple[torch.Tensor, int]:
    """The k-means centroids ``(K, D)`` of the un-augmented images' pixel features, and the re-seeded count.

    What the trained model keeps as its clusters (the reference's evaluation "with fresh clusters" on the
    training images without augmentation), so that inference on plain images finds the same clusters.
    """
    was_training = network.training
    network.eval()
    kmeans = _new_kmeans(num_clusters, init_points, init_iterations, int(seed) * 100_003)
    sampler = torch.Generator().manual_seed(int(seed))
    try:
        with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=bool(amp)):
            for batch in _progress(loader, "final clusters", show_progress):
                images, _ = batch_images_and_indices(batch, device)
                kmeans.partial_fit(sample_pixels(network(images, return_features=True), pixels_per_image, sampler))
        centroids = kmeans.finalize()
    finally:
        network.train(was_training)
    return centroids, int(kmeans.reseeded)
