"""Tests of monai_ssl.metrics.multilabel against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai_ssl.metrics import choose_thresholds, multilabel_report

# 4 samples, 3 labels (columns A, B, C)
# A: p = 0.9 0.6 0.4 0.2, y = 1 0 1 0 (one error each way at 0.5)
# B: p = 0.8 0.7 0.3 0.1, y = 1 1 0 0 (perfect)
# C: p = 0.6 0.2 0.1 0.3, y = 0 0 0 0 (no positive target)
PROBS = np.array(
    [
        [0.9, 0.8, 0.6],
        [0.6, 0.7, 0.2],
        [0.4, 0.3, 0.1],
        [0.2, 0.1, 0.3],
    ]
)
TARGETS = np.array(
    [
        [1, 1, 0],
        [0, 1, 0],
        [1, 0, 0],
        [0, 0, 0],
    ]
)
NAMES = ["A", "B", "C"]


def test_report_at_default_threshold_by_hand():
    r = multilabel_report(PROBS, TARGETS, label_names=NAMES)
    a, b, c = (r["per_label"][k] for k in NAMES)
    # A at 0.5: predicted 1 1 0 0 -> tp 1 (s0), fp 1 (s1), fn 1 (s2); f1 = 2 / (2 + 1 + 1)
    # AUC: positives 0.9, 0.4 vs negatives 0.6, 0.2 -> 0.9 wins 2, 0.4 wins 1 -> 3 / 4
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert a["auc"] == pytest.approx(0.75)
    assert (a["support"], a["predicted"], a["threshold"]) == (2, 2, 0.5)
    # B: predicted 1 1 0 0 = targets
    assert (b["precision"], b["recall"], b["f1"], b["auc"]) == pytest.approx((1.0, 1.0, 1.0, 1.0))
    # C: predicted 1 0 0 0 (0.6), no positive: tp 0, fp 1, fn 0 -> precision 0 / 1, recall 0 / 0, f1 0 / 1
    assert c["precision"] == 0.0 and c["recall"] is None and c["f1"] == 0.0
    assert c["auc"] is None and (c["support"], c["predicted"]) == (0, 1)
    # macro: precision (0.5 + 1 + 0) / 3; recall (0.5 + 1) / 2 (C left out); f1 (0.5 + 1 + 0) / 3
    assert r["macro_precision"] == pytest.approx(0.5)
    assert r["macro_recall"] == pytest.approx(0.75)
    assert r["macro_f1"] == pytest.approx(0.5)
    assert r["macro_auc"] == pytest.approx(0.875)  # (0.75 + 1) / 2
    # micro: tp 1 + 2 + 0 = 3, fp 1 + 0 + 1 = 2, fn 1 + 0 + 0 = 1
    assert r["micro_precision"] == pytest.approx(3 / 5)
    assert r["micro_recall"] == pytest.approx(3 / 4)
    assert r["micro_f1"] == pytest.approx(6 / 9)
    # only sample 3 (nothing predicted, nothing true) has its whole label set right
    assert r["exact_match"] == pytest.approx(0.25)
    assert r["thresholds"] == [0.5, 0.5, 0.5] and r["label_names"] == NAMES and r["n"] == 4
    assert "'C'" in r["auc_note"] and "all 4 labels are 0" in r["auc_note"]
    assert "recall of ['C']" in r["macro_note"]
    json.dumps(r)


def test_report_with_per_label_thresholds_by_hand():
    r = multilabel_report(PROBS, TARGETS, thresholds=[0.3, 0.5, 0.7])
    a, c = r["per_label"]["0"], r["per_label"]["2"]
    # A at 0.3: predicted 1 1 1 0 -> tp 2, fp 1, fn 0
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((2 / 3, 1.0, 4 / 5))
    # C at 0.7: nothing predicted, nothing true -> every ratio 0 / 0
    assert c["precision"] is None and c["recall"] is None and c["f1"] is None
    assert r["macro_precision"] == pytest.approx((2 / 3 + 1) / 2)
    assert r["macro_recall"] == pytest.approx(1.0)
    assert r["macro_f1"] == pytest.approx((0.8 + 1) / 2)
    # micro: tp 2 + 2, fp 1, fn 0
    assert (r["micro_precision"], r["micro_recall"], r["micro_f1"]) == pytest.approx((0.8, 1.0, 8 / 9))
    assert r["thresholds"] == [0.3, 0.5, 0.7]
    assert "precision of ['2']" in r["macro_note"] and "f1 of ['2']" in r["macro_note"]


def test_scalar_threshold_and_input_forms_agree():
    expected = multilabel_report(PROBS, TARGETS, thresholds=0.35)
    assert expected["thresholds"] == [0.35] * 3
    assert multilabel_report(torch.tensor(PROBS), torch.tensor(TARGETS).bool(), thresholds=0.35) == expected
    assert multilabel_report(PROBS.tolist(), TARGETS.tolist(), thresholds=torch.tensor(0.35, dtype=torch.float64)) == expected
    assert multilabel_report(PROBS, TARGETS, thresholds=np.full(3, 0.35)) == expected


def test_all_correct_and_all_wrong():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    right = multilabel_report(y.astype(float), y)
    for key in ("macro_precision", "macro_recall", "macro_f1", "macro_auc", "micro_f1", "exact_match"):
        assert right[key] == 1.0, key
    assert "macro_note" not in right and "auc_note" not in right
    wrong = multilabel_report(1.0 - y, y)
    for key in ("macro_precision", "macro_recall", "macro_f1", "macro_auc", "micro_precision", "micro_f1"):
        assert wrong[key] == 0.0, key
    assert wrong["exact_match"] == 0.0


def test_single_label_column_and_all_positive_label():
    r = multilabel_report([[0.2], [0.9]], [[1], [1]])
    # both positive: predicted 0 1 -> tp 1, fn 1; AUC undefined (all 1)
    assert r["per_label"]["0"]["recall"] == 0.5 and r["per_label"]["0"]["precision"] == 1.0
    assert r["macro_auc"] is None and "macro_auc is undefined" in r["auc_note"]
    assert "all 2 labels are 1" in r["auc_note"]


def test_choose_thresholds_by_hand():
    # A: t=0.9 -> tp 1, predicted 1: F1 = 2 / (1 + 2) = 0.667; t=0.6 -> 2 / (2 + 2) = 0.5;
    #    t=0.4 -> tp 2: 4 / (3 + 2) = 0.8 (best); t=0.2 -> 4 / (4 + 2) = 0.667
    # B: t=0.8 -> 2/3; t=0.7 -> 4 / 4 = 1 (best); t=0.3 -> 4/5; t=0.1 -> 4/6
    # C: no positive -> default
    np.testing.assert_array_equal(choose_thresholds(PROBS, TARGETS), [0.4, 0.7, 0.5])
    chosen = choose_thresholds(PROBS, TARGETS, default=0.25)
    assert chosen.dtype == np.float64 and chosen.shape == (3,)
    np.testing.assert_array_equal(chosen, [0.4, 0.7, 0.25])
    r = multilabel_report(PROBS, TARGETS, thresholds=chosen)
    assert r["per_label"]["0"]["f1"] == pytest.approx(0.8) and r["per_label"]["1"]["f1"] == 1.0


def test_choose_thresholds_ties_take_the_smallest():
    # positives at 0.9 and 0.6 of 0.9 0.8 0.7 0.6: F1 at 0.9 = 2 / (1 + 2) = 2/3, at 0.8 = 2 / 4,
    # at 0.7 = 2 / 5, at 0.6 = 4 / (4 + 2) = 2/3 -> tie of 0.9 and 0.6, the smallest is 0.6
    p = np.array([[0.9], [0.8], [0.7], [0.6]])
    y = np.array([[1], [0], [0], [1]])
    assert choose_thresholds(p, y)[0] == 0.6
    # equal scores form one candidate: 0.7 0.7 0.2 with targets 1 0 1: t=0.7 -> tp 1 of 2 predicted:
    # 2 / (2 + 2) = 0.5; t=0.2 -> 4 / (3 + 2) = 0.8 -> 0.2
    assert choose_thresholds([[0.7], [0.7], [0.2]], [[1], [0], [1]])[0] == 0.2


def test_choose_thresholds_beats_every_observed_threshold():
    rng = np.random.default_rng(0)
    p = np.round(rng.random((40, 4)), 1)  # rounding makes ties
    y = (rng.random((40, 4)) < 0.4).astype(int)
    chosen = choose_thresholds(p, y)
    best = multilabel_report(p, y, thresholds=chosen)
    for j in range(4):
        assert chosen[j] in p[:, j]
        for t in np.unique(p[:, j]):
            f1 = multilabel_report(p[:, [j]], y[:, [j]], thresholds=t)["per_label"]["0"]["f1"]
            assert best["per_label"][str(j)]["f1"] >= f1
            if f1 == best["per_label"][str(j)]["f1"]:
                assert t >= chosen[j]  # ties: the smallest was chosen


@pytest.mark.parametrize(
    ("probs", "targets", "kwargs", "match"),
    [
        (PROBS[:, 0], TARGETS[:, 0], {}, r"shape \(N, K\)"),
        (PROBS, TARGETS[:3], {}, "same shape"),
        (PROBS, TARGETS * 2, {}, r"`targets` must be 0 or 1.*\[2"),
        (np.where(PROBS == 0.6, np.nan, PROBS), TARGETS, {}, "2 NaN value.*sample 0, label 2"),
        (PROBS * 2, TARGETS, {}, r"\[0, 1\].*sigmoid"),
        (np.zeros((0, 3)), np.zeros((0, 3)), {}, "empty"),
        (PROBS, TARGETS, {"thresholds": [0.5, 0.5]}, "expected 3 values"),
        (PROBS, TARGETS, {"thresholds": [0.5, 1.5, 0.5]}, r"thresholds\[1\]"),
        (PROBS, TARGETS, {"thresholds": float("nan")}, "thresholds"),
        (PROBS, TARGETS, {"label_names": ["A", "B"]}, "2 names for 3 labels"),
        (PROBS, TARGETS, {"label_names": ["A", "A", "B"]}, "distinct"),
        (PROBS, TARGETS, {"label_names": "ABC"}, "the string"),
    ],
)
def test_report_errors(probs, targets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        multilabel_report(probs, targets, **kwargs)


def test_choose_thresholds_errors():
    with pytest.raises(ValueError, match="criterion.*'auc'"):
        choose_thresholds(PROBS, TARGETS, criterion="auc")
    with pytest.raises(ValueError, match="`default`"):
        choose_thresholds(PROBS, TARGETS, default=2.0)
    with pytest.raises(ValueError, match="NaN"):
        choose_thresholds(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_agrees_with_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    p = rng.random((30, 5))
    y = (rng.random((30, 5)) < 0.3).astype(int)
    y[:, 4] = 0  # one label without positives
    thr = np.array([0.5, 0.3, 0.7, 0.5, 0.9])
    pred = (p >= thr).astype(int)
    r = multilabel_report(p, y, thresholds=thr)
    for average in ("macro", "micro"):
        prec, rec, f1, _ = sk.precision_recall_fscore_support(y, pred, average=average, zero_division=np.nan)
        assert r[f"{average}_precision"] == pytest.approx(prec)
        assert r[f"{average}_recall"] == pytest.approx(rec)
        assert r[f"{average}_f1"] == pytest.approx(f1)
    assert r["macro_auc"] == pytest.approx(np.mean([sk.roc_auc_score(y[:, j], p[:, j]) for j in range(4)]))
    assert r["exact_match"] == pytest.approx(sk.accuracy_score(y, pred))
