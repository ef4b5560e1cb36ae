"""Figures and image grids (matplotlib Agg canvas, no pyplot state), and segmentation outline pictures."""

from __future__ import annotations

from .outlines import mask_outline, outline_overlay
from .plots import confusion_matrix_figure, image_grid, multiclass_roc_figure, roc_figure, save_figure
from .saliency import (
    SALIENCY_METHODS,
    confidence_extremes,
    gradcam_target_layer,
    saliency_figure,
    saliency_maps,
    save_saliency_png,
)

__all__ = [
    "SALIENCY_METHODS",
    "confidence_extremes",
    "gradcam_target_layer",
    "saliency_figure",
    "saliency_maps",
    "save_saliency_png",
    "confusion_matrix_figure",
    "image_grid",
    "mask_outline",
    "multiclass_roc_figure",
    "outline_overlay",
    "roc_figure",
    "save_figure",
]
