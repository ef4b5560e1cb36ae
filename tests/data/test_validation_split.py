"""Tests for train_val_datalists: the dataset's val split, or a seeded stratified hold-out; never the test split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data import check_selection_split, has_split, train_val_datalists


def _folder(root: Path, splits: dict[str, int], classes=("A", "B")) -> Path:
    for split, n in splits.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(root / split / name / f"{split}-{name}-{i}.png")
    return root


def _npz(path: Path) -> Path:
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.zeros((10, 4, 4), np.uint8)
        arrays[f"{split}_labels"] = np.arange(10) % 2
    np.savez(path, **arrays)
    return path


def _ids(items):
    return {str(x["id"]) for x in items}


def test_uses_the_datasets_val_split_when_there_is_one(tmp_path):
    root = _folder(tmp_path / "data", {"train": 5, "val": 2, "test": 2})
    out = train_val_datalists(root)
    assert len(out["train"]) == 10 and len(out["val"]) == 4
    assert all("val-" in x["image"] for x in out["val"]) and out["class_names"] == ["A", "B"]
    assert "'val' split" in out["val_source"]


def test_holds_out_a_seeded_stratified_share_of_train_without_a_val_split(tmp_path, caplog):
    root = _folder(tmp_path / "data", {"train": 10, "test": 2})
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        out = train_val_datalists(root, val_fraction=0.2, val_seed=3)
    assert [int(x["label"]) for x in out["val"]].count(0) == 2 and len(out["val"]) == 4  # 20% of each class
    assert len(out["train"]) == 16 and not _ids(out["train"]) & _ids(out["val"])  # disjoint by construction
    assert _ids(train_val_datalists(root, val_fraction=0.2, val_seed=3)["val"]) == _ids(out["val"])  # reproducible
    assert _ids(train_val_datalists(root, val_fraction=0.2, val_seed=4)["val"]) != _ids(out["val"])
    assert "hold-out" in out["val_source"] and any("no 'val' split" in r.message for r in caplog.records)


def test_medmnist_val_arrays(tmp_path):
    full = _npz(tmp_path / "full.npz")
    assert has_split(full, "val") and not has_split(full, "validation")
    out = train_val_datalists(full)
    assert all(x["id"].startswith("val/") for x in out["val"]) and len(out["val"]) == 10 and len(out["train"]) == 10


def test_validating_on_the_reported_split_is_an_error_unless_forced(tmp_path, caplog):
    root = _folder(tmp_path / "data", {"train": 3, "test": 2})
    with pytest.raises(ValueError, match="val_split 'test' is the split that evaluate.json reports on"):
        train_val_datalists(root, val_split="test")
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        out = train_val_datalists(root, val_split="test", allow_val_on_eval_split=True)
    assert len(out["val"]) == 4 and any("optimistic" in r.message for r in caplog.records)
    check_selection_split("val", "test")  # different splits: fine
    check_selection_split(None, "test")


def test_bad_fraction_and_too_small_classes(tmp_path):
    root = _folder(tmp_path / "data", {"train": 3})
    for bad in (0, 1, 1.5, True):
        with pytest.raises(ValueError, match="val_fraction must be a number in"):
            train_val_datalists(root, val_fraction=bad)
    with pytest.raises(ValueError, match="cannot hold out val_fraction=0.1 of 'train'.*class 0"):
        train_val_datalists(root, val_fraction=0.1)  # 10% of 3 images rounds to none
