"""Ignite engines (MONAI ``Trainer`` subclasses)."""

from __future__ import annotations

from .byol_trainer import BYOLTrainer, byol_scalars, prepare_views

__all__ = ["BYOLTrainer", "byol_scalars", "prepare_views"]
