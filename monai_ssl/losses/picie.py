"""PiCIE's clustering loss: within-view and cross-view cross-entropy against the cluster labels.

Cho et al., CVPR 2021, Sec. 3.2-3.3. Each epoch, the pixel features of two photometric views of every
image (brought to one geometry by the equivariant transform) are clustered separately, giving centroids
``mu1``, ``mu2`` and per-pixel labels ``y1``, ``y2``. With ``L_clust(z, y, mu)`` the cross-entropy of a
pixel feature ``z`` scored against the centroids ``mu`` with its label ``y``,

- ``L_within = L_clust(z1, y1, mu1) + L_clust(z2, y2, mu2)`` pulls each view's features to its own clusters;
- ``L_cross  = L_clust(z1, y2, mu2) + L_clust(z2, y1, mu1)`` asks each view's features to fall in the
  *other* view's clusters: invariance to the photometric and equivariance to the geometric transforms.

As in the reference code (``train`` in ``train_picie.py``): the scores are the dot products of the
L2-normalised features with the centroids (a frozen 1x1 convolution whose weights are the centroids, no
bias), each of the four terms is a mean over pixels, weighted per class by the cluster's share of the
view's pixels (``CrossEntropyLoss(weight=counts / counts.sum())``, the reference's default; ``None``:
unweighted), and the loss is ``(mean(L_within terms) + mean(L_cross terms)) / 2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PiCIELoss", "cluster_scores"]


def cluster_scores(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Dot products ``(B, K, h, w)`` of pixel features ``(B, D, h, w)`` with centroids ``(K, D)`` (no gradient to them)."""
    return torch.einsum("bdhw,kd->bkhw", features, centroids.detach().to(dtype=features.dtype))


class PiCIELoss(nn.Module):
    """Within-view and cross-view clustering losses of PiCIE (see the module docstring).

    ``forward`` returns a dict: ``loss`` (what is minimised), ``within`` and ``cross`` (for the logs).
    """

    def forward(self, features1: torch.Tensor, features2: torch.Tensor, centroids1: torch.Tensor,
                centroids2: torch.Tensor, labels1: torch.Tensor, labels2: torch.Tensor,
                weight1: torch.Tensor | None = None, weight2: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The loss of one batch.

        Args:
            features1: view 1's normalised pixel features ``(B, D, h, w)``, in the equivariant transform's geometry.
            features2: view 2's, in the same geometry.
            centroids1: view 1's centroids ``(K, D)``; ``centroids2`` view 2's.
            centroids2: see ``centroids1``.
            labels1: view 1's cluster label per pixel ``(B, h, w)`` (integers in ``[0, K)``); ``labels2`` view 2's.
            labels2: see ``labels1``.
            weight1: per-cluster weights of view 1's labels ``(K,)``, or None; ``weight2`` view 2's.
            weight2: see ``weight1``.

        Raises:
            ValueError: features of two shapes, or labels whose shape is not the features' ``(B, h, w)``.
        """
        if features1.shape != features2.shape:
            raise ValueError(f"the two views' features must have one shape, got {tuple(features1.shape)} and "
                             f"{tuple(features2.shape)}.")
        expected = (features1.shape[0], *features1.shape[2:])
        for name, labels in (("labels1", labels1), ("labels2", labels2)):
            if tuple(labels.shape) != expected:
                raise ValueError(f"`{name}` must have the features' shape (B, h, w) = {expected}, got "
                                 f"{tuple(labels.shape)}.")
        labels1, labels2 = labels1.long(), labels2.long()

        def clust(features: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor,
                  weight: torch.Tensor | None) -> torch.Tensor:
            scores = cluster_scores(features, centroids).float()
            return F.cross_entropy(scores, labels, weight=None if weight is None else weight.float())

        within = (clust(features1, labels1, centroids1, weight1) + clust(features2, labels2, centroids2, weight2)) / 2
        cross = (clust(features1, labels2, centroids2, weight2) + clust(features2, labels1, centroids1, weight1)) / 2
        return {"loss": (within + cross) / 2, "within": within.detach(), "cross": cross.detach()}
