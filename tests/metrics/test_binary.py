"""Tests of monai_ssl.metrics.binary against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from monai_ssl.metrics import binary_classification_metrics, roc_auc, roc_curve

# positives 0.9, 0.7, 0.4; negatives 0.7, 0.3, 0.1 -> pairs won: 3 + 2.5 + 2 = 7.5 of 9
PROBS6 = [0.9, 0.7, 0.7, 0.4, 0.3, 0.1]
LABELS6 = [1, 1, 0, 1, 0, 0]


def test_perfect_and_inverse():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0


def test_ties_count_half():
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5
    fpr, tpr, thr = roc_curve([0.5, 0.5], [0, 1])
    np.testing.assert_allclose(fpr, [0.0, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 1.0])
    assert thr[0] == math.inf and thr[1] == 0.5
    # all scores equal: one diagonal step whatever the order
    assert roc_auc([0.3] * 5, [1, 0, 0, 1, 0]) == 0.5


def test_six_samples_by_hand():
    fpr, tpr, thr = roc_curve(PROBS6, LABELS6)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.7, 0.4, 0.3, 0.1])
    assert roc_auc(PROBS6, LABELS6) == pytest.approx(7.5 / 9)


def test_input_forms_agree():
    expected = roc_auc(PROBS6, LABELS6)
    assert roc_auc(np.array(PROBS6)[:, None], np.array(LABELS6)) == pytest.approx(expected)
    assert roc_auc(torch.tensor(PROBS6).view(-1, 1), torch.tensor(LABELS6).view(-1, 1)) == pytest.approx(expected)
    assert roc_auc([torch.tensor([p]) for p in PROBS6], [torch.tensor(y) for y in LABELS6]) == pytest.approx(expected)
    assert roc_auc(PROBS6, [bool(y) for y in LABELS6]) == pytest.approx(expected)


def test_metrics_at_threshold():
    m = binary_classification_metrics(PROBS6, LABELS6)
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["auc"] == pytest.approx(7.5 / 9)
    assert (m["n"], m["n_positive"], m["threshold"]) == (6, 3, 0.5)
    assert "auc_note" not in m
    # prob >= threshold is positive
    m = binary_classification_metrics(PROBS6, LABELS6, threshold=0.4)
    assert m["confusion_matrix"] == [[2, 1], [0, 3]]
    assert m["sensitivity"] == 1.0 and m["precision"] == pytest.approx(0.75) and m["f1"] == pytest.approx(6 / 7)
    json.dumps(m)
    assert all(type(v) in (float, int) for k, v in m.items() if k != "confusion_matrix")
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_zero_division_gives_none():
    m = binary_classification_metrics([0.1, 0.2, 0.3], [0, 0, 0])
    assert m["auc"] is None and "only one class" in m["auc_note"]
    assert m["sensitivity"] is None and m["precision"] is None and m["f1"] is None
    assert m["specificity"] == 1.0 and m["accuracy"] == 1.0
    assert m["confusion_matrix"] == [[3, 0], [0, 0]]
    json.dumps(m, allow_nan=False)
    m = binary_classification_metrics([0.1, 0.2], [1, 0])
    assert m["precision"] is None and m["sensitivity"] == 0.0 and m["f1"] == 0.0


@pytest.mark.parametrize(
    "probs, labels, match",
    [
        ([0.2, 1.5], [0, 1], r"\[0, 1\]"),
        ([0.2, float("nan")], [0, 1], r"\[0, 1\]"),
        ([0.2, 0.3], [0, 2], "0 or 1"),
        ([0.2, 0.3, 0.4], [0, 1], "length"),
        ([[0.2, 0.8]], [1], "shape"),
        ([], [], "empty"),
    ],
)
def test_invalid_input(probs, labels, match):
    with pytest.raises(ValueError, match=match):
        binary_classification_metrics(probs, labels)


def test_single_class_auc_raises():
    with pytest.raises(ValueError, match="only one class"):
        roc_auc([0.2, 0.9], [1, 1])
    with pytest.raises(ValueError, match="only one class"):
        roc_curve([0.2, 0.9], [0, 0])


def test_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.round(np.clip(0.3 * labels + rng.random(200) * 0.7, 0, 1), 2)  # rounding creates ties
    assert roc_auc(probs, labels) == pytest.approx(metrics.roc_auc_score(labels, probs))
    fpr, tpr, _ = roc_curve(probs, labels)
    fpr_sk, tpr_sk, _ = metrics.roc_curve(labels, probs, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_sk)
    np.testing.assert_allclose(tpr, tpr_sk)
