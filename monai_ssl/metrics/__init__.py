"""Evaluation metrics as plain numpy functions (JSON-friendly results), and checkpoint-selection helpers."""

from __future__ import annotations

from .binary import binary_classification_metrics, roc_auc, roc_curve
from .cluster_matching import ClusterConfusion, cluster_confusion, match_clusters, matched_pixel_accuracy
from .confidence_interval import mean_ci95, t_quantile_975
from .macro_metrics import macro_f1_metric, macro_recall_metric, multilabel_decisions
from .multiclass import multiclass_classification_metrics, one_vs_rest_roc_curves
from .multilabel import choose_thresholds, multilabel_report
from .output_transforms import class_scores_and_indices
from .saliency_overlap import pointing_game, saliency_in_mask_share
from .segmentation import binary_iou_dice, foreground_mask
from .selection import class_counts, key_metric, other_metrics, selection_metric

__all__ = [
    "choose_thresholds",
    "ClusterConfusion",
    "cluster_confusion",
    "match_clusters",
    "matched_pixel_accuracy",
    "class_counts",
    "class_scores_and_indices",
    "binary_classification_metrics",
    "binary_iou_dice",
    "foreground_mask",
    "macro_f1_metric",
    "macro_recall_metric",
    "multilabel_decisions",
    "key_metric",
    "other_metrics",
    "mean_ci95",
    "multiclass_classification_metrics",
    "multilabel_report",
    "one_vs_rest_roc_curves",
    "pointing_game",
    "roc_auc",
    "roc_curve",
    "saliency_in_mask_share",
    "selection_metric",
    "t_quantile_975",
]
