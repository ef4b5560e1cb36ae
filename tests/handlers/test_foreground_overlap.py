"""``ForegroundOverlap``: the report's per-image IoU and Dice as an Ignite metric of a validation."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError

from monai_ssl.handlers.segmentation_metrics import ForegroundOverlap
from monai_ssl.metrics.segmentation import binary_iou_dice

TRUTH = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # (1, H, W) label maps
PRED = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
EMPTY = torch.zeros(1, 2, 2)


def _two_channels(mask: torch.Tensor) -> torch.Tensor:
    return torch.cat([1 - mask, mask])


@pytest.mark.parametrize(("kind", "expected"), [("iou", (0.5 + 1.0) / 2), ("dice", (2 / 3 + 1.0) / 2)])
def test_mean_over_images_of_the_report_scores(kind, expected):
    metric = ForegroundOverlap(kind)
    metric.reset()
    metric.update(([PRED, EMPTY], [TRUTH, EMPTY]))  # both empty scores 1, as in the report
    assert metric.compute() == pytest.approx(expected)
    assert binary_iou_dice(PRED[0], TRUTH[0])[("iou", "dice").index(kind)] == pytest.approx(2 * expected - 1.0)


def test_as_a_metric_of_an_evaluator_with_decollated_outputs():
    outputs = [[{"pred": PRED, "label": _two_channels(TRUTH)}], [{"pred": _two_channels(PRED), "label": TRUTH}]]
    engine = Engine(lambda e, batch: batch)
    ForegroundOverlap("iou").attach(engine, "val_iou")
    state = engine.run(outputs, max_epochs=1)
    assert state.metrics["val_iou"] == pytest.approx(0.5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        ForegroundOverlap("accuracy")
    metric = ForegroundOverlap()
    with pytest.raises(NotComputableError):
        metric.compute()
    with pytest.raises(ValueError, match="differ in size"):
        metric.update(([torch.zeros(1, 4, 4)], [TRUTH]))
    with pytest.raises(ValueError, match="2 predictions for 1 masks"):
        metric.update(([PRED, PRED], [TRUTH]))
