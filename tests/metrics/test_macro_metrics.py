"""Ignite selection metrics on hand-computed cases: single-label macro recall, multi-label macro F1."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from monai_ssl.metrics import macro_f1_metric, macro_recall_metric, multilabel_decisions

# labels 0,0,0,1,1,2 predicted 0,0,1,1,0,2 -> recalls 2/3, 1/2, 1 -> macro 13/18
SL_PROBS = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]]
SL_LABELS = [0, 0, 0, 1, 1, 2]
# at 0.5: per-label F1 1/2 (tp1 fp1 fn1), 1, 2/3 (tp1 fn1) -> macro 13/18
ML_PROBS = [[0.9, 0.2, 0.6], [0.4, 0.7, 0.1], [0.3, 0.8, 0.2], [0.6, 0.1, 0.4]]
ML_LABELS = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]


def _metric_value(metric, output):
    """Attach ``metric`` to an Ignite engine that returns ``output`` once; the metric's value."""
    engine = Engine(lambda e, b: output)
    metric.attach(engine, "m")
    engine.run([0], max_epochs=1)
    return engine.state.metrics["m"]


def test_selection_metric_parts_on_hand_cases():
    sl_output = {"pred": torch.tensor(SL_PROBS), "label": torch.tensor(SL_LABELS).view(-1, 1)}
    assert _metric_value(macro_recall_metric(), sl_output) == pytest.approx(13 / 18)
    ml_output = {"pred": torch.tensor(ML_PROBS), "label": torch.tensor(ML_LABELS)}
    # at 0.65: label 0 -> tp1 fn1 (F1 2/3), label 1 -> F1 1, label 2 -> fn2 (F1 0)
    assert _metric_value(macro_f1_metric(0.65), ml_output) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert _metric_value(macro_f1_metric(), ml_output) == pytest.approx(13 / 18)
    decisions, labels = multilabel_decisions([{"pred": torch.tensor([0.5, 0.49]), "label": torch.tensor([1.0, 0.0])}])
    assert decisions.tolist() == [[1, 0]] and labels.dtype == torch.int64


@pytest.mark.parametrize(
    "output, match",
    [
        ({"pred": torch.rand(2, 3), "label": torch.tensor([0, 1])}, "same shape"),
        ({"pred": torch.rand(2, 2), "label": torch.tensor([[0, 2], [1, 0]])}, "0/1"),
    ],
)
def test_multilabel_decisions_errors(output, match):
    with pytest.raises(ValueError, match=match):
        multilabel_decisions(output)


def test_threshold_out_of_range():
    with pytest.raises(ValueError, match="threshold"):
        macro_f1_metric(1.5)
