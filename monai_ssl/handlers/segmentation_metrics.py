"""Ignite metrics of a binary segmentation scored per image as the evaluation report scores it.

:class:`ForegroundOverlap` averages over images the IoU or Dice of the foreground (the lesion) from
:func:`~monai_ssl.metrics.segmentation.binary_iou_dice`, the function behind
:class:`~monai_ssl.handlers.SegmentationReportWriter`'s ``mean_iou`` and ``mean_dice``: a validation inside
training that uses it with ``evaluate.json``'s preprocessing and postprocessing selects the model on the
figure ``evaluate.json`` reports for that split. It counts on boolean masks on the CPU (MONAI's
``MeanIoU``/``MeanDice`` compute in float on the device, which at an image's original size takes longer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce
from monai.handlers import from_engine

from monai_ssl.metrics.segmentation import binary_iou_dice, foreground_mask

__all__ = ["ForegroundOverlap"]

KINDS = ("iou", "dice")


class ForegroundOverlap(Metric):
    """Mean over images of the foreground's IoU or Dice (an Ignite ``Metric``, e.g. a MONAI evaluator's key metric).

    Each image's prediction and true mask may be label maps ``(1, H, W)`` or two channels ``(2, H, W)``
    (:func:`~monai_ssl.metrics.segmentation.foreground_mask`); both empty scores 1. In distributed runs the
    sums and counts of all processes are added before the mean.

    Args:
        kind: ``"iou"`` or ``"dice"``.
        output_transform: the engine output to ``(predictions, labels)``, sequences of per-image masks (or
            batches); by default the ``pred`` and ``label`` of MONAI's decollated output.
        device: where the sums are kept for the distributed reduction.

    Raises:
        ValueError: an unknown ``kind``.
    """

    def __init__(self, kind: str = "iou", output_transform: Callable = from_engine(["pred", "label"]),
                 device: str | torch.device = "cpu") -> None:
        if kind not in KINDS:
            raise ValueError(f"ForegroundOverlap: kind must be one of {list(KINDS)}, got {kind!r}.")
        self.kind = kind
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:  # noqa: D102
        self._sum = torch.tensor(0.0, dtype=torch.float64, device=self._device)
        self._count = torch.tensor(0, dtype=torch.long, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """Score every image of ``output = (predictions, labels)``.

        Raises:
            ValueError: a prediction and its mask differ in size, or the lists in length.
        """
        preds, labels = output
        if len(preds) != len(labels):
            raise ValueError(f"ForegroundOverlap: {len(preds)} predictions for {len(labels)} masks.")
        index = KINDS.index(self.kind)
        for pred, label in zip(preds, labels):
            pred_mask, true_mask = foreground_mask(pred, "pred"), foreground_mask(label, "label")
            if pred_mask.shape != true_mask.shape:
                raise ValueError(f"ForegroundOverlap: prediction {pred_mask.shape} and mask {true_mask.shape} differ "
                                 "in size; bring the prediction back to the mask's size (e.g. Invertd).")
            self._sum += binary_iou_dice(pred_mask, true_mask)[index]
            self._count += 1

    @sync_all_reduce("_sum", "_count")
    def compute(self) -> float:
        """The mean over the images scored since the last reset (of every process).

        Raises:
            NotComputableError: no image was scored.
        """
        if int(self._count) == 0:
            raise NotComputableError("ForegroundOverlap: no image was scored.")
        return float(self._sum / self._count)
