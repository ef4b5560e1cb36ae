"""DINO: a student (encoder + DINO head) and its exponential-moving-average teacher as one module."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .dino_head import DINOHead
from .momentum import momentum_update, trainable_pairs

__all__ = ["DINO", "group_views_by_shape"]

EXPORT_CHOICES = ("teacher", "student")


def group_views_by_shape(views: Sequence[torch.Tensor]) -> list[tuple[int, int]]:
    """``(start, end)`` index ranges of the runs of consecutive views that share one shape.

    DINO's reference code feeds the backbone once per run of same-resolution crops (the global crops
    together, then the local crops together) rather than once per crop; for 2 global + 6 local crops
    that is 2 backbone calls instead of 8.

    Example:
        >>> group_views_by_shape([torch.zeros(2, 1, 16, 16)] * 2 + [torch.zeros(2, 1, 8, 8)] * 3)
        [(0, 2), (2, 5)]
    """
    groups: list[tuple[int, int]] = []
    start = 0
    for index in range(1, len(views) + 1):
        if index == len(views) or views[index].shape != views[start].shape:
            groups.append((start, index))
            start = index
    return groups


class DINO(nn.Module):
    """Self-distillation with no labels (Caron et al., "Emerging Properties in Self-Supervised Vision
    Transformers", ICCV 2021).

    The student is ``encoder -> DINOHead``; the teacher is a copy of both that receives no gradients
    and follows the student by an exponential moving average of its parameters,
    ``theta_t <- lambda * theta_t + (1 - lambda) * theta_s`` (Sec. 3.1, "teacher network"), called by
    the trainer after each optimizer step (:meth:`update_teacher`, ``lambda`` from 0.996 to 1 on a
    cosine). ``forward(views, num_global_views)`` gives the student's logits for every view and the
    teacher's (without gradients) for the global views only (multi-crop, Sec. 3.1), ready
    for :class:`monai_ssl.losses.DINOLoss`. As in the reference code, consecutive views of one shape
    go through the backbone in one call and the head runs once on all features, so batch-norm layers
    see each resolution's views together.

    Batch-norm policy (as the reference code): the teacher runs in the same mode as the student and
    keeps its own running statistics from its own forward passes; only parameters are averaged.

    Export: the paper evaluates the teacher, which it finds better than the student all through
    training (Sec. 3.1 and Sec. 5.2, Fig. 6; the reference ``eval_linear.py`` and ``eval_knn.py``
    load the ``teacher`` weights of the checkpoint by default), so
    :meth:`export_backbone` returns the teacher encoder by default. Unlike BYOL, whose exported
    encoder is the online one, set ``export="student"`` to get the student encoder.

    Args:
        encoder: maps a view to a feature vector ``(B, F)`` (a pooled ResNet or a ViT's class token).
        feature_dim: ``F``; read from ``encoder.out_features`` when not given.
        out_features: ``K``, the head's output dimensions (65,536 in the paper).
        hidden_features: width of the head's hidden layers (2048).
        bottleneck_features: size of the head's L2-normalised bottleneck (256).
        norm_last_layer: fix the weight-norm magnitude of the head's last layer to 1 (see :class:`DINOHead`).
        use_bn_in_head: batch norm in the head's MLP (the paper's ResNet-50 runs use it).
        export: which encoder :meth:`export_backbone` returns, ``"teacher"`` or ``"student"``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int | None = None,
        out_features: int = 65536,
        hidden_features: int = 2048,
        bottleneck_features: int = 256,
        norm_last_layer: bool = True,
        use_bn_in_head: bool = False,
        export: str = "teacher",
    ) -> None:
        super().__init__()
        feature_dim = feature_dim if feature_dim is not None else getattr(encoder, "out_features", None)
        if feature_dim is None:
            raise ValueError("DINO needs `feature_dim` when the encoder has no `out_features` attribute.")
        if export not in EXPORT_CHOICES:
            raise ValueError(f"DINO: export must be one of {EXPORT_CHOICES}, got {export!r}.")
        self.student_encoder = encoder
        self.student_head = DINOHead(
            int(feature_dim),
            out_features=out_features,
            hidden_features=hidden_features,
            bottleneck_features=bottleneck_features,
            use_bn=use_bn_in_head,
            norm_last_layer=norm_last_layer,
        )
        self.teacher_encoder = copy.deepcopy(encoder)
        self.teacher_head = copy.deepcopy(self.student_head)
        for parameter in self.teacher_parameters():
            parameter.requires_grad_(False)
        self.out_features = out_features
        self.export = export
        self._pairs: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    def student_parameters(self) -> list[nn.Parameter]:
        """Parameters of the student encoder and head (those the optimizer trains)."""
        return list(self.student_encoder.parameters()) + list(self.student_head.parameters())

    def teacher_parameters(self) -> list[nn.Parameter]:
        """Parameters of the teacher encoder and head, in the order of :meth:`student_parameters`."""
        return list(self.teacher_encoder.parameters()) + list(self.teacher_head.parameters())

    @staticmethod
    def _logits(encoder: nn.Module, head: nn.Module, views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-view head outputs: one encoder call per run of same-shape views, one head call for all."""
        features = [encoder(torch.cat(list(views[start:end]))) for start, end in group_views_by_shape(views)]
        return list(head(torch.cat(features)).chunk(len(views)))

    def forward(self, views: Sequence[torch.Tensor], num_global_views: int = 2) -> dict[str, list[torch.Tensor]]:
        """Student logits of every view and teacher logits of the global views.

        Args:
            views: ``N`` batches of views ``(B, C, *spatial)`` of the same ``B`` images, the global
                views first (the order of :class:`monai_ssl.transforms.MultiCropViewsd`).
            num_global_views: how many of the first views are global (seen by the teacher).

        Returns:
            ``{"student": N tensors (B, K) with gradients, "teacher": num_global_views tensors (B, K)
            detached}``.
        """
        views = list(views)
        if not 1 <= num_global_views <= len(views):
            raise ValueError(f"DINO: num_global_views must lie in [1, {len(views)}] views, got {num_global_views}.")
        batch_sizes = {view.shape[0] for view in views}
        if len(batch_sizes) != 1:
            raise ValueError(f"DINO: every view needs the same batch size, got {[tuple(v.shape) for v in views]}.")
        student = self._logits(self.student_encoder, self.student_head, views)
        with torch.no_grad():
            teacher = self._logits(self.teacher_encoder, self.teacher_head, views[:num_global_views])
        return {"student": student, "teacher": [logits.detach() for logits in teacher]}

    def update_teacher(self, momentum: float) -> None:
        """``theta_t <- momentum * theta_t + (1 - momentum) * theta_s`` over all parameters, one fused pass."""
        if self._pairs is None:
            # built once: parameter tensors keep their identity across optimizer steps and load_state_dict
            student = nn.ModuleList([self.student_encoder, self.student_head])
            teacher = nn.ModuleList([self.teacher_encoder, self.teacher_head])
            self._pairs = trainable_pairs(teacher, student)
        teacher_params, student_params = self._pairs
        momentum_update(teacher_params, student_params, momentum)

    def export_backbone(self) -> nn.Module:
        """A trainable copy of the encoder chosen by ``export`` (the teacher by default), for downstream tasks."""
        encoder = self.teacher_encoder if self.export == "teacher" else self.student_encoder
        exported = copy.deepcopy(encoder)
        for parameter in exported.parameters():
            parameter.requires_grad_(True)
        return exported
