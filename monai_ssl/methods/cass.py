"""CASS as a :class:`~monai_ssl.methods.SelfSupervisedMethod`: one image, a CNN and a Transformer, no target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from monai_ssl.losses.cass import CASSLoss
from monai_ssl.networks.cass import CASS_MEMBERS
from monai_ssl.networks.distributed import unwrap_parallel

from .base import MethodState, SelfSupervisedMethod

__all__ = ["CASSMethod"]


class CASSMethod(SelfSupervisedMethod):
    """Cross Architectural Self-Supervision (Singh, Sizikova and Cirrone, arXiv:2206.04170, 2022) on a
    :class:`~monai_ssl.networks.CASS`.

    Both members see the same augmented image (one view); the loss is ``2 - 2 cos`` between their
    outputs (:class:`~monai_ssl.losses.CASSLoss`, from the authors' reference pre-training loop), with
    no stop-gradient, so one backward pass trains both. As in that code each member has its own
    optimizer (:meth:`parameter_groups`, ``"cnn"`` and ``"transformer"``) and there is no momentum
    network (:meth:`momentum` is None).

    Outputs for handlers: ``loss``, ``cosine`` (the mean cosine between the two outputs, ``1 - loss/2``;
    1 when the members agree) and the collapse signal :class:`~monai_ssl.handlers.CollapseMonitor` watches,
    ``projection_std`` / ``projection_dim``: the spread over the batch of the CNN's L2-normalised outputs (about
    ``1/sqrt(D)`` when spread, 0 when every image gets the same output). Nothing in the agreement loss rules out
    that constant solution: the reference code starts both networks from ImageNet weights, and from a random
    start the two networks can agree on one vector for every image.

    Args:
        export: the member whose encoder :meth:`export_backbone` returns (``"cnn"``, the default, or
            ``"transformer"``).
        view_keys: the key of the one augmented image in each batch.
    """

    name = "cass"
    num_global_views = 1

    def __init__(self, export: str = "cnn", view_keys: Sequence[str] = ("view1",)) -> None:
        if export not in CASS_MEMBERS:
            raise ValueError(f"CASS: export must be one of {CASS_MEMBERS}, got {export!r}.")
        if len(view_keys) != 1:
            raise ValueError(f"CASS reads exactly 1 view (both networks see the same image), got {tuple(view_keys)}.")
        self.export = export
        self.view_keys = tuple(view_keys)
        self.loss_function = CASSLoss()

    def loss(
        self, network: nn.Module, views: Sequence[torch.Tensor], state: MethodState
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The agreement loss of both members on the same image."""
        out = network(views[0])
        loss = self.loss_function(out["cnn"], out["transformer"])
        with torch.no_grad():
            cnn, transformer = out["cnn"].detach().float(), out["transformer"].detach().float()
            cosine = F.cosine_similarity(cnn, transformer, dim=-1)
            spread = F.normalize(cnn, dim=1).std(dim=0).mean() if cnn.shape[0] > 1 else torch.zeros((), device=cnn.device)
        return loss, {"cosine": cosine.mean(), "projection_std": spread, "projection_dim": cnn.shape[1]}

    def parameter_groups(self, network: nn.Module) -> dict[str, list[nn.Parameter]]:
        """One optimizer per member, as the reference code (``"cnn"``, ``"transformer"``)."""
        members = unwrap_parallel(network).members
        return {name: [p for p in members[name].parameters() if p.requires_grad] for name in CASS_MEMBERS}

    def export_backbone(self, network: nn.Module) -> nn.Module:
        """A copy of the encoder of the :attr:`export` member."""
        return unwrap_parallel(network).export_backbone(self.export)

    def other_backbones(self, network: nn.Module) -> dict[str, nn.Module]:
        """The other member's encoder, by member name: both CASS networks can be fine-tuned."""
        return {name: unwrap_parallel(network).export_backbone(name) for name in CASS_MEMBERS if name != self.export}
