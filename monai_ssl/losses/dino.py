"""The DINO loss: cross-entropy between the centered, sharpened teacher and the student over pairs of views.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021. For the teacher
and student outputs ``g_t(x), g_s(x')`` (``K`` logits), ``P_t = softmax((g_t - c) / tau_t)`` and
``P_s = softmax(g_s / tau_s)``, DINO minimises (eq. 3)

    ``sum_{x in {x_1^g, x_2^g}} sum_{x' in V, x' != x} H(P_t(x), P_s(x'))``,   ``H(a, b) = -a . log b``,

over every global view ``x`` seen by the teacher and every OTHER view ``x'`` (global or local) seen by
the student, here averaged over the pairs and the batch as in the reference code. The center ``c``
follows an exponential moving average of the batch mean of the teacher outputs (eq. 4), and the
teacher temperature warms up linearly (Sec. 3.1 and Appendix C).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ignite.distributed as idist
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DINOLoss", "DINOTerms", "teacher_entropy_and_kl"]


@dataclass
class DINOTerms:
    """The DINO loss and its collapse signals (Caron et al. 2021, Sec. 5.3 and Fig. 7).

    ``loss = teacher_entropy + kl`` (cross-entropy = entropy + KL), each averaged over the compared
    (teacher, student) view pairs and the batch. A teacher entropy near ``log K`` means a uniform
    output (collapse by flattening); near 0, one dominating dimension (collapse by sharpening);
    a KL near 0 means the student no longer learns from the teacher.
    """

    loss: torch.Tensor
    teacher_entropy: torch.Tensor
    kl: torch.Tensor


def teacher_entropy_and_kl(
    teacher_probs: torch.Tensor, student_log_probs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample entropy ``h(P_t)`` and ``KL(P_t || P_s)``, the collapse signals of Caron et al. 2021, Fig. 7.

    Args:
        teacher_probs: ``(B, K)`` teacher probabilities ``P_t`` (rows sum to 1).
        student_log_probs: ``(B, K)`` student log-probabilities ``log P_s``.

    Returns:
        ``(entropy, kl)``, each of shape ``(B,)``; ``0 log 0`` counts as 0.
    """
    entropy = -torch.special.xlogy(teacher_probs, teacher_probs).sum(dim=-1)
    cross_entropy = -(teacher_probs * student_log_probs).sum(dim=-1)
    return entropy, cross_entropy - entropy


class DINOLoss(nn.Module):
    """Cross-entropy of every student view against every other global view of the centered, sharpened teacher.

    Views come in a fixed order: the ``num_global_views`` global crops first (the only ones the teacher
    sees), then the local crops. ``forward`` takes the outputs either concatenated along the batch
    dimension in that order, view by view (``torch.cat(views)``, as the reference code feeds its
    networks), or as a sequence of per-view ``(B, K)`` tensors. Teacher view ``i`` is compared with
    every student view except view ``i`` (:attr:`pairs`): 2 global + 6 local crops give ``2 * 7 = 14``
    pairs. The teacher side is detached (stop-gradient). After the loss, the center is updated from the
    teacher outputs of this batch (its mean over all processes when ``torch.distributed`` is initialised).

    Args:
        out_features: ``K``, the number of output dimensions of the heads (size of the center).
        num_views: views per image that the student sees, global and local.
        num_global_views: views per image that the teacher sees (the first ones; 2 in the paper).
        student_temperature: ``tau_s`` (0.1).
        teacher_temperature: ``tau_t`` after the warm-up (0.04 in the reference code's defaults; up to
            0.07 in the paper).
        warmup_teacher_temperature: ``tau_t`` at epoch 0 (0.04).
        warmup_teacher_temperature_epochs: epochs of the linear warm-up (the reference code's default
            is 0; the paper warms up over 30).
        num_epochs: epochs of the run, checked to hold the warm-up (optional).
        center_momentum: ``m`` of the center update ``c <- m c + (1 - m) mean(g_t)`` (0.9).
    """

    center: torch.Tensor

    def __init__(
        self,
        out_features: int,
        num_views: int,
        num_global_views: int = 2,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        warmup_teacher_temperature: float = 0.04,
        warmup_teacher_temperature_epochs: int = 0,
        num_epochs: int | None = None,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if not 1 <= num_global_views <= num_views or num_views < 2:
            raise ValueError(
                f"DINOLoss needs num_views >= 2 and 1 <= num_global_views <= num_views, got num_views={num_views}, "
                f"num_global_views={num_global_views}."
            )
        if min(student_temperature, teacher_temperature, warmup_teacher_temperature) <= 0:
            raise ValueError("DINOLoss temperatures must be positive.")
        if warmup_teacher_temperature_epochs < 0 or (
            num_epochs is not None and warmup_teacher_temperature_epochs > num_epochs
        ):
            raise ValueError(
                f"DINOLoss: warmup_teacher_temperature_epochs ({warmup_teacher_temperature_epochs}) must lie in "
                f"[0, num_epochs ({num_epochs})]."
            )
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError(f"DINOLoss: center_momentum must lie in [0, 1], got {center_momentum}.")
        self.out_features = out_features
        self.num_views = num_views
        self.num_global_views = num_global_views
        self.student_temperature = student_temperature
        self.final_teacher_temperature = teacher_temperature
        self.warmup_teacher_temperature = warmup_teacher_temperature
        self.warmup_teacher_temperature_epochs = warmup_teacher_temperature_epochs
        self.num_epochs = num_epochs
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_features))  # saved with the checkpoint for resume

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The compared ``(teacher view, student view)`` indices: every global view with every other view."""
        return [(t, s) for t in range(self.num_global_views) for s in range(self.num_views) if s != t]

    def teacher_temperature(self, epoch: int) -> float:
        """``tau_t`` at ``epoch`` (counted from 0): evenly spaced from the warm-up value to the final one
        over the warm-up epochs (the final value reached at its last epoch), then constant."""
        warmup = self.warmup_teacher_temperature_epochs
        if epoch >= warmup:
            return self.final_teacher_temperature
        if warmup == 1:
            return self.warmup_teacher_temperature
        fraction = max(epoch, 0) / (warmup - 1)
        start, end = self.warmup_teacher_temperature, self.final_teacher_temperature
        return start + (end - start) * fraction

    def forward(
        self,
        student_outputs: torch.Tensor | Sequence[torch.Tensor],
        teacher_outputs: torch.Tensor | Sequence[torch.Tensor],
        epoch: int,
    ) -> torch.Tensor:
        """The loss averaged over :attr:`pairs` and the batch; updates the center afterwards.

        Args:
            student_outputs: ``num_views`` views of ``(B, K)`` student logits, concatenated or as a sequence.
            teacher_outputs: ``num_global_views`` views of ``(B, K)`` teacher logits, likewise.
            epoch: epochs completed so far, counted from 0 (sets the teacher temperature).
        """
        return self.terms(student_outputs, teacher_outputs, epoch).loss

    def terms(
        self,
        student_outputs: torch.Tensor | Sequence[torch.Tensor],
        teacher_outputs: torch.Tensor | Sequence[torch.Tensor],
        epoch: int,
    ) -> DINOTerms:
        """:meth:`forward`, with the collapse signals (detached) next to the loss; updates the center."""
        student_views = self._views(student_outputs, self.num_views, "student")
        teacher_views = self._views(teacher_outputs, self.num_global_views, "teacher")
        temperature = self.teacher_temperature(epoch)
        student_log_probs = [F.log_softmax(view.float() / self.student_temperature, dim=-1) for view in student_views]
        with torch.no_grad():
            teacher_probs = [F.softmax((view.float() - self.center) / temperature, dim=-1) for view in teacher_views]
        loss = entropy = kl = torch.zeros((), device=self.center.device)
        for t, s in self.pairs:
            loss = loss - (teacher_probs[t] * student_log_probs[s]).sum(dim=-1).mean()
            with torch.no_grad():
                pair_entropy, pair_kl = teacher_entropy_and_kl(teacher_probs[t], student_log_probs[s])
                entropy, kl = entropy + pair_entropy.mean(), kl + pair_kl.mean()
        num_pairs = len(self.pairs)
        self.update_center(torch.cat(teacher_views))
        return DINOTerms(loss=loss / num_pairs, teacher_entropy=entropy / num_pairs, kl=kl / num_pairs)

    @torch.no_grad()
    def update_center(self, teacher_outputs: torch.Tensor) -> None:
        """``c <- m c + (1 - m) mean(g_t)`` over the ``(N, K)`` teacher outputs of all processes (eq. 4)."""
        batch_sum = idist.all_reduce(teacher_outputs.detach().float().sum(dim=0, keepdim=True))
        count = teacher_outputs.shape[0] * idist.get_world_size()
        self.center.mul_(self.center_momentum).add_(batch_sum / count, alpha=1.0 - self.center_momentum)

    def _views(self, outputs: torch.Tensor | Sequence[torch.Tensor], count: int, side: str) -> list[torch.Tensor]:
        """Per-view ``(B, K)`` tensors from concatenated outputs or a sequence of them, checked."""
        if isinstance(outputs, torch.Tensor):
            if outputs.ndim != 2 or outputs.shape[0] % count:
                raise ValueError(
                    f"DINOLoss: {side} outputs of shape {tuple(outputs.shape)} are not {count} views of (B, K) "
                    "concatenated along the batch."
                )
            views = list(outputs.chunk(count))
        else:
            views = list(outputs)
        if len(views) != count:
            raise ValueError(f"DINOLoss: expected {count} {side} views, got {len(views)}.")
        for view in views:
            if view.ndim != 2 or view.shape[-1] != self.out_features or view.shape[0] != views[0].shape[0]:
                raise ValueError(
                    f"DINOLoss: every {side} view must be (B, {self.out_features}) with one B, got "
                    f"{[tuple(v.shape) for v in views]}."
                )
        return views
