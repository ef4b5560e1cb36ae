"""Tests of monai_ssl.metrics.multiclass against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai_ssl.metrics import multiclass_classification_metrics, one_vs_rest_roc_curves

# 8 samples, 3 classes; arg-max predictions 0, 0, 1 | 1, 1, 0 | 2, 1
PROBS = [
    [0.7, 0.2, 0.1],
    [0.5, 0.4, 0.1],
    [0.3, 0.6, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.8, 0.1],
    [0.4, 0.3, 0.3],
    [0.1, 0.2, 0.7],
    [0.2, 0.5, 0.3],
]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2]
NAMES = ["A", "B", "C"]
# one-vs-rest pairs won (ties count half):
# A: positives .7 .5 .3 vs negatives .2 .1 .4 .1 .2 -> 5 + 5 + 4 = 14 of 15
# B: positives .7 .8 .3 vs negatives .2 .4 .6 .2 .5 -> 5 + 5 + 2 = 12 of 15
# C: positives .7 .3 vs negatives .1 .1 .1 .1 .1 .3 -> 6 + 5.5 = 11.5 of 12
AUCS = [14 / 15, 12 / 15, 11.5 / 12]


def test_three_classes_by_hand():
    m = multiclass_classification_metrics(PROBS, LABELS, NAMES)
    assert m["confusion_matrix"] == [[2, 1, 0], [1, 2, 0], [0, 1, 1]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["class_names"] == NAMES and m["n"] == 8
    assert list(m["per_class"]) == NAMES
    expected = {  # precision, recall, f1, support
        "A": (2 / 3, 2 / 3, 2 / 3, 3),
        "B": (2 / 4, 2 / 3, 4 / 7, 3),
        "C": (1.0, 1 / 2, 2 / 3, 2),
    }
    for (name, (p, r, f1, support)), auc in zip(expected.items(), AUCS):
        c = m["per_class"][name]
        assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((p, r, f1))
        assert c["support"] == support and c["auc"] == pytest.approx(auc)
    assert m["macro_precision"] == pytest.approx(13 / 18)
    assert m["macro_recall"] == pytest.approx(11 / 18)
    assert m["macro_f1"] == pytest.approx(40 / 63)
    assert m["macro_auc"] == pytest.approx(sum(AUCS) / 3)
    assert "auc_note" not in m and "macro_note" not in m
    json.dumps(m, allow_nan=False)
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)
    assert all(type(m[k]) is float for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc"))


def test_default_names_and_input_forms():
    expected = multiclass_classification_metrics(PROBS, LABELS)
    assert expected["class_names"] == ["0", "1", "2"] and list(expected["per_class"]) == ["0", "1", "2"]
    for probs, labels in [
        (np.array(PROBS, dtype=np.float32), np.array(LABELS)[:, None]),
        (torch.tensor(PROBS), torch.tensor(LABELS).view(-1, 1)),
        ([torch.tensor(p) for p in PROBS], [torch.tensor(y) for y in LABELS]),
        (PROBS, [float(y) for y in LABELS]),
    ]:
        m = multiclass_classification_metrics(probs, labels)
        assert m["confusion_matrix"] == expected["confusion_matrix"]
        assert m["macro_auc"] == pytest.approx(expected["macro_auc"])


def test_absent_class_gives_none():
    # a fourth class that is never the label nor predicted: same macro values as the 3-class case
    probs = [row + [0.0] for row in PROBS]
    m = multiclass_classification_metrics(probs, LABELS, NAMES + ["D"])
    d = m["per_class"]["D"]
    assert d == {"precision": None, "recall": None, "f1": None, "support": 0, "auc": None}
    assert m["macro_precision"] == pytest.approx(13 / 18)
    assert m["macro_recall"] == pytest.approx(11 / 18)
    assert m["macro_f1"] == pytest.approx(40 / 63)
    assert m["macro_auc"] == pytest.approx(sum(AUCS) / 3)
    assert "'D'" in m["auc_note"] and "averages the other" in m["auc_note"]
    assert m["confusion_matrix"][3] == [0, 0, 0, 0]
    assert "macro_note" not in m  # a class neither labeled nor predicted is no news
    json.dumps(m, allow_nan=False)


def test_never_predicted_and_single_class():
    # class 2 present but never predicted: its precision is undefined (None) and left out of the macro mean;
    # its recall and F1 are 0 and count
    m = multiclass_classification_metrics([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]], [0, 1, 2])
    assert m["per_class"]["2"]["precision"] is None and m["per_class"]["2"]["recall"] == 0.0
    assert m["per_class"]["0"]["precision"] == 0.5
    assert m["macro_precision"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["macro_recall"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert m["macro_note"] == (
        "undefined (0 / 0) and left out of the macro means: precision for ['2'] (never predicted); "
        "macro_precision and macro_recall average the other classes."
    )
    # one class is every label: every one-vs-rest AUC is undefined
    m = multiclass_classification_metrics([[0.6, 0.4], [0.3, 0.7]], [1, 1])
    assert m["macro_auc"] is None and all(c["auc"] is None for c in m["per_class"].values())
    assert "macro_auc is undefined" in m["auc_note"]
    assert m["accuracy"] == 0.5 and m["per_class"]["0"]["recall"] is None
    json.dumps(m, allow_nan=False)


def test_predicted_but_absent_class_is_left_out_of_macro_recall():
    # class 2 is predicted once but never the label: recall 0 / 0 (None) is left out of macro_recall,
    # its precision 0 / 1 counts in macro_precision
    probs = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.2, 0.6, 0.2]]
    m = multiclass_classification_metrics(probs, [0, 1, 0, 1])
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]
    assert m["per_class"]["2"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0, "auc": None}
    assert m["macro_recall"] == pytest.approx((1 / 2 + 1.0) / 2)
    assert m["macro_precision"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert "recall for ['2'] (absent from the labels)" in m["macro_note"] and "precision for" not in m["macro_note"]
    json.dumps(m, allow_nan=False)


def test_one_vs_rest_curves():
    curves = one_vs_rest_roc_curves(PROBS, LABELS)
    assert [c[2] for c in curves] == pytest.approx(AUCS)
    fpr, tpr, _ = curves[2]
    assert fpr[0] == 0.0 and tpr[0] == 0.0 and fpr[-1] == 1.0 and tpr[-1] == 1.0
    assert one_vs_rest_roc_curves([row + [0.0] for row in PROBS], LABELS)[3] is None


@pytest.mark.parametrize(
    "probs, labels, names, match",
    [
        ([[0.5, 0.6], [0.5, 0.5]], [0, 1], None, "sum to 1"),
        ([[1.2, -0.2], [0.5, 0.5]], [0, 1], None, r"\[0, 1\]"),
        ([[float("nan"), 0.5], [0.5, 0.5]], [0, 1], None, r"\[0, 1\]"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 2], None, r"indices in \[0, 1\]"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 0.5], None, "indices"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, -1], None, "indices"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 1, 1], None, "length"),
        ([0.5, 0.5], [0, 1], None, r"shape \(N, K\)"),
        ([[0.5], [0.5]], [0, 1], None, "binary_classification_metrics"),
        ([[0.5, 0.5]], [[0, 1]], None, "shape"),
        (np.zeros((0, 3)), [], None, "empty"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 1], ["a"], "2 classes"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 1], ["a", "a"], "distinct"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 1], "ab", "sequence of strings"),
    ],
)
def test_invalid_input(probs, labels, names, match):
    with pytest.raises(ValueError, match=match):
        multiclass_classification_metrics(probs, labels, names)


def test_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[labels]
    probs = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2)  # rounding creates ties
    probs[:, -1] = 1.0 - probs[:, :-1].sum(axis=1)
    probs = np.clip(probs, 0.0, 1.0)
    m = multiclass_classification_metrics(probs, labels)
    pred = probs.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(labels, pred))
    assert m["confusion_matrix"] == metrics.confusion_matrix(labels, pred).tolist()
    p, r, f1, support = metrics.precision_recall_fscore_support(labels, pred, zero_division=0)
    for k, c in enumerate(m["per_class"].values()):
        assert (c["precision"], c["recall"], c["f1"], c["support"]) == pytest.approx((p[k], r[k], f1[k], support[k]))
        assert c["auc"] == pytest.approx(metrics.roc_auc_score(labels == k, probs[:, k]))
    p, r, f1, _ = metrics.precision_recall_fscore_support(labels, pred, average="macro", zero_division=0)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f1))
    # sklearn wants rows summing exactly to 1 for multi_class="ovr"
    exact = probs / probs.sum(axis=1, keepdims=True)
    expected = metrics.roc_auc_score(labels, exact, multi_class="ovr", average="macro")
    assert multiclass_classification_metrics(exact, labels)["macro_auc"] == pytest.approx(expected)
    # classes never predicted: their undefined precision is left out of the macro mean (zero_division=nan)
    collapsed = np.tile([0.5, 0.3, 0.1, 0.1], (300, 1))
    collapsed[labels == 1] = [0.3, 0.5, 0.1, 0.1]
    m = multiclass_classification_metrics(collapsed, labels)
    pred = collapsed.argmax(axis=1)
    p, r, f1, _ = metrics.precision_recall_fscore_support(labels, pred, average="macro", zero_division=np.nan)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f1))
