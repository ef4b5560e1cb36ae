"""Ignite engines (MONAI ``Trainer`` subclasses)."""

from __future__ import annotations

from .byol_trainer import BYOLTrainer, prepare_views

__all__ = ["BYOLTrainer", "prepare_views"]
