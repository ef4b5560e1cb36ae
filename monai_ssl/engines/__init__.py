"""Ignite engines (MONAI ``Trainer`` subclasses)."""

from __future__ import annotations

from .byol_trainer import BYOLTrainer, byol_scalars, prepare_views
from .steps import require_training_steps

__all__ = ["BYOLTrainer", "byol_scalars", "prepare_views", "require_training_steps"]
