"""``PiCIETrainer``: unsupervised segmentation by clustering pixel features (Cho et al., CVPR 2021).

Each epoch alternates the two steps of PiCIE (Algorithm 1): at the epoch's start the clustering step
(:func:`~monai_ssl.engines.picie_clustering.cluster_epoch`: centroids and pixel labels of both views of every
training image), then the training iterations, which minimise :class:`~monai_ssl.losses.PiCIELoss` (within-view
and cross-view cross-entropy) against those labels. No mask is read. When the run completes, the network's
own centroids are set from the un-augmented training images (:func:`~monai_ssl.engines.picie_clustering.cluster_plain_images`),
so the saved model segments by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from ignite.engine import Engine, EventEnum, Events
from monai.engines.utils import IterationEvents
from torch import nn
from torch.optim.optimizer import Optimizer

from monai_ssl.engines.picie_clustering import (
    ClusteringResult,
    PiCIEViewFeatures,
    batch_images_and_indices,
    cluster_epoch,
    cluster_plain_images,
)
from monai_ssl.engines.step_trainer import OptimizerStepTrainer
from monai_ssl.losses.picie import PiCIELoss
from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.transforms import PiCIEAugmentation

__all__ = ["PiCIEEvents", "PiCIETrainer", "picie_scalars"]

logger = logging.getLogger("monai_ssl")


class PiCIEEvents(EventEnum):
    """Events of :class:`PiCIETrainer`: ``CLUSTERING_COMPLETED`` fires after each epoch's clustering step
    (``engine.state.clustering`` holds its :class:`~monai_ssl.engines.picie_clustering.ClusteringResult`)."""

    CLUSTERING_COMPLETED = "clustering_completed"


class PiCIETrainer(OptimizerStepTrainer):
    """Train a :class:`~monai_ssl.networks.PiCIENet` with PiCIE, without labels.

    Args:
        device: where to train.
        max_epochs: epochs to run.
        train_data_loader: shuffled training batches ``{"image": (B, C, H, W) in [0, 1], "index": (B,)}``
            (items numbered from 0 by :func:`~monai_ssl.data.indexed_images`); its length is the epoch.
        cluster_data_loader: the same items once each, in order (no shuffling, no dropped item), for the
            clustering steps; it may use a larger batch (the reference's ``batch_size_cluster``).
        network: the PiCIE network.
        optimizer: its optimizer (S4MI: SGD, lr 1e-4, momentum 0.9).
        num_clusters: K (at least 2); ``None`` (default): the network's ``num_clusters``.
        augmentation: the photometric views and the equivariant transform (default: the reference's).
        seed: draws the views of each image per epoch, and the k-means initialisations.
        loss_function: default :class:`~monai_ssl.losses.PiCIELoss`.
        kmeans_init_points: pixel features held to initialise each view's k-means (the memory bound).
        kmeans_init_iterations: Lloyd iterations of each initialisation (reference: 30).
        kmeans_pixels_per_image: pixel features per image fed to k-means (``None``: all).
        cluster_weighting: ``"frequency"`` (reference) or ``"none"``: the cross-entropy's per-cluster weights.
        cluster_batch_statistics: the epochs' clustering steps normalise with batch statistics, as the training steps
            (:func:`~monai_ssl.engines.picie_clustering.clustering_mode`); False: eval mode, as the reference. The
            model's final clusters always use eval mode, as inference does.
        preview_images: un-augmented images labeled after each clustering step for the TensorBoard overlays.
        show_progress: progress bars for the clustering passes.
        run_name: the run's name in messages.
        trainer_kwargs: ``train_handlers``, ``amp``, ``epoch_length``, ``non_blocking``, ``accumulation_steps``,
            ``finite_check_interval``, ``max_grad_norm``, ...: as :class:`~monai_ssl.engines.OptimizerStepTrainer`.

    Raises:
        ValueError: ``num_clusters`` below 2 or other than the network's, or a cluster loader without a ``dataset``.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        cluster_data_loader: Iterable,
        network: nn.Module,
        optimizer: Optimizer,
        num_clusters: int | None = None,
        augmentation: PiCIEAugmentation | None = None,
        seed: int = 0,
        loss_function: PiCIELoss | None = None,
        kmeans_init_points: int = 300_000,
        kmeans_init_iterations: int = 30,
        kmeans_pixels_per_image: int | None = None,
        cluster_weighting: str = "frequency",
        cluster_batch_statistics: bool = True,
        preview_images: int = 8,
        show_progress: bool = True,
        run_name: str = "PiCIE",
        **trainer_kwargs: Any,
    ) -> None:
        model_clusters = getattr(unwrap_parallel(network), "num_clusters", num_clusters)
        num_clusters = model_clusters if num_clusters is None else num_clusters
        if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 2:
            raise ValueError(f"`num_clusters` must be an integer of at least 2 (background and lesion), got "
                             f"{num_clusters!r}.")
        if model_clusters is not None and model_clusters != num_clusters:
            raise ValueError(f"`num_clusters` ({num_clusters}) differs from the network's ({model_clusters}).")
        handlers = list(trainer_kwargs.pop("train_handlers", None) or [])
        super().__init__(device=device, max_epochs=max_epochs, train_data_loader=train_data_loader,
                         optimizers=optimizer, run_name=run_name, **trainer_kwargs)
        self.network = network
        self.cluster_data_loader = cluster_data_loader
        dataset = getattr(cluster_data_loader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__len__"):
            raise ValueError("`cluster_data_loader` must be a DataLoader over the training items (its `dataset` gives the "
                             "number of images whose cluster labels are kept).")
        self.num_items = len(dataset)
        self.num_clusters = int(num_clusters)
        self.views = PiCIEViewFeatures(network, augmentation or PiCIEAugmentation(), seed)
        self.loss_function = loss_function or PiCIELoss()
        self.kmeans_settings = {"init_points": int(kmeans_init_points), "init_iterations": int(kmeans_init_iterations),
                                "pixels_per_image": kmeans_pixels_per_image}
        self.cluster_weighting = cluster_weighting
        self.cluster_batch_statistics = bool(cluster_batch_statistics)
        self.preview_images = int(preview_images)
        self.show_progress = bool(show_progress)
        self.state.clustering = None
        self.register_events(*PiCIEEvents)
        # the clustering runs before any handler's EPOCH_STARTED, the final clusters before any COMPLETED
        # handler (e.g. the one that writes the model file): so these are registered before the handlers
        self.add_event_handler(Events.EPOCH_STARTED, self.cluster)
        self.add_event_handler(Events.COMPLETED, self.set_model_clusters)
        for handler in handlers:
            handler.attach(self)

    def cluster(self, engine: Engine | None = None) -> ClusteringResult:
        """The clustering step of the epoch that starts (``state.clustering``), then ``CLUSTERING_COMPLETED``."""
        previous = self.state.clustering
        result = cluster_epoch(
            self.views, self.cluster_data_loader, self.num_items, self.state.epoch, self.num_clusters,
            torch.device(self.state.device), cluster_weighting=self.cluster_weighting, amp=self.amp,
            preview_images=self.preview_images, show_progress=self.show_progress,
            labels=None if previous is None else previous.labels, batch_statistics=self.cluster_batch_statistics,
            **self.kmeans_settings,
        )
        self.state.clustering = result
        shares = " | ".join(", ".join(f"{100 * s:.1f}%" for s in view.tolist()) for view in result.shares)
        reseeded = f"; {result.reseeded} empty cluster(s) re-seeded" if result.reseeded else ""
        logger.info(f"{self.run_name} epoch {self.state.epoch}: clustered {self.num_items} images in "
                    f"{result.seconds:.1f} s; cluster shares of the pixels (view 1 | view 2): {shares}{reseeded}")
        self.fire_event(PiCIEEvents.CLUSTERING_COMPLETED)
        return result

    def set_model_clusters(self, engine: Engine | None = None) -> torch.Tensor:
        """Set the network's centroids from the un-augmented training images (when the run completes)."""
        centroids, reseeded = cluster_plain_images(
            unwrap_parallel(self.network), self.cluster_data_loader, self.num_clusters, torch.device(self.state.device),
            seed=self.views.seed, amp=self.amp, show_progress=self.show_progress, **self.kmeans_settings,
        )
        model = unwrap_parallel(self.network)
        model.centroids.copy_(centroids.to(model.centroids.device, model.centroids.dtype))
        note = f" ({reseeded} empty cluster(s) re-seeded)" if reseeded else ""
        logger.info(f"{self.run_name}: the model's {self.num_clusters} clusters are the k-means centroids of the "
                    f"un-augmented training images{note}")
        return centroids

    def _iteration(self, engine: PiCIETrainer, batchdata: Mapping[str, Any]) -> dict[str, Any]:
        """One PiCIE training step on the cluster labels of the epoch."""
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        clustering = engine.state.clustering
        if clustering is None:
            raise RuntimeError(f"{engine.run_name}: no clustering step ran before this iteration.")
        images, indices = batch_images_and_indices(batchdata, engine.state.device, engine.non_blocking, engine.run_name)
        bank = clustering.labels
        labels = bank[indices.to(bank.device)].to(device=images.device, dtype=torch.long, non_blocking=True)
        zero_grad, step = engine._should_step()
        engine.network.train()
        if zero_grad:
            engine.zero_grad()
        with engine.autocast():
            z1, z2 = engine.views(images, indices, engine.state.epoch)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            c1, c2 = clustering.centroids
            w1, w2 = clustering.weights
            terms = engine.loss_function(z1, z2, c1, c2, labels[:, 0], labels[:, 1], w1, w2)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        engine.check_finite(terms["loss"], "PiCIE loss")
        engine.backward(terms["loss"])
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        stepped = engine.step_optimizers() if step else False
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return {
            "image": images,
            "loss": terms["loss"].detach(),
            "within_loss": terms["within"],
            "cross_loss": terms["cross"],
            "lr": engine.optimizers[0].param_groups[0]["lr"],
            "optimizer_stepped": stepped,
        }


def picie_scalars(output: Mapping[str, Any]) -> dict[str, float]:
    """``train/loss``, ``train/within_loss``, ``train/cross_loss`` and ``train/lr`` of a ``PiCIETrainer`` output,
    tagged for MONAI's ``TensorBoardStatsHandler`` (its ``output_transform``)."""
    return {f"train/{k}": float(output[k]) for k in ("loss", "within_loss", "cross_loss", "lr")}
