"""Losses."""

from __future__ import annotations

from .byol import BYOLLoss, normalized_mse

__all__ = ["BYOLLoss", "normalized_mse"]
