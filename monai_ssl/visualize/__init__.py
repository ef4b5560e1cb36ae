"""Figures and image grids (matplotlib Agg canvas, no pyplot state)."""

from __future__ import annotations

from .plots import confusion_matrix_figure, image_grid, multiclass_roc_figure, roc_figure, save_figure

__all__ = ["confusion_matrix_figure", "image_grid", "multiclass_roc_figure", "roc_figure", "save_figure"]
