"""Output transforms that turn MONAI evaluator outputs into what Ignite metrics take."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["class_scores_and_indices"]


def class_scores_and_indices(output: Any, pred_key: str = "pred", label_key: str = "label") -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores (B, K), labels (B,) int64)`` from a MONAI evaluator output, for ``ignite.metrics.Accuracy``.

    MONAI evaluators decollate their output into a list of per-sample dicts (or keep a dict of
    batched tensors with ``decollate=False``); Ignite's multi-class metrics want batched class
    scores and class indices. MONAI's ``ConfusionMatrix(metric_name="accuracy")`` is not a
    substitute for more than two classes: on one-hot inputs it also counts true negatives of every
    class.

    The labels are returned on the device of the scores: after decollation a scalar label is a
    Python number, which ``torch.as_tensor`` would otherwise put on the CPU.
    """
    if isinstance(output, dict):
        scores, labels = torch.as_tensor(output[pred_key]), output[label_key]
    else:
        scores = torch.stack([torch.as_tensor(o[pred_key]) for o in output])
        labels = torch.stack([torch.as_tensor(o[label_key], device=scores.device) for o in output])
    # decollated scalar labels are Python numbers: keep the labels on the scores' device (GPU runs)
    return scores.float(), torch.as_tensor(labels, device=scores.device).long().reshape(-1)
