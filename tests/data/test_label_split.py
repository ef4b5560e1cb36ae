"""Tests for split_labeled: stratified counts, seeding, nesting, order independence, errors."""

from __future__ import annotations

import logging
import random
from collections import Counter

import numpy as np
import pytest

from monai_ssl.data import LabelBudgetError as ExportedLabelBudgetError
from monai_ssl.data.label_split import LabelBudgetError, split_labeled

SIZES = {0: 40, 1: 10, 2: 5}


def _datalist(sizes=SIZES) -> list[dict]:
    return [
        {"image": f"/d/{c}/{i}.png", "label": np.array(c, dtype=np.int64), "id": f"c{c}/{i:03d}"}
        for c, n in sizes.items()
        for i in range(n)
    ]


def _count(items) -> dict[int, int]:
    return dict(Counter(int(i["label"]) for i in items))


def _ids(items) -> list[str]:
    return [i["id"] for i in items]


def test_fraction_is_per_class_and_rounded_half_up(caplog):
    data = _datalist()
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        labeled, unlabeled = split_labeled(data, fraction=0.25)
    assert _count(labeled) == {0: 10, 1: 3, 2: 1}  # 2.5 -> 3, 1.25 -> 1
    assert _count(unlabeled) == {0: 30, 1: 7, 2: 4}
    assert sorted(_ids(labeled) + _ids(unlabeled)) == sorted(_ids(data))
    assert not set(_ids(labeled)) & set(_ids(unlabeled))
    assert _ids(labeled) == sorted(_ids(labeled)) and _ids(unlabeled) == sorted(_ids(unlabeled))
    assert "class 1: 3/10" in caplog.text
    all_labeled, none_left = split_labeled(data, fraction=1.0)
    assert len(all_labeled) == len(data) and none_left == []


def test_items_are_returned_unchanged():
    data = _datalist()
    labeled, unlabeled = split_labeled(data, per_class=2)
    assert all(any(item is d for d in data) for item in labeled + unlabeled)
    assert set(labeled[0]) == {"image", "label", "id"}


def test_per_class_int_and_dict():
    labeled, _ = split_labeled(_datalist(), per_class=5)
    assert _count(labeled) == {0: 5, 1: 5, 2: 5}
    labeled, _ = split_labeled(_datalist(), per_class={0: 7, 1: 2, 2: 1})
    assert _count(labeled) == {0: 7, 1: 2, 2: 1}
    labeled, _ = split_labeled(_datalist(), per_class={"0": 1, "1": 1, "2": 1})  # JSON keys are strings
    assert _count(labeled) == {0: 1, 1: 1, 2: 1}


def test_same_seed_same_subset_whatever_the_order_other_seed_differs():
    data = _datalist()
    shuffled = data[:]
    random.Random(1).shuffle(shuffled)
    a, _ = split_labeled(data, fraction=0.2, seed=3)
    b, _ = split_labeled(shuffled, fraction=0.2, seed=3)
    c, _ = split_labeled(data, fraction=0.2, seed=4)
    assert _ids(a) == _ids(b)
    assert _ids(a) != _ids(c) and _count(a) == _count(c)


def test_larger_subsets_contain_smaller_ones():
    data = _datalist()
    small, _ = split_labeled(data, per_class=1, seed=7)
    middle, _ = split_labeled(data, fraction=0.5, seed=7)
    large, _ = split_labeled(data, per_class={0: 30, 1: 9, 2: 5}, seed=7)
    assert set(_ids(small)) <= set(_ids(middle)) <= set(_ids(large))


def test_other_label_forms():
    data = [{"id": f"{i:02d}", "label": np.array([float(i % 2)], np.float32)} for i in range(6)]  # MRNet style
    labeled, _ = split_labeled(data, per_class=1)
    assert _count([{"label": i["label"][0]} for i in labeled]) == {0: 1, 1: 1}
    plain = [{"id": str(i), "y": i % 3} for i in range(9)]
    labeled, unlabeled = split_labeled(plain, fraction=1 / 3, label_key="y")
    assert len(labeled) == 3 and len(unlabeled) == 6


def test_argument_errors():
    data = _datalist()
    with pytest.raises(ValueError, match="exactly one of fraction and per_class"):
        split_labeled(data)
    with pytest.raises(ValueError, match="exactly one of fraction and per_class"):
        split_labeled(data, fraction=0.5, per_class=2)
    for fraction in (0.0, 1.5, -0.1, "0.5"):
        with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\]"):
            split_labeled(data, fraction=fraction)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        split_labeled(data, fraction=0.5, seed=-1)
    with pytest.raises(ValueError, match="the datalist is empty"):
        split_labeled([], fraction=0.5)


def test_fraction_too_small_for_a_class_names_it():
    with pytest.raises(LabelBudgetError, match=r"fraction=0.05 leaves class 2 \(5 items\) with no labeled item; "
                                               r"use a fraction of at least 0.1 or per_class"):
        split_labeled(_datalist(), fraction=0.05)


def test_a_budget_a_class_cannot_meet_is_a_typed_value_error():
    assert ExportedLabelBudgetError is LabelBudgetError and issubclass(LabelBudgetError, ValueError)
    with pytest.raises(ValueError) as too_few:  # still caught by code that catches ValueError
        split_labeled(_datalist(), fraction=0.05)
    assert type(too_few.value) is LabelBudgetError
    with pytest.raises(LabelBudgetError, match="asks for 6 labeled items of class 2, which has only 5"):
        split_labeled(_datalist(), per_class=6)
    with pytest.raises(LabelBudgetError, match="asks for 11 labeled items of class 1, which has only 10"):
        split_labeled(_datalist(), per_class={0: 1, 1: 11, 2: 1})


@pytest.mark.parametrize("kwargs", [
    {}, {"fraction": 0.5, "per_class": 2}, {"fraction": 0.0}, {"fraction": 1.5}, {"per_class": 0},
    {"per_class": {0: 1, 1: 1}}, {"per_class": {0: 1, 1: 1, 2: 1, 3: 1}}, {"fraction": 0.5, "seed": -1},
])
def test_malformed_settings_are_plain_value_errors_not_budgets(kwargs):
    with pytest.raises(ValueError) as error:
        split_labeled(_datalist(), **kwargs)
    assert not isinstance(error.value, LabelBudgetError)


def test_per_class_errors_name_the_class():
    data = _datalist()
    with pytest.raises(ValueError, match="asks for 6 labeled items of class 2, which has only 5"):
        split_labeled(data, per_class=6)
    with pytest.raises(ValueError, match=r"class\(es\) \[3\] that the datalist does not hold"):
        split_labeled(data, per_class={0: 1, 1: 1, 2: 1, 3: 1})
    with pytest.raises(ValueError, match=r"no count for class\(es\) \[2\]"):
        split_labeled(data, per_class={0: 1, 1: 1})
    with pytest.raises(ValueError, match="count for class 0 must be an integer >= 1"):
        split_labeled(data, per_class=0)
    with pytest.raises(ValueError, match="count for class 1 must be an integer >= 1"):
        split_labeled(data, per_class={0: 1, 1: 2.5, 2: 1})
    with pytest.raises(ValueError, match="keys must be class indices"):
        split_labeled(data, per_class={"CNV": 1})


def test_item_errors():
    with pytest.raises(ValueError, match="item 1 has no 'id' key"):
        split_labeled([{"id": "a", "label": 0}, {"label": 1}], per_class=1)
    with pytest.raises(ValueError, match="id 'a' appears more than once"):
        split_labeled([{"id": "a", "label": 0}, {"id": "a", "label": 0}], per_class=1)
    with pytest.raises(ValueError, match=r"item 0 \('a'\) has no 'label' key"):
        split_labeled([{"id": "a"}], per_class=1)
    with pytest.raises(ValueError, match="expected one class index"):
        split_labeled([{"id": "a", "label": np.zeros(3)}], per_class=1)
    with pytest.raises(ValueError, match="expected a class index 0, 1, 2"):
        split_labeled([{"id": "a", "label": 0.5}], per_class=1)
    with pytest.raises(ValueError, match="expected a class index 0, 1, 2"):
        split_labeled([{"id": "a", "label": -1}], per_class=1)
