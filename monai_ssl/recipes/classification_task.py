"""What single- vs multi-label classification means for a bundle: loss, activation, metrics, settings.

S4MI (Singh et al., classification experiments) fine-tunes with a softmax head and cross-entropy on
ISIC 2017 and Dermofit (one class per image), reporting recall (ISIC 2017, the mean per-class
recall = balanced accuracy) and F1 (Dermofit), and with one sigmoid per label and binary
cross-entropy on the multi-label immunofluorescence set, reporting F1. :func:`classification_task`
is the one place a bundle learns these parts; a config reads them as ``@task#loss`` etc.

Config usage (``finetune.json``)::

    "multi_label": "auto",
    "task_multi_label": "$monai_ssl.recipes.multi_label_setting(@multi_label, @splits['train'])",
    "task": "$monai_ssl.recipes.classification_task(@task_multi_label, @num_classes, @device)",
    "loss": "$@task['loss']",
    "validate": {"postprocessing": "$@task['val_postprocessing']",
                 "key_metric": "$@task['key_metric']",
                 "additional_metrics": "$@task['additional_metrics']", ...}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.handlers import ROCAUC, from_engine
from monai.transforms import Activationsd, AsDiscreted, Compose, CopyItemsd, EnsureTyped
from ignite.metrics import Accuracy

from monai_ssl.metrics.macro_metrics import macro_f1_metric, macro_recall_metric
from monai_ssl.metrics.output_transforms import class_scores_and_indices

__all__ = ["MULTI_LABEL_VALUES", "classification_task", "multi_label_setting", "require_single_label"]

MULTI_LABEL_VALUES = ("auto", True, False)
"""Values of a bundle's ``multi_label`` setting."""


def _is_vector_label(label: Any) -> bool:
    """Whether one datalist label is a vector (multi-hot) rather than a class index."""
    if isinstance(label, (list, tuple)):
        return len(label) > 1
    shape = getattr(label, "shape", None)
    return shape is not None and len(shape) >= 1 and int(np.prod(shape)) > 1


def multi_label_setting(value: Any, datalist: Sequence[Mapping[str, Any]], setting: str = "multi_label") -> bool:
    """Resolve a bundle's ``multi_label`` setting (``"auto"``, ``true`` or ``false``) against its datalist.

    ``"auto"`` is multi-label when the labels are vectors (the float32 multi-hot arrays of
    :func:`monai_ssl.data.label_csv_datalist`), single-label when they are class indices.

    Args:
        value: ``"auto"``, ``True`` or ``False`` (the strings ``"true"``/``"false"`` are accepted).
        datalist: items with a ``"label"`` key (the training items).
        setting: the setting's name in error messages.

    Returns:
        ``True`` for a multi-label task.

    Raises:
        ValueError: an unknown value, an empty datalist or one without labels, or a value that
            contradicts the labels (``true`` with class indices, ``false`` with vectors).
    """
    if isinstance(value, str) and value.lower() in ("true", "false", "auto"):
        value = {"true": True, "false": False, "auto": "auto"}[value.lower()]
    if not (value == "auto" or isinstance(value, bool)):
        raise ValueError(f"`{setting}` must be \"auto\", true or false (--{setting} auto), got {value!r}.")
    items = list(datalist)
    if not items or any("label" not in item for item in items[:1]):
        raise ValueError(f"`{setting}`: the datalist is empty or has no \"label\" key; cannot tell single- from multi-label.")
    vectors = [_is_vector_label(item["label"]) for item in items]
    if any(vectors) and not all(vectors):
        raise ValueError(f"`{setting}`: the datalist mixes class indices and label vectors; fix the label file.")
    found = all(vectors)
    if value == "auto":
        return found
    if value and not found:
        raise ValueError(
            f"`{setting}` is true but the labels are class indices (one class per image); multi-label data comes "
            f"as a label CSV with one 0/1 column per label (--labels_csv), or set --{setting} auto."
        )
    if not value and found:
        raise ValueError(
            f"`{setting}` is false but the labels are vectors (one 0/1 column per label); set --{setting} auto "
            "or true for a multi-label task, or give one class per image."
        )
    return bool(value)


def require_single_label(multi_label: bool, what: str) -> None:
    """Refuse a multi-label task in a part that is single-label only (e.g. pseudo-labeling).

    Args:
        multi_label: the resolved ``multi_label`` setting.
        what: the part, e.g. ``"pseudolabel.json"``, named in the error.

    Raises:
        ValueError: ``multi_label`` is true.
    """
    if multi_label:
        raise ValueError(
            f"{what} is single-label only (one class per image), but the task is multi-label "
            "(`multi_label` resolved to true from the label CSV); use finetune.json for multi-label data."
        )


def classification_task(
    multi_label: bool,
    num_classes: int,
    device: str | torch.device = "cpu",
    loss_weight: torch.Tensor | Sequence[float] | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Loss, postprocessing and validation metrics of a single- or multi-label classification task.

    Single-label: a softmax head with ``CrossEntropyLoss`` (``loss_weight`` = per-class weights),
    checkpoints selected by ``val_macro_recall`` (balanced accuracy, S4MI's ISIC 2017 measure), with
    ``val_accuracy`` and one-vs-rest ``val_auc`` beside it. Multi-label: one sigmoid per label with
    ``BCEWithLogitsLoss`` (``loss_weight`` = per-label ``pos_weight``), selected by ``val_macro_f1`` at
    ``threshold`` (0.5; per-label thresholds are chosen on validation only for the final report, see
    :func:`monai_ssl.recipes.validation_thresholds`), with ``val_macro_auc`` beside it.

    Args:
        multi_label: the resolved setting (:func:`multi_label_setting`).
        num_classes: number of classes / labels ``K`` (>= 2 single-label, >= 1 multi-label).
        device: the evaluator's device; the labels are moved there so predictions and labels agree on CUDA.
        loss_weight: ``None`` or ``K`` non-negative numbers.
        threshold: the multi-label decision threshold of the selection metric.

    Returns:
        ``{"multi_label", "loss", "activation", "eval_postprocessing", "val_postprocessing",
        "key_metric_name", "key_metric", "additional_metrics", "label_dtype"}``, where ``activation``
        is ``{"softmax": True}`` or ``{"sigmoid": True}`` (``Activationsd`` kwargs),
        ``eval_postprocessing`` applies it to ``pred`` only, ``val_postprocessing`` also moves the
        label to ``device`` (and adds ``label_onehot`` for the single-label AUC), ``key_metric`` is
        ``{key_metric_name: metric}`` and ``label_dtype`` the dtype the loss wants for labels.

    Raises:
        ValueError: a bad ``multi_label``, ``num_classes`` or ``loss_weight``.
    """
    if not isinstance(multi_label, bool):
        raise ValueError(
            f"classification_task: `multi_label` must be a resolved bool, got {multi_label!r}; "
            "resolve \"auto\" with monai_ssl.recipes.multi_label_setting first."
        )
    k = int(num_classes)
    if k < (1 if multi_label else 2):
        raise ValueError(
            f"classification_task: `num_classes` must be >= {1 if multi_label else 2} for a "
            f"{'multi' if multi_label else 'single'}-label task, got {num_classes}."
        )
    weight = None
    if loss_weight is not None:
        weight = torch.as_tensor(loss_weight, dtype=torch.float32).reshape(-1)
        if weight.numel() != k or not torch.all(torch.isfinite(weight) & (weight >= 0)):
            raise ValueError(
                f"classification_task: `loss_weight` must be {k} finite non-negative numbers (one per "
                f"{'label' if multi_label else 'class'}), got {loss_weight!r}."
            )
        weight = weight.to(device)
    dev = torch.device(device)
    label_to_device = EnsureTyped(keys="label", device=dev, track_meta=False)
    if multi_label:
        activation = {"sigmoid": True}
        loss: torch.nn.Module = torch.nn.BCEWithLogitsLoss(pos_weight=weight)
        val_post = Compose([Activationsd(keys="pred", **activation), label_to_device])
        key_name = "val_macro_f1"
        key_metric = macro_f1_metric(threshold)
        additional = {"val_macro_auc": ROCAUC(average="macro", output_transform=from_engine(["pred", "label"]))}
        label_dtype = torch.float32
    else:
        activation = {"softmax": True}
        loss = torch.nn.CrossEntropyLoss(weight=weight)
        val_post = Compose(
            [
                Activationsd(keys="pred", **activation),
                label_to_device,
                CopyItemsd(keys="label", names="label_onehot"),
                AsDiscreted(keys="label_onehot", to_onehot=k),
            ]
        )
        key_name = "val_macro_recall"
        key_metric = macro_recall_metric()
        additional = {
            "val_accuracy": Accuracy(output_transform=class_scores_and_indices),
            "val_auc": ROCAUC(output_transform=from_engine(["pred", "label_onehot"])),
        }
        label_dtype = torch.int64
    return {
        "multi_label": multi_label,
        "num_classes": k,
        "loss": loss,
        "activation": activation,
        "eval_postprocessing": Compose([Activationsd(keys="pred", **activation)]),
        "val_postprocessing": val_post,
        "key_metric_name": key_name,
        "key_metric": {key_name: key_metric},
        "additional_metrics": additional,
        "label_dtype": label_dtype,
    }
