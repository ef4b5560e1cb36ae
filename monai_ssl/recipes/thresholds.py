"""Per-label decision thresholds of a multi-label classifier, chosen on the validation split.

Issue 23 (item 3) asks for "a threshold per label chosen on validation (0.5 by default)": the
network is run over the validation loader, its sigmoid outputs are collected, and
:func:`monai_ssl.metrics.choose_thresholds` picks for every label the threshold maximising its F1.
The test split is never used for this, so the reported test F1 is not fitted to the test labels.

Config usage (``evaluate.json``)::

    "thresholds": "validation",
    "report_thresholds": "$monai_ssl.recipes.report_thresholds(@thresholds, @multi_label, @network,
                          @validate#dataloader, @device, len(@class_names), amp=@amp, split=@val_split)"
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from monai_ssl.metrics.multilabel import DEFAULT_THRESHOLD, choose_thresholds

__all__ = ["THRESHOLD_MODES", "report_thresholds", "validation_thresholds"]

logger = logging.getLogger("monai_ssl")

THRESHOLD_MODES = ("f1", "fixed")
"""Modes of :func:`validation_thresholds`: maximise F1 per label, or the fixed ``default``."""


def _batch_parts(batch: Any) -> tuple[Any, Any]:
    """``(images, labels)`` of a collated batch dict (or a list of per-sample dicts)."""
    if isinstance(batch, list) and batch and isinstance(batch[0], dict):
        return torch.stack([torch.as_tensor(b["image"]) for b in batch]), torch.stack(
            [torch.as_tensor(b["label"]) for b in batch]
        )
    if not isinstance(batch, dict) or "image" not in batch or "label" not in batch:
        raise ValueError(
            "validation_thresholds: each validation batch must be a dict with \"image\" and \"label\" "
            f"(the labelled validation loader), got {type(batch).__name__}."
        )
    return batch["image"], batch["label"]


def validation_thresholds(
    network: torch.nn.Module,
    dataloader: Iterable[Any],
    device: str | torch.device,
    amp: bool = False,
    mode: str = "f1",
    default: float = DEFAULT_THRESHOLD,
    num_labels: int | None = None,
    split: str = "validation",
) -> list[float]:
    """One decision threshold per label, maximising the label's F1 on the validation loader.

    The network runs in eval mode without gradients (its training mode is restored after); the
    logits go through a sigmoid and, with the multi-hot labels, to
    :func:`monai_ssl.metrics.choose_thresholds` (a label without a positive validation image keeps
    ``default``). ``mode="fixed"`` returns ``[default] * num_labels`` without running anything.

    Args:
        network: the multi-label classifier (``K`` logits per image).
        dataloader: the validation loader, batches ``{"image", "label": (B, K) 0/1}``.
        device: where to run the network.
        amp: run under CUDA autocast (float16) when the device is CUDA.
        mode: ``"f1"`` or ``"fixed"``.
        default: threshold in ``[0, 1]`` for ``"fixed"`` and for labels without positives.
        num_labels: ``K``; required for ``"fixed"``, else checked against the network's output.
        split: the split the loader holds, named in the log line.

    Returns:
        ``K`` floats in ``[0, 1]``.

    Raises:
        ValueError: an unknown ``mode``, ``"fixed"`` without ``num_labels``, an empty loader, a
            batch without labels, or outputs/labels of another shape than ``(B, K)``.
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"validation_thresholds: `mode` must be one of {list(THRESHOLD_MODES)}, got {mode!r}.")
    if not 0.0 <= float(default) <= 1.0:
        raise ValueError(f"validation_thresholds: `default` must lie in [0, 1], got {default!r}.")
    if mode == "fixed":
        if num_labels is None or int(num_labels) < 1:
            raise ValueError("validation_thresholds: mode \"fixed\" needs `num_labels` (the number of labels, >= 1).")
        return [float(default)] * int(num_labels)
    dev = torch.device(device)
    was_training = network.training
    network.eval()
    probs, labels = [], []
    try:
        with torch.no_grad(), torch.autocast(device_type=dev.type, enabled=bool(amp) and dev.type == "cuda"):
            for batch in dataloader:
                images, targets = _batch_parts(batch)
                logits = network(torch.as_tensor(images).to(dev))
                probs.append(torch.sigmoid(logits.float()).cpu().as_subclass(torch.Tensor))
                labels.append(torch.as_tensor(targets).cpu().as_subclass(torch.Tensor).float())
    finally:
        network.train(was_training)
    if not probs:
        raise ValueError(f"validation_thresholds: the {split} loader is empty; thresholds need labelled {split} images.")
    p, y = torch.cat(probs).numpy(), torch.cat(labels).numpy()
    if p.ndim != 2 or y.shape != p.shape:
        raise ValueError(
            f"validation_thresholds: expected network outputs and {split} labels of the same shape (N, K), got "
            f"{p.shape} and {y.shape}; thresholds are for multi-label tasks (labels from a CSV with one 0/1 column per label)."
        )
    if num_labels is not None and p.shape[1] != int(num_labels):
        raise ValueError(f"validation_thresholds: the network gives {p.shape[1]} outputs, expected {num_labels} labels.")
    chosen = [float(t) for t in choose_thresholds(p, y, criterion="f1", default=default)]
    logger.info(
        "decision thresholds chosen on the %s split (%d images, max F1 per label): %s",
        split, p.shape[0], ", ".join(f"{t:.4f}" for t in chosen),
    )
    return chosen


def report_thresholds(
    setting: Any,
    multi_label: bool,
    network: torch.nn.Module,
    dataloader: Iterable[Any],
    device: str | torch.device,
    num_labels: int,
    amp: bool = False,
    split: str = "validation",
    name: str = "thresholds",
) -> dict[str, Any]:
    """Resolve a bundle's ``thresholds`` setting into the thresholds of the report and their source.

    Args:
        setting: ``"validation"`` (chosen on ``split`` with :func:`validation_thresholds`), one number
            in ``[0, 1]`` for every label, or ``num_labels`` numbers.
        multi_label: the resolved task; single-label tasks take no thresholds (arg-max).
        network, dataloader, device, amp: as :func:`validation_thresholds` (used for ``"validation"`` only).
        num_labels: ``K``.
        split: the validation split's name, for the log and the source text.
        name: the setting's name in errors.

    Returns:
        ``{"thresholds": list of K floats or None, "source": text or None}`` (``None`` for single-label).

    Raises:
        ValueError: a setting of another form, a number outside ``[0, 1]`` or a list of the wrong length.
    """
    if not multi_label:
        return {"thresholds": None, "source": None}
    if isinstance(setting, str):
        if setting != "validation":
            raise ValueError(f"`{name}` must be \"validation\", a number in [0, 1] or {num_labels} numbers, got {setting!r}.")
        chosen = validation_thresholds(network, dataloader, device, amp=amp, num_labels=num_labels, split=split)
        return {"thresholds": chosen, "source": f"chosen on the {split} split (max F1 per label)"}
    values = [setting] if isinstance(setting, (int, float)) and not isinstance(setting, bool) else setting
    if not isinstance(values, Sequence) or isinstance(values, bool):
        raise ValueError(f"`{name}` must be \"validation\", a number in [0, 1] or {num_labels} numbers, got {setting!r}.")
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be numbers in [0, 1], got {setting!r}.") from e
    if arr.size == 1:
        arr = np.full(int(num_labels), arr[0])
    if arr.size != int(num_labels) or not np.all((arr >= 0.0) & (arr <= 1.0)):
        raise ValueError(f"`{name}` must be one number in [0, 1] or {num_labels} of them (one per label), got {setting!r}.")
    return {"thresholds": [float(v) for v in arr], "source": f"fixed by the `{name}` setting"}
