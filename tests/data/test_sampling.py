"""Tests for minority oversampling."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from monai_ssl.data import oversample_minority


def _datalist(n_neg: int = 7, n_pos: int = 3) -> list[dict]:
    labels = [0.0] * n_neg + [1.0] * n_pos
    return [{"image": f"{i:04d}.npy", "id": f"{i:04d}", "label": [y]} for i, y in enumerate(labels)]


def test_balances_counts_with_whole_copies_plus_remainder():
    data = _datalist(7, 3)
    out = oversample_minority(data, seed=1)
    assert len(out) == 14
    assert Counter(item["label"][0] for item in out) == {0.0: 7, 1.0: 7}
    per_id = Counter(item["id"] for item in out)
    assert all(per_id[d["id"]] == 1 for d in data if d["label"] == [0.0])  # majority untouched
    positives = sorted(per_id[d["id"]] for d in data if d["label"] == [1.0])
    assert positives == [2, 2, 3]  # 7 = 2 whole copies of 3 + 1 extra


def test_deterministic_and_shuffled():
    data = _datalist(20, 5)
    a = [item["id"] for item in oversample_minority(data, seed=0)]
    b = [item["id"] for item in oversample_minority(data, seed=0)]
    c = [item["id"] for item in oversample_minority(data, seed=1)]
    assert a == b and a != c
    assert a != sorted(a)


def test_shallow_copies():
    data = _datalist(2, 1)
    out = oversample_minority(data)
    assert all(item is not original for item in out for original in data)
    out[0]["extra"] = 1
    assert all("extra" not in d for d in data) and sum("extra" in item for item in out) == 1
    assert any(item["label"] is data[2]["label"] for item in out)  # shallow: values are shared


@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 0, 1],
        [0.0, 0.0, 0.0, 1.0],
        [[0.0], [0.0], [0.0], [1.0]],
        [np.array([0.0], np.float32)] * 3 + [np.array([1.0], np.float32)],
        [torch.tensor([0.0])] * 3 + [torch.tensor(1.0)],
        [True, False, False, False],
    ],
)
def test_label_forms(labels):
    out = oversample_minority([{"id": str(i), "y": y} for i, y in enumerate(labels)], label_key="y")
    assert len(out) == 6


def test_three_classes_and_single_class():
    data = [{"id": str(i), "label": i % 3 if i < 6 else 0} for i in range(9)]  # sizes 5, 2, 2
    assert Counter(item["label"] for item in oversample_minority(data)) == {0: 5, 1: 5, 2: 5}
    same = [{"id": str(i), "label": 1} for i in range(4)]
    assert sorted(item["id"] for item in oversample_minority(same)) == ["0", "1", "2", "3"]


def test_mrnet_style_labels_from_datalist():
    data = [{"id": f"{i:04d}", "label": np.array([float(i < 2)], np.float32)} for i in range(6)]
    out = oversample_minority(data)
    assert Counter(float(item["label"][0]) for item in out) == {0.0: 4, 1.0: 4}


def test_errors():
    with pytest.raises(ValueError, match="datalist is empty"):
        oversample_minority([])
    with pytest.raises(ValueError, match=r"item 1 \(id='0001'\) has no label key 'label'"):
        oversample_minority([{"id": "0000", "label": 0}, {"id": "0001", "image": "a.npy"}])
    with pytest.raises(ValueError, match=r"item 0 \(image='a.npy'\) has no label key 'y'"):
        oversample_minority([{"image": "a.npy", "label": 0}], label_key="y")
    with pytest.raises(ValueError, match=r"item 0 \(id='x'\): label 'label' must be a scalar or a 1-element list"):
        oversample_minority([{"id": "x", "label": [0, 1]}])
    with pytest.raises(ValueError, match="is not a number"):
        oversample_minority([{"id": "x", "label": None}])
    with pytest.raises(ValueError, match="is not a number"):
        oversample_minority([{"id": "x", "label": float("nan")}])
    with pytest.raises(TypeError, match="item 0 must be a dict"):
        oversample_minority(["a.npy"])
