"""Per-label thresholds chosen on the validation loader: hand-computed values, fixed mode, settings, errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset

from monai_ssl.recipes import THRESHOLD_MODES, report_thresholds, validation_thresholds

# label 0: p 0.9 0.4 0.3 0.6, y 1 0 1 0 -> F1 2/3 at 0.9 and at 0.3 (ties: the smaller) -> 0.3
# label 1: p 0.2 0.7 0.8 0.1, y 0 1 1 0 -> F1 1 at 0.7;  label 2: p 0.6 0.1 0.2 0.4, y 1 0 0 1 -> F1 1 at 0.4
PROBS = [[0.9, 0.2, 0.6], [0.4, 0.7, 0.1], [0.3, 0.8, 0.2], [0.6, 0.1, 0.4]]
LABELS = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]


class _Logits(torch.nn.Module):
    """Returns the logits stored in the image and records whether it ran in training mode."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return x * self.scale


def _loader(labels=LABELS):
    logits = torch.logit(torch.tensor(PROBS, dtype=torch.float64)).float()
    items = [{"image": lg, "label": np.asarray(y, dtype=np.float32)} for lg, y in zip(logits, labels)]
    return DataLoader(Dataset(items), batch_size=3)


def test_thresholds_are_chosen_on_validation(caplog):
    net = _Logits()
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        chosen = validation_thresholds(net, _loader(), "cpu", split="val")
    assert chosen == pytest.approx([0.3, 0.7, 0.4], abs=1e-6)
    assert net.modes == [False, False] and net.training  # eval mode while running, training mode restored
    assert "chosen on the val split (4 images" in caplog.text and "0.3000, 0.7000, 0.4000" in caplog.text


def test_label_without_positive_keeps_default():
    labels = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert validation_thresholds(_Logits(), _loader(labels), "cpu", default=0.25)[2] == 0.25


def test_fixed_mode_runs_nothing():
    net = _Logits()
    assert validation_thresholds(net, _loader(), "cpu", mode="fixed", default=0.4, num_labels=3) == [0.4] * 3
    assert net.modes == [] and THRESHOLD_MODES == ("f1", "fixed")


def test_report_thresholds_setting():
    net = _Logits()
    out = report_thresholds("validation", True, net, _loader(), "cpu", 3, split="val")
    assert out["thresholds"] == pytest.approx([0.3, 0.7, 0.4], abs=1e-6) and "val split" in out["source"]
    assert report_thresholds(0.6, True, net, _loader(), "cpu", 3) == {
        "thresholds": [0.6] * 3, "source": "fixed by the `thresholds` setting"}
    assert report_thresholds([0.1, 0.2, 0.3], True, net, None, "cpu", 3)["thresholds"] == [0.1, 0.2, 0.3]
    assert report_thresholds("validation", False, net, None, "cpu", 3) == {"thresholds": None, "source": None}


@pytest.mark.parametrize(
    "setting, match", [("test", "must be \"validation\""), ([0.1, 0.2], "3 of them"), (1.5, "one number in"), (True, "must be")]
)
def test_report_thresholds_errors(setting, match):
    with pytest.raises(ValueError, match=match):
        report_thresholds(setting, True, _Logits(), _loader(), "cpu", 3)


def test_validation_thresholds_errors():
    with pytest.raises(ValueError, match="`mode` must be one of"):
        validation_thresholds(_Logits(), _loader(), "cpu", mode="youden")
    with pytest.raises(ValueError, match="needs `num_labels`"):
        validation_thresholds(_Logits(), _loader(), "cpu", mode="fixed")
    with pytest.raises(ValueError, match="loader is empty"):
        validation_thresholds(_Logits(), [], "cpu")
    with pytest.raises(ValueError, match="multi-label tasks"):
        single = DataLoader(Dataset([{"image": torch.zeros(3), "label": 1}]), batch_size=1)
        validation_thresholds(_Logits(), single, "cpu")
    with pytest.raises(ValueError, match="expected 4 labels"):
        validation_thresholds(_Logits(), _loader(), "cpu", num_labels=4)
