"""What changes in byolmed2d's fine-tuning when it learns several MRNet findings at once (``task: "all"``).

One finding (``task: "acl"``) keeps its binary recipe: the minority class oversampled in training and the
checkpoint chosen by validation AUC (accuracy when the validation split has one class). Several findings
make a multi-label task (one sigmoid per finding, :func:`~monai_ssl.recipes.classification_task`): no
oversampling (an exam can be positive for one finding and negative for another) and the checkpoint chosen
by macro F1 over the findings, the issue's multi-label measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from monai_ssl.data.sampling import oversample_minority
from monai_ssl.metrics.selection import selection_metric

from .classification_task import classification_task

__all__ = ["mrnet_training_datalist", "mrnet_validation_selection"]


def mrnet_training_datalist(items: Sequence[Mapping[str, Any]], multi_label: bool, seed: int = 0) -> list:
    """The fine-tuning items: the minority class oversampled for one finding, as listed for several."""
    return list(items) if multi_label else oversample_minority(items, seed=seed)


def mrnet_validation_selection(
    multi_label: bool,
    num_findings: int,
    device: str | torch.device,
    binary_metrics: Mapping[str, Any],
    validation_datalist: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The validation metrics and the one that selects the checkpoint.

    Args:
        multi_label: several findings at once.
        num_findings: ``K``.
        device: the evaluator's device (labels go there for the multi-label metrics).
        binary_metrics: the one-finding metrics (``val_auc``, ``val_accuracy``) of the config.
        validation_datalist: the validation items (one finding: a split with one class selects on accuracy).

    Returns:
        ``{"metrics": name -> metric, "key_metric_name": name}``.
    """
    if multi_label:
        task = classification_task(True, num_findings, device)
        return {"metrics": {**task["key_metric"], **task["additional_metrics"]}, "key_metric_name": task["key_metric_name"]}
    name = selection_metric(validation_datalist, preferred="val_auc", fallback="val_accuracy", split="validation")
    return {"metrics": dict(binary_metrics), "key_metric_name": name}
