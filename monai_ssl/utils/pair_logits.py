"""The outputs of a pair of segmentation networks (cross-teaching) as tensors: which there are, and their split.

Shared by :class:`~monai_ssl.networks.SegmentationPair`, which makes the ``"all"`` output, and by the
transforms and scores that read it (:class:`~monai_ssl.transforms.SplitPairPredictiond`, MONAI Label's
disagreement), so that a transform needs no network import.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["PAIR_OUTPUTS", "split_pair_logits"]

PAIR_OUTPUTS = ("mean", "all")
"""What a pair returns besides one member's logits: their mean probability, or all logits side by side."""


def split_pair_logits(logits: torch.Tensor, names: tuple[str, ...] = ("cnn", "transformer")) -> Mapping[str, torch.Tensor]:
    """Split the ``"all"`` output ``(..., 2K, H, W)`` (batch or single image) into one ``K``-channel part per name.

    Raises:
        ValueError: the channel count is not a multiple of ``len(names)``.
    """
    channel_dim = -3
    channels = logits.shape[channel_dim]
    if channels % len(names):
        raise ValueError(
            f"split_pair_logits: {channels} channels cannot be split between the {len(names)} networks {names}."
        )
    parts = torch.split(logits, channels // len(names), dim=channel_dim)
    return dict(zip(names, parts))
