"""Tests of ``select_pseudo_labels``: top-N, threshold, per-class balance, clamping, validation."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from monai_ssl.pseudo_label import select_pseudo_labels


def _probs(p1: list[float]) -> np.ndarray:
    """Two-class probabilities from the class-1 probabilities."""
    p = np.asarray(p1, dtype=np.float32)
    return np.stack([1 - p, p], axis=1)


IDS = ["a", "b", "c", "d", "e", "f"]
P = _probs([0.95, 0.10, 0.60, 0.30, 0.99, 0.45])  # confidences .95 .90 .60 .70 .99 .55


def test_top_n_most_confident_first():
    out = select_pseudo_labels(P, IDS, num_samples=3)
    assert [(i, c) for i, c, _ in out] == [("e", 1), ("a", 1), ("b", 0)]
    assert [round(x, 2) for _, _, x in out] == [0.99, 0.95, 0.90]
    assert all(isinstance(c, int) and isinstance(x, float) for _, c, x in out)


def test_no_cap_takes_all_sorted():
    out = select_pseudo_labels(P, IDS, num_samples=None)
    assert [i for i, _, _ in out] == ["e", "a", "b", "d", "c", "f"]


def test_threshold_applies_before_the_cap():
    assert [i for i, _, _ in select_pseudo_labels(P, IDS, num_samples=None, threshold=0.85)] == ["e", "a", "b"]
    assert [i for i, _, _ in select_pseudo_labels(P, IDS, num_samples=2, threshold=0.85)] == ["e", "a"]
    assert select_pseudo_labels(P, IDS, num_samples=10, threshold=1.0) == []


def test_threshold_keeps_equal_confidence():
    out = select_pseudo_labels(_probs([0.75, 0.5]), ["x", "y"], num_samples=None, threshold=0.75)
    assert [i for i, _, _ in out] == ["x"]


def test_balance_per_class_without_redistribution():
    # class 1: e .99, a .95, c .60 ; class 0: b .90, d .70, f .55
    out = select_pseudo_labels(P, IDS, num_samples=4, balance=True)
    assert [(i, c) for i, c, _ in out] == [("e", 1), ("a", 1), ("b", 0), ("d", 0)]
    # class 1 has only one item above .9: it gives what it has, the remainder is not redistributed
    out = select_pseudo_labels(P, IDS, num_samples=4, threshold=0.92, balance=True)
    assert [i for i, _, _ in out] == ["e", "a"]
    out = select_pseudo_labels(_probs([0.9, 0.8, 0.7, 0.15]), list("wxyz"), num_samples=4, balance=True)
    assert [(i, c) for i, c, _ in out] == [("w", 1), ("z", 0), ("x", 1)]
    # odd num_samples: 5 // 2 = 2 per class
    assert len(select_pseudo_labels(P, IDS, num_samples=5, balance=True)) == 4


def test_balance_three_classes():
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]])
    out = select_pseudo_labels(probs, ["p", "q", "r", "s"], num_samples=3, balance=True)
    assert [(i, c) for i, c, _ in out] == [("s", 0), ("q", 1), ("r", 2)]


def test_clamp_logs_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        out = select_pseudo_labels(P, IDS, num_samples=2000)
    assert len(out) == 6
    warnings = [r for r in caplog.records if r.name == "monai_ssl" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == "asked for 2000 pseudo-labels, only 6 unlabeled images; taking 6"


def test_no_warning_within_pool(caplog):
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        select_pseudo_labels(P, IDS, num_samples=6, threshold=0.9)
    assert not caplog.records


def test_ties_broken_by_id_independent_of_order():
    probs = _probs([0.8, 0.8, 0.3, 0.8])
    ids = ["k", "b", "z", "a"]
    out = select_pseudo_labels(probs, ids, num_samples=3)
    assert [i for i, _, _ in out] == ["a", "b", "k"]
    perm = [2, 0, 3, 1]
    again = select_pseudo_labels(probs[perm], [ids[i] for i in perm], num_samples=3)
    assert again == out


def test_empty_pool():
    assert select_pseudo_labels(np.zeros((0, 2)), [], num_samples=5) == []


@pytest.mark.parametrize(
    "probs, ids, kwargs, match",
    [
        (np.ones(4) / 4, list("abcd"), {}, "matrix"),
        (_probs([0.5, 0.5]), ["a"], {}, "ids"),
        (_probs([0.5, 0.5]), ["a", "a"], {}, "unique"),
        (np.array([[0.5, 0.6], [0.5, 0.5]]), ["a", "b"], {}, "sum to 1"),
        (np.array([[1.5, -0.5]]), ["a"], {}, r"\[0, 1\]"),
        (np.array([[np.nan, 1.0]]), ["a"], {}, "NaN"),
        (np.ones((2, 1)), ["a", "b"], {}, "2 class"),
        (_probs([0.5]), ["a"], {"num_samples": -1}, "num_samples"),
        (_probs([0.5]), ["a"], {"num_samples": 1.5}, "num_samples"),
        (_probs([0.5]), ["a"], {"threshold": 1.2}, "threshold"),
        (_probs([0.5, 0.4, 0.1]), list("abc"), {"num_samples": 1, "balance": True}, "0 per class"),
    ],
)
def test_validation_errors(probs, ids, kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_pseudo_labels(probs, ids, **kwargs)
