"""Ignite engines (MONAI ``Trainer`` subclasses)."""

from __future__ import annotations

from .byol_trainer import BYOLTrainer, byol_scalars, prepare_views
from .step_trainer import OptimizerStepTrainer, scaled_optimizers_step
from .steps import require_training_steps

__all__ = [
    "BYOLTrainer",
    "OptimizerStepTrainer",
    "byol_scalars",
    "prepare_views",
    "require_training_steps",
    "scaled_optimizers_step",
]
