"""Tests for the training/validation lists of a segmentation dataset (model selection never on the test split)."""

from __future__ import annotations

import logging

import pytest

from monai_ssl.data import make_isic_demo, segmentation_splits, split_labeled_pool


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_isic_demo(tmp_path_factory.mktemp("isic") / "demo", n_train=10, n_val=3, n_test=2,
                          height=(40, 48), width=(48, 56))


def _ids(items):
    return [item["id"] for item in items]


def test_the_datasets_own_validation_split_is_used(demo):
    splits = segmentation_splits(demo)
    assert len(splits["train"]) == 10 and len(splits["val"]) == 3
    assert not set(_ids(splits["train"])) & set(_ids(splits["val"]))
    assert all("label" in item for item in splits["val"])


def test_without_a_validation_split_a_seeded_share_is_held_out(demo, caplog):
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        first = segmentation_splits(demo, val_split="missing", val_fraction=0.2, val_seed=3)
    assert "holding out 20%" in caplog.text
    assert len(first["val"]) == 2 and len(first["train"]) == 8
    assert not set(_ids(first["train"])) & set(_ids(first["val"]))
    assert segmentation_splits(demo, val_split=None, val_fraction=0.2, val_seed=3) == first  # the same every run
    other = segmentation_splits(demo, val_split=None, val_fraction=0.2, val_seed=4)
    assert _ids(other["val"]) != _ids(first["val"])
    # the labeled subset is drawn from what is left, never from the held-out images
    labeled, pool = split_labeled_pool(first["train"], 0.5, seed=0)
    assert not (set(_ids(labeled)) | set(_ids(pool))) & set(_ids(first["val"]))


def test_validating_on_the_reported_split_is_refused(demo):
    with pytest.raises(ValueError, match="test"):
        segmentation_splits(demo, val_split="test", eval_split="test")
    assert len(segmentation_splits(demo, val_split="test", eval_split="test", allow_val_on_eval_split=True)["val"]) == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_a_hold_out_fraction_outside_0_1_is_refused(demo, fraction):
    with pytest.raises(ValueError, match="val_fraction must be in"):
        segmentation_splits(demo, val_split=None, val_fraction=fraction)
