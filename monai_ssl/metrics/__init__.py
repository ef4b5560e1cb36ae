"""Evaluation metrics as plain numpy functions (JSON-friendly results)."""

from __future__ import annotations

from .binary import binary_classification_metrics, roc_auc, roc_curve

__all__ = ["binary_classification_metrics", "roc_auc", "roc_curve"]
