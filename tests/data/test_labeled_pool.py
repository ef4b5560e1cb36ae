"""Tests for the labeled subset and the unlabeled pool of a segmentation training split."""

from __future__ import annotations

import logging
import random

import pytest

from monai_ssl.data.label_split import LabelBudgetError
from monai_ssl.data.labeled_pool import require_unlabeled_pool, split_labeled_pool, unlabeled_stream_datalist


def _ids(items) -> list[str]:
    return [item["id"] for item in items]


def _training(n: int) -> list[dict]:
    return [{"id": f"ISIC_{i:07d}", "image": f"/d/ISIC_{i:07d}.jpg", "label": f"/d/ISIC_{i:07d}_seg.png"}
            for i in range(n)]


def test_split_counts_and_unlabeled_items_drop_the_label(caplog):
    data = _training(20)
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        labeled, unlabeled = split_labeled_pool(data, 0.3, seed=0)
    assert len(labeled) == 6 and len(unlabeled) == 14
    assert sorted(_ids(labeled) + _ids(unlabeled)) == _ids(data)
    assert _ids(labeled) == sorted(_ids(labeled)) and _ids(unlabeled) == sorted(_ids(unlabeled))
    assert all(set(item) == {"id", "image", "label"} for item in labeled)
    assert all(set(item) == {"id", "image"} for item in unlabeled)
    assert all("label" in item for item in data)  # the input is not changed
    assert len(split_labeled_pool(data, 0.25)[0]) == 5  # rounded: 5.0
    assert len(split_labeled_pool(data, 0.125)[0]) == 3  # 2.5 rounds up
    assert len(split_labeled_pool(_training(3), 0.01)[0]) == 1  # at least one labeled image
    everything, pool = split_labeled_pool(data, 1.0)
    assert len(everything) == 20 and pool == []


def test_split_is_seeded_nested_and_order_independent():
    data = _training(50)
    shuffled = data[:]
    random.Random(3).shuffle(shuffled)
    for seed in range(5):
        small, _ = split_labeled_pool(data, 0.1, seed=seed)
        large, _ = split_labeled_pool(data, 0.3, seed=seed)
        assert set(_ids(small)) < set(_ids(large))
        assert split_labeled_pool(shuffled, 0.3, seed=seed) == split_labeled_pool(data, 0.3, seed=seed)
    assert _ids(split_labeled_pool(data, 0.1, seed=0)[0]) != _ids(split_labeled_pool(data, 0.1, seed=1)[0])


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1, True, "0.5"])
def test_split_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"split_labeled_pool: fraction must be a number in \(0, 1\]"):
        split_labeled_pool(_training(4), fraction)


def test_split_bad_datalists():
    with pytest.raises(ValueError, match="the datalist is empty"):
        split_labeled_pool([], 0.5)
    with pytest.raises(ValueError, match="appears more than once"):
        split_labeled_pool(_training(2) + _training(1), 0.5)
    with pytest.raises(ValueError, match="item 0 has no 'id'"):
        split_labeled_pool([{"image": "/a.jpg"}], 0.5)


def test_require_unlabeled_pool():
    labeled, pool = split_labeled_pool(_training(3), 0.9)
    assert len(labeled) == 3 and pool == []
    with pytest.raises(LabelBudgetError, match=r"unlabeled pool is empty at labeled fraction 0\.9: too few training"):
        require_unlabeled_pool(pool, 0.9)
    assert require_unlabeled_pool([], 1.0) == []
    with pytest.raises(ValueError, match="fraction must be a number") as bad:  # a bad setting, not a budget
        require_unlabeled_pool([], 1.5)
    assert not isinstance(bad.value, LabelBudgetError)
    _, pool = split_labeled_pool(_training(10), 0.5)
    assert require_unlabeled_pool(pool, 0.5) is pool


def test_stream_at_full_fraction_reuses_the_labeled_images_without_labels():
    labeled, pool = split_labeled_pool(_training(4), 1.0)
    stream = unlabeled_stream_datalist(labeled, pool, fraction=1.0)
    assert stream == [{"id": item["id"], "image": item["image"]} for item in labeled]
    extra = [{"id": "ISIC_0100000", "image": "/x/ISIC_0100000.jpg"}]
    assert unlabeled_stream_datalist(labeled, pool, extra, fraction=1.0) == extra


def test_stream_below_full_fraction_is_pool_plus_extra(caplog):
    labeled, pool = split_labeled_pool(_training(10), 0.2, seed=0)
    extra = [
        {"id": "ISIC_0100000", "image": "/x/ISIC_0100000.jpg"},
        {"id": "ISIC_0100001", "image": "/x/ISIC_0100001.jpg"},  # a validation image
        {"id": labeled[0]["id"], "image": "/x/again.jpg"},  # an ISIC id already in training
    ]
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        stream = unlabeled_stream_datalist(labeled, pool, extra, fraction=0.2, exclude_ids=["ISIC_0100001"])
    assert _ids(stream) == sorted(_ids(pool) + ["ISIC_0100000"])
    assert all("label" not in item for item in stream)
    assert "dropped 2 extra unlabeled image(s)" in caplog.text and labeled[0]["id"] in caplog.text
    with pytest.raises(LabelBudgetError, match="unlabeled pool is empty"):
        unlabeled_stream_datalist(labeled, [], extra, fraction=0.2)
