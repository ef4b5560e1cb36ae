"""Ignite metrics for model selection: macro recall (single-label) and macro F1 (multi-label).

S4MI (Singh et al., classification experiments) reports ISIC 2017 as recall, i.e. the mean of the
per-class recalls (balanced accuracy), and the multi-label immunofluorescence set as F1. During
training the validation evaluator selects the best checkpoint by these numbers, so they are built
here from Ignite's ``Recall``/``Precision``/``Fbeta`` (the per-epoch accumulating metrics MONAI's
evaluators take as ``key_val_metric``). The final reports use the numpy functions
:func:`monai_ssl.metrics.multiclass_classification_metrics` and :func:`monai_ssl.metrics.multilabel_report`.

One difference to those: Ignite counts an undefined ``0 / 0`` (a class without samples, a label
never predicted) as 0 inside the macro mean, the reports leave it out. On a validation split where
every class occurs this only matters for precision.
"""

from __future__ import annotations

from typing import Any

import torch
from ignite.metrics import Fbeta, Precision, Recall

from .output_transforms import class_scores_and_indices

__all__ = ["macro_f1_metric", "macro_recall_metric", "multilabel_decisions"]


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"`threshold` of the multi-label validation metric must lie in [0, 1], got {threshold!r}.")
    return t


def multilabel_decisions(
    output: Any, threshold: float = 0.5, pred_key: str = "pred", label_key: str = "label"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(decisions (B, K) int64, labels (B, K) int64)`` from a multi-label evaluator output.

    ``pred`` holds sigmoid probabilities (postprocess with ``Activationsd(keys="pred", sigmoid=True)``);
    a label is decided present when its probability is ``>= threshold`` (the rule of
    :func:`monai_ssl.metrics.multilabel_report`). Ignite's multi-label ``Precision``/``Recall`` take
    these 0/1 tensors. Both outputs are on the device of ``pred``.

    Args:
        output: a dict of batched tensors or a decollated list of per-sample dicts.
        threshold: decision threshold in ``[0, 1]`` for every label.
        pred_key: key of the probabilities.
        label_key: key of the multi-hot labels.

    Raises:
        ValueError: the predictions are not ``(B, K)``, the labels have another shape, or they are not 0/1.
    """
    t = _check_threshold(threshold)
    if isinstance(output, dict):
        probs, labels = torch.as_tensor(output[pred_key]), torch.as_tensor(output[label_key])
    else:
        probs = torch.stack([torch.as_tensor(o[pred_key]) for o in output])
        labels = torch.stack([torch.as_tensor(o[label_key], device=probs.device) for o in output])
    labels = labels.to(probs.device)
    if probs.ndim != 2 or labels.shape != probs.shape:
        raise ValueError(
            "multi-label validation metric: expected predictions and multi-hot labels of the same shape (B, K), "
            f"got {tuple(probs.shape)} and {tuple(labels.shape)}; is the task single-label (multi_label false)?"
        )
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError("multi-label validation metric: labels must be 0/1 (one column per label).")
    return (probs.float() >= t).long(), labels.long()


def macro_recall_metric(device: str | torch.device = "cpu") -> Recall:
    """Single-label macro recall (balanced accuracy, the S4MI ISIC 2017 measure) as an Ignite metric.

    Reads ``(scores (B, K), class indices (B,))`` with :func:`monai_ssl.metrics.class_scores_and_indices`;
    the predicted class is the arg-max.
    """
    return Recall(output_transform=class_scores_and_indices, average="macro", device=device)


def macro_f1_metric(threshold: float = 0.5, device: str | torch.device = "cpu") -> Any:
    """Multi-label macro F1 at a fixed ``threshold`` (0.5 during model selection) as an Ignite metric.

    The per-label F1 ``2 P R / (P + R)`` from Ignite's multi-label per-label precision and recall,
    averaged over the labels (S4MI reports the multi-label set as F1). Reads the evaluator output with
    :func:`multilabel_decisions`.
    """
    t = _check_threshold(threshold)

    def transform(output: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return multilabel_decisions(output, threshold=t)

    precision = Precision(output_transform=transform, average=False, is_multilabel=True, device=device)
    recall = Recall(output_transform=transform, average=False, is_multilabel=True, device=device)
    return Fbeta(beta=1.0, average=True, precision=precision, recall=recall)
