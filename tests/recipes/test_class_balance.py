"""The ``class_balance`` setting: hand-computed loss weights, a seeded sampler drawing classes equally, errors by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from monai_ssl.recipes import (
    CLASS_BALANCE_MODES,
    class_balance,
    class_balanced_sampler,
    class_counts,
    class_labels,
    class_loss_weights,
)

# 6 items of class 0, 3 of class 1, 1 of class 2 (an ISIC-like imbalance)
LABELS = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]


def _datalist(labels=LABELS):
    return [{"image": f"img{i}.png", "label": label, "id": f"ISIC_{i:07d}"} for i, label in enumerate(labels)]


def test_label_forms_are_read_as_class_indices():
    items = [{"label": 2}, {"label": [1]}, {"label": np.array([0])}, {"label": torch.tensor(1)}, {"label": 2.0},
             {"label": np.int64(0)}, {"label": [[1]]}]
    assert class_labels(items, 3) == [2, 1, 0, 1, 2, 0, 1]
    assert class_counts(items, 3) == [2, 3, 2]


def test_loss_weights_by_hand():
    # counts (6, 3, 1): 1/n = (1/6, 1/3, 1), sum 3/2; w = 3 * (1/n) / (3/2) = (1/3, 2/3, 2), mean 1
    weights = class_loss_weights(_datalist(), 3)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, torch.tensor([1 / 3, 2 / 3, 2.0]))
    assert weights.mean().item() == pytest.approx(1.0)
    # every class then weighs the same in the loss: n_c * w_c = 2 for each
    torch.testing.assert_close(torch.tensor([6.0, 3.0, 1.0]) * weights, torch.full((3,), 2.0))


def test_balanced_data_gives_unit_weights():
    torch.testing.assert_close(class_loss_weights(_datalist([0, 1, 2, 1, 0, 2]), 3), torch.ones(3))


def test_loss_weights_weight_cross_entropy_by_class():
    weight = class_balance("loss_weights", _datalist(), 3)["loss_weight"]
    loss = torch.nn.CrossEntropyLoss(weight=weight)
    # logits (2, 0, 0) for both items: -log softmax is log(e^2 + 2) - 2 for class 0 and log(e^2 + 2) for class 2
    logits = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    l_right = np.log(np.exp(2) + 2) - 2  # -log softmax of class 0
    l_wrong = np.log(np.exp(2) + 2)  # -log softmax of class 2
    expected = (1 / 3 * l_right + 2 * l_wrong) / (1 / 3 + 2)  # mean reduction divides by the summed weights
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_sampler_item_weights_and_length():
    sampler = class_balanced_sampler(_datalist(), 3, seed=1)
    assert isinstance(sampler, WeightedRandomSampler)
    assert sampler.num_samples == len(LABELS) and sampler.replacement is True
    expected = torch.tensor([1 / 6] * 6 + [1 / 3] * 3 + [1.0], dtype=torch.float64)
    torch.testing.assert_close(sampler.weights, expected)
    # each class totals weight 1: a draw is of each class with probability 1/3
    torch.testing.assert_close(torch.stack([sampler.weights[:6].sum(), sampler.weights[6:9].sum(), sampler.weights[9:].sum()]),
                               torch.ones(3, dtype=torch.float64))


def test_seeded_sampler_draws_each_class_about_equally():
    sampler = class_balanced_sampler(_datalist(), 3, seed=7)
    draws = [index for _ in range(2000) for index in sampler]  # 2000 epochs of 10 draws
    classes = np.bincount([LABELS[i] for i in draws], minlength=3) / len(draws)
    # binomial standard error sqrt(1/3 * 2/3 / 20000) ~ 0.0033: 0.02 is six of them
    np.testing.assert_allclose(classes, [1 / 3] * 3, atol=0.02)
    # the unbalanced data would have given 0.6 / 0.3 / 0.1


def test_sampler_is_reproducible_and_epochs_differ():
    first, second = class_balanced_sampler(_datalist(), 3, seed=3), class_balanced_sampler(_datalist(), 3, seed=3)
    epochs_first = [list(first) for _ in range(3)]
    assert epochs_first == [list(second) for _ in range(3)]
    assert epochs_first[0] != epochs_first[1]
    assert list(class_balanced_sampler(_datalist(), 3, seed=4)) != epochs_first[0]


def test_class_balance_modes():
    assert CLASS_BALANCE_MODES == ("none", "sampler", "loss_weights")
    assert class_balance("none", [], 3) == {"sampler": None, "shuffle": True, "loss_weight": None}
    sampled = class_balance("sampler", _datalist(), 3, seed=2)
    assert isinstance(sampled["sampler"], WeightedRandomSampler) and sampled["shuffle"] is False
    assert sampled["loss_weight"] is None
    # the parts fit a DataLoader as a config passes them
    loader = DataLoader(list(range(len(LABELS))), batch_size=5, sampler=sampled["sampler"], shuffle=sampled["shuffle"])
    assert sum(len(batch) for batch in loader) == len(LABELS)
    weighted = class_balance("loss_weights", _datalist(), 3)
    assert weighted["sampler"] is None and weighted["shuffle"] is True
    torch.testing.assert_close(weighted["loss_weight"], torch.tensor([1 / 3, 2 / 3, 2.0]))


def test_unknown_mode_lists_the_choices():
    with pytest.raises(ValueError, match=r"`class_balance` must be one of \('none', 'sampler', 'loss_weights'\), got 'oversample'"):
        class_balance("oversample", _datalist(), 3)


@pytest.mark.parametrize("mode", ["sampler", "loss_weights"])
def test_a_class_with_no_item_is_named(mode):
    with pytest.raises(ValueError, match=r"class 1 \('seborrheic_keratosis'\) has no item among the 3 .*counts \[2, 0, 1\]"):
        class_balance(mode, _datalist([0, 2, 0]), 3, class_names=["melanoma", "seborrheic_keratosis", "nevus"])
    with pytest.raises(ValueError, match=r"class 3, 4 has no item"):
        class_balance(mode, _datalist(), 5)


@pytest.mark.parametrize(
    ("items", "num_classes", "message"),
    [
        ([{"id": "a", "label": 3}], 3, r"item 0 \(id='a'\), label 'label' is 3, outside the classes 0..2"),
        ([{"id": "a", "label": [0.0, 1.0, 1.0]}], 3, r"3-element vector .*single-label"),
        ([{"id": "a", "label": 0.5}], 3, r"must be a class index 0..2, got 0.5"),
        ([{"id": "a", "label": "nevus"}], 3, r"must be a class index 0..2, got 'nevus'"),
        ([{"id": "a"}], 3, r"item 0 \(id='a'\) has no label key 'label'"),
        ([], 3, r"the datalist is empty"),
        ([{"label": 0}], 1, r"`num_classes` must be an integer of at least 2, got 1"),
    ],
)
def test_bad_labels_are_named(items, num_classes, message):
    with pytest.raises(ValueError, match=message):
        class_balance("loss_weights", items, num_classes)


def test_an_item_that_is_not_a_dict_is_a_type_error():
    with pytest.raises(TypeError, match="datalist item 1 must be a dict, got str"):
        class_labels([{"label": 0}, "img.png"], 2)
