"""Watch PiCIE's clusters after each clustering step: their sizes in TensorBoard, overlays, a collapse warning.

PiCIE can collapse: one cluster takes (nearly) every pixel, and the training labels then say nothing. S4MI
(Singh et al.) saw it with Adam and trained with SGD instead. After each epoch's clustering step
(:class:`~monai_ssl.engines.PiCIETrainer`'s ``CLUSTERING_COMPLETED``) this handler

- writes ``clusters/share/view<v>/cluster<k>`` (the share of the pixels in each cluster),
  ``clusters/largest_share``, ``clusters/reseeded``, ``clusters/inertia/view<v>`` and ``clusters/seconds``;
- draws a few un-augmented training images with their pixels coloured by cluster (``clusters/overlay``);
- warns when the largest cluster has held more than ``max_share`` of the pixels (in either view) for
  ``patience`` epochs in a row, and says what to change.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine

from monai_ssl.engines.picie_trainer import PiCIEEvents
from monai_ssl.handlers.segmentation_overlay_logger import tile_pictures

__all__ = ["ClusterMonitor", "cluster_overlay"]

logger = logging.getLogger("monai_ssl")

# distinct colours for the first clusters (tab10), then the cycle repeats
_PALETTE = np.array([
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
], dtype=np.float32) / 255.0


def cluster_overlay(image: torch.Tensor, clusters: torch.Tensor, alpha: float = 0.45) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 picture: ``image`` ``(C, H, W)`` with each pixel tinted by its cluster.

    ``clusters`` ``(h, w)`` (e.g. a quarter-resolution label map) is enlarged to the image's size (nearest).
    A one-channel image is shown in gray; intensities are min-max scaled.
    """
    picture = image.detach().float().cpu()
    picture = picture[:3] if picture.shape[0] >= 3 else picture[:1].expand(3, -1, -1)
    low, high = picture.min(), picture.max()
    picture = ((picture - low) / (high - low).clamp_min(1e-8)).permute(1, 2, 0).numpy()
    labels = F.interpolate(clusters.detach().float().cpu()[None, None], size=picture.shape[:2], mode="nearest")
    colours = _PALETTE[labels[0, 0].long().numpy() % len(_PALETTE)]
    blend = (1 - alpha) * picture + alpha * colours
    return np.clip(np.rint(255 * blend), 0, 255).astype(np.uint8)


class ClusterMonitor:
    """Log PiCIE's cluster sizes and overlays after each clustering step; warn on a collapse (module docstring).

    Args:
        summary_writer: a TensorBoard ``SummaryWriter``; ``None`` logs the warning only.
        max_share: the largest cluster's share of the pixels above which an epoch counts as collapsed.
        patience: collapsed epochs in a row before the warning.
        per_row: overlays per row of the picture.

    Attributes:
        collapsed_epochs: the epochs that counted as collapsed.
        warnings: the warnings given (epoch numbers).

    Raises:
        ValueError: ``max_share`` outside (0, 1] or ``patience`` below 1.
    """

    def __init__(self, summary_writer: Any = None, max_share: float = 0.95, patience: int = 3, per_row: int = 4) -> None:
        if not 0 < float(max_share) <= 1:
            raise ValueError(f"`max_share` must be in (0, 1], got {max_share!r}.")
        if isinstance(patience, bool) or int(patience) < 1:
            raise ValueError(f"`patience` must be a positive integer, got {patience!r}.")
        self.writer = summary_writer
        self.max_share = float(max_share)
        self.patience = int(patience)
        self.per_row = int(per_row)
        self.collapsed_epochs: list[int] = []
        self.warnings: list[int] = []
        self._streak = 0

    def attach(self, engine: Engine) -> None:  # noqa: D102
        if not engine.has_event_handler(self, PiCIEEvents.CLUSTERING_COMPLETED):
            engine.add_event_handler(PiCIEEvents.CLUSTERING_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        result = engine.state.clustering
        epoch = int(engine.state.epoch)
        largest = max(float(s.max()) for s in result.shares)
        if self.writer is not None:
            for v, shares in enumerate(result.shares, start=1):
                for k, share in enumerate(shares.tolist()):
                    self.writer.add_scalar(f"clusters/share/view{v}/cluster{k}", share, epoch)
                self.writer.add_scalar(f"clusters/inertia/view{v}", result.inertia[v - 1], epoch)
            self.writer.add_scalar("clusters/largest_share", largest, epoch)
            self.writer.add_scalar("clusters/reseeded", result.reseeded, epoch)
            self.writer.add_scalar("clusters/seconds", result.seconds, epoch)
            if result.preview is not None:
                images, labels = result.preview
                pictures = [cluster_overlay(i, c) for i, c in zip(images, labels)]
                self.writer.add_image("clusters/overlay", tile_pictures(pictures, self.per_row), global_step=epoch,
                                      dataformats="HWC")
            self.writer.flush()
        if largest > self.max_share:
            self.collapsed_epochs.append(epoch)
            self._streak += 1
        else:
            self._streak = 0
        if self._streak >= self.patience:
            self.warnings.append(epoch)
            logger.warning(
                f"PiCIE clusters may have collapsed: one cluster has held more than {100 * self.max_share:.0f}% of the "
                f"pixels for {self._streak} epochs (now {100 * largest:.1f}%, epoch {epoch}). The cluster labels then "
                "carry little; S4MI saw this with Adam: use SGD (the default), a lower learning_rate, or more "
                "clusters (--num_clusters)."
            )
