"""``SplitPairPredictiond``: score each network of a cross-teaching pair from one ``"all"`` forward pass."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_ssl.utils.pair_logits import PAIR_OUTPUTS, split_pair_logits

__all__ = ["SplitPairPredictiond"]


class SplitPairPredictiond(MapTransform):
    """Split the pair's concatenated logits into per-network probabilities and the chosen prediction.

    Input ``data[key]``: the logits of :class:`~monai_ssl.networks.SegmentationPair` with ``output="all"``,
    ``(2K, H, W)`` for one image. Output: ``data[f"{key}_{name}"]`` = that network's softmax probabilities
    ``(K, H, W)`` for each name, and ``data[key]`` = the probabilities of the network used for inference
    (``output``: a name, or ``"mean"`` for the average of both).

    Args:
        keys: the prediction key(s), usually ``"pred"``.
        output: the network whose prediction becomes ``data[key]``, or ``"mean"``.
        names: the member names, in the pair's order.
    """

    def __init__(self, keys: KeysCollection = "pred", output: str = "cnn", names: Sequence[str] = ("cnn", "transformer")) -> None:
        super().__init__(keys)
        self.names = tuple(names)
        if output not in (*self.names, PAIR_OUTPUTS[0]):
            raise ValueError(f"SplitPairPredictiond: output must be one of {[*self.names, 'mean']}, got {output!r}.")
        self.output = output

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            parts = split_pair_logits(torch.as_tensor(d[key]), self.names)
            probabilities = {name: part.float().softmax(dim=-3) for name, part in parts.items()}
            for name, prob in probabilities.items():
                d[f"{key}_{name}"] = prob
            if self.output == "mean":
                d[key] = torch.stack(list(probabilities.values())).mean(dim=0)
            else:
                d[key] = probabilities[self.output]
        return d
