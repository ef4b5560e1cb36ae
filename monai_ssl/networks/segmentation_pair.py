"""``SegmentationPair``: the two segmentation networks of cross-teaching, saved and served as one model."""

from __future__ import annotations

import torch
from torch import nn

from monai_ssl.utils.pair_logits import PAIR_OUTPUTS, split_pair_logits

__all__ = ["PAIR_OUTPUTS", "SegmentationPair", "split_pair_logits"]


class SegmentationPair(nn.Module):
    """Two segmentation networks trained together; ``output`` chooses what ``forward`` returns.

    Cross-teaching (Luo et al., MIDL 2022) trains a CNN and a Transformer side by side; either, or both,
    can segment afterwards. Keeping them in one module gives one checkpoint (``members.<name>.*``) that
    inference, evaluation, TorchScript export and MONAI Label load as any MONAI network.

    ``output``:

    - a member's name (``"cnn"``, ``"transformer"``): that network's logits ``(B, K, H, W)``;
    - ``"mean"``: ``log`` of the mean of both networks' softmax probabilities, so that a softmax or an
      argmax downstream sees the averaged prediction;
    - ``"all"``: both networks' logits concatenated along channels ``(B, 2K, H, W)``, in member order
      (validation splits them with :func:`split_pair_logits` to score each network).

    Args:
        cnn: the convolutional network (MONAI ``UNet``).
        transformer: the Transformer network (MONAI ``SwinUNETR`` with ``spatial_dims=2``).
        output: see above; default ``"cnn"``.
    """

    def __init__(self, cnn: nn.Module, transformer: nn.Module, output: str = "cnn") -> None:
        super().__init__()
        self.members = nn.ModuleDict({"cnn": cnn, "transformer": transformer})
        self.output = output  # validated by the setter below

    @property
    def output(self) -> str:
        return self._output

    @output.setter
    def output(self, value: str) -> None:
        choices = (*self.members.keys(), *PAIR_OUTPUTS)
        if value not in choices:
            raise ValueError(f"SegmentationPair: output must be one of {list(choices)}, got {value!r}.")
        self._output = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._output in self.members:
            return self.members[self._output](x)
        logits = [member(x) for member in self.members.values()]
        if self._output == "all":
            return torch.cat(logits, dim=1)
        probabilities = torch.stack([lg.float().softmax(dim=1) for lg in logits]).mean(dim=0)
        return probabilities.clamp_min(1e-8).log()
