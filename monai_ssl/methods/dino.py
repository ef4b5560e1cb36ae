"""DINO as a :class:`~monai_ssl.methods.SelfSupervisedMethod`: multi-crop views, a student and its EMA teacher."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from monai_ssl.losses.dino import DINOLoss
from monai_ssl.networks.dino_head import cancel_last_layer_gradients
from monai_ssl.networks.distributed import unwrap_parallel
from monai_ssl.utils.schedules import cosine_schedule

from .base import MethodState, SelfSupervisedMethod

__all__ = ["DINOMethod"]


class DINOMethod(SelfSupervisedMethod):
    """Self-distillation with no labels (Caron et al., ICCV 2021) on a :class:`~monai_ssl.networks.DINO`.

    - **Loss** (eq. 3, :class:`~monai_ssl.losses.DINOLoss`): the cross-entropy of the centered, sharpened
      teacher output of each global view against the student output of every other view, with the
      teacher temperature of the current epoch (linear warm-up, Sec. 3.1 and Appendix C); the center
      (eq. 4) is updated after each loss, and lives in :meth:`state_modules` for checkpoints.
    - **Teacher** (Sec. 3.1): after each real optimizer step ``theta_t <- lambda theta_t + (1 - lambda)
      theta_s`` with ``lambda`` on a cosine from ``teacher_momentum`` (0.996) to ``final_teacher_momentum``
      (1) over the optimizer steps of the run (:func:`~monai_ssl.utils.cosine_schedule`, the reference
      code's ``momentum_schedule``).
    - **Last layer frozen** in the first ``freeze_last_layer_epochs`` epochs (Appendix C): its gradients
      are dropped before each optimizer step (:func:`~monai_ssl.networks.cancel_last_layer_gradients`).

    Outputs for handlers: ``loss``, the collapse signals of Sec. 5.3 / Fig. 7 (``teacher_entropy``, ``kl``), the
    spread over the batch of the L2-normalised teacher probabilities of the first global view
    (``projection_std`` / ``projection_dim``, what :class:`~monai_ssl.handlers.CollapseMonitor` watches: about
    ``1/sqrt(K)`` for sharp outputs that differ between images, 0 when every image gets the same output, the
    uniform one or one dominating dimension), ``entropy_ratio`` (the teacher entropy over its maximum ``log K``:
    near 1 is the uniform collapse, which the monitor also warns about),
    ``teacher_temperature`` and ``teacher_momentum`` (the rate of this iteration's update).

    Args:
        out_features: ``K``, the heads' output size (the center's size).
        global_views: global crops per image (2 in the paper), seen by student and teacher.
        local_views: local crops per image (6-10 in the paper), seen by the student only.
        teacher_momentum: ``lambda`` at the first optimizer step (0.996).
        final_teacher_momentum: ``lambda`` at the end of the run (1.0).
        freeze_last_layer_epochs: epochs the head's last layer stays frozen (1; 0 never).
        loss_function: a :class:`~monai_ssl.losses.DINOLoss`; built from ``loss_kwargs`` when None.
        loss_kwargs: more arguments of :class:`~monai_ssl.losses.DINOLoss` (temperatures, warm-up epochs,
            ``center_momentum``).
        view_keys: keys of the views, global first; ``view1 .. viewN`` (:class:`~monai_ssl.transforms.MultiCropViewsd`)
            when None.
    """

    name = "dino"

    def __init__(
        self,
        out_features: int,
        global_views: int = 2,
        local_views: int = 0,
        teacher_momentum: float = 0.996,
        final_teacher_momentum: float = 1.0,
        freeze_last_layer_epochs: int = 1,
        loss_function: DINOLoss | None = None,
        loss_kwargs: dict | None = None,
        view_keys: Sequence[str] | None = None,
    ) -> None:
        if not 0.0 <= teacher_momentum <= final_teacher_momentum <= 1.0:
            raise ValueError(
                "DINO needs 0 <= teacher_momentum <= final_teacher_momentum <= 1, got "
                f"{teacher_momentum} and {final_teacher_momentum}."
            )
        keys = tuple(view_keys) if view_keys is not None else self.default_view_keys(global_views, local_views)
        if len(keys) != global_views + local_views:
            raise ValueError(
                f"DINO: {global_views} global + {local_views} local views need as many view_keys, got {keys}."
            )
        self.view_keys = keys
        self.num_global_views = global_views
        self.teacher_momentum = teacher_momentum
        self.final_teacher_momentum = final_teacher_momentum
        self.freeze_last_layer_epochs = freeze_last_layer_epochs
        self.loss_function = loss_function if loss_function is not None else DINOLoss(
            out_features, len(keys), global_views, **(loss_kwargs or {})
        )
        if (self.loss_function.num_views, self.loss_function.num_global_views) != (len(keys), global_views):
            raise ValueError(
                f"DINO: the loss expects {self.loss_function.num_views} views ({self.loss_function.num_global_views} "
                f"global), the method reads {len(keys)} ({global_views} global)."
            )

    def loss(
        self, network: nn.Module, views: Sequence[torch.Tensor], state: MethodState
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Eq. 3 over all (global teacher view, other student view) pairs, at this epoch's teacher temperature."""
        out = network(list(views), self.num_global_views)
        temperature = self.loss_function.teacher_temperature(state.epoch)
        with torch.no_grad():  # before the loss moves the center
            first = out["teacher"][0].float()
            probs = F.softmax((first - self.loss_function.center) / temperature, dim=-1)
            spread = F.normalize(probs, dim=1).std(dim=0).mean() if first.shape[0] > 1 else first.new_zeros(())
        terms = self.loss_function.terms(out["student"], out["teacher"], state.epoch)
        return terms.loss, {
            "teacher_entropy": terms.teacher_entropy,
            "kl": terms.kl,
            "projection_std": spread,
            "projection_dim": first.shape[1],
            "entropy_ratio": terms.teacher_entropy / math.log(max(first.shape[1], 2)),
            "teacher_temperature": self.loss_function.teacher_temperature(state.epoch),
            "teacher_momentum": self.momentum(state.optimizer_steps, state.total_optimizer_steps),
        }

    def before_optimizer_step(self, network: nn.Module, epoch: int) -> None:
        """Drop the last layer's gradients while it is frozen (the first ``freeze_last_layer_epochs`` epochs)."""
        cancel_last_layer_gradients(unwrap_parallel(network).student_head, epoch, self.freeze_last_layer_epochs)

    def momentum(self, step: int, total_steps: int) -> float:
        """The teacher's ``lambda`` at optimizer step ``step`` (cosine ``teacher_momentum`` -> final, no warm-up)."""
        return cosine_schedule(self.teacher_momentum, self.final_teacher_momentum, total_steps, step=step)

    def after_optimizer_step(self, network: nn.Module, step: int, total_steps: int) -> float:
        """Move the teacher towards the stepped student; return ``lambda``."""
        momentum = self.momentum(step, total_steps)
        unwrap_parallel(network).update_teacher(momentum)
        return momentum

    def parameter_groups(self, network: nn.Module) -> dict[str, list[nn.Parameter]]:
        """The student's trainable parameters (the teacher has none)."""
        return {"student": [p for p in unwrap_parallel(network).student_parameters() if p.requires_grad]}

    def state_modules(self) -> dict[str, nn.Module]:
        """The loss, whose center (eq. 4) a resumed run needs."""
        return {"dino_loss": self.loss_function}
