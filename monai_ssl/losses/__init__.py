"""Losses: BYOL's normalized MSE, the cross-teaching loss and its ramp, DINO's self-distillation and CASS's
cross-architecture agreement, PiCIE's clustering loss."""

from __future__ import annotations

from .byol import BYOLLoss, normalized_mse
from .cass import CASSLoss
from .cross_teaching import CrossTeachingLoss, CrossTeachingTerms
from .dino import DINOLoss, DINOTerms, teacher_entropy_and_kl
from .picie import PiCIELoss, cluster_scores
from .ramp import cross_teaching_weight, sigmoid_rampup

__all__ = [
    "BYOLLoss",
    "CASSLoss",
    "CrossTeachingLoss",
    "CrossTeachingTerms",
    "DINOLoss",
    "DINOTerms",
    "PiCIELoss",
    "cluster_scores",
    "teacher_entropy_and_kl",
    "cross_teaching_weight",
    "normalized_mse",
    "sigmoid_rampup",
]
