"""Tests of monai_ssl.metrics.selection: which metric the best checkpoint is selected on."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from monai_ssl.metrics import class_counts, selection_metric
from monai_ssl.metrics import key_metric, other_metrics


def _datalist(labels):
    return [{"image": f"{i}.npy", "label": np.array([y], dtype=np.float32)} for i, y in enumerate(labels)]


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "monai_ssl" and r.levelno == logging.WARNING]


def test_both_classes_keep_the_preferred_metric_silently(caplog):
    assert selection_metric(_datalist([0, 1, 0])) == "val_auc"
    assert not _warnings(caplog)


def test_single_class_falls_back_with_one_warning(caplog):
    name = selection_metric(_datalist([0, 0, 0, 0, 0]), split="validation")
    assert name == "val_accuracy"
    [record] = _warnings(caplog)
    message = record.getMessage()
    assert "validation split holds a single class" in message and "all 5 labels are class 0" in message
    assert "'val_accuracy' instead of 'val_auc'" in message


def test_names_labels_and_split_are_configurable(caplog):
    data = [{"y": torch.tensor(1)}, {"y": torch.tensor(1)}]
    assert selection_metric(data, preferred="auc", fallback="f1", label_key="y", split="tuning") == "f1"
    message = _warnings(caplog)[0].getMessage()
    assert "tuning split" in message and "all 2 labels are class 1" in message and "'f1' instead of 'auc'" in message


def test_multiclass_missing_class(caplog):
    one_hot = [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert selection_metric([0, 1, 2], num_classes=3) == "val_auc"
    assert selection_metric(one_hot, preferred="val_accuracy", num_classes=3) == "val_accuracy"
    message = _warnings(caplog)[0].getMessage()
    assert "has no label of class 1" in message and "1 of class 0, 2 of class 2" in message
    assert "instead of" not in message  # the preferred metric is already the fallback


def test_class_counts_input_forms():
    assert class_counts([1.0, 0, np.int64(1), [1], torch.tensor([0.0])]) == {0: 2, 1: 3}
    assert class_counts(_datalist([1, 1, 0])) == {0: 1, 1: 2}


@pytest.mark.parametrize(
    "data, kwargs, error, match",
    [
        ([], {}, ValueError, "empty"),
        ([0.5, 1], {}, ValueError, "class index"),
        ([0, 2], {}, ValueError, r"\[0, 1\]"),
        ([{"image": "a"}], {}, KeyError, "label"),
        ([0, 1], {"num_classes": 1}, ValueError, "num_classes"),
    ],
)
def test_invalid_input(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        selection_metric(data, **kwargs)


def test_key_and_other_metrics():
    metrics = {"val_auc": 1, "val_accuracy": 2}
    assert key_metric(metrics, "val_auc") == {"val_auc": 1} and other_metrics(metrics, "val_auc") == {"val_accuracy": 2}
    with pytest.raises(KeyError, match="val_f1"):
        key_metric(metrics, "val_f1")
