"""Figures and image grids (matplotlib Agg canvas, no pyplot state)."""

from __future__ import annotations

from .plots import image_grid, roc_figure, save_figure

__all__ = ["image_grid", "roc_figure", "save_figure"]
