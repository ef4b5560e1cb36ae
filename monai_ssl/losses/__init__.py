"""Losses: BYOL's normalized MSE, the cross-teaching loss and its ramp."""

from __future__ import annotations

from .byol import BYOLLoss, normalized_mse
from .cross_teaching import CrossTeachingLoss, CrossTeachingTerms
from .ramp import cross_teaching_weight, sigmoid_rampup

__all__ = [
    "BYOLLoss",
    "CrossTeachingLoss",
    "CrossTeachingTerms",
    "cross_teaching_weight",
    "normalized_mse",
    "sigmoid_rampup",
]
