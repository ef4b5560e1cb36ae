"""Recipes: what a bundle computes from a few named settings, as tested Python (the configs only name them)."""

from __future__ import annotations

from .byol_views import view_collate, view_prepare_batch, view_transforms, working_spatial_size
from .cross_teaching import labeled_batch_size, unlabeled_batch_size

__all__ = [
    "labeled_batch_size",
    "unlabeled_batch_size",
    "view_collate",
    "view_prepare_batch",
    "view_transforms",
    "working_spatial_size",
]
