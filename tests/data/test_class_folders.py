"""Tests of the stratified train/validation/test split of a class-per-folder dataset (Dermofit's layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.class_folders import class_folder_datalists, stratified_splits
from monai_ssl.data.label_split import LabelBudgetError


def _tree(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (8, 8), (10 * i, 50, 90)).save(root / name / f"{name}_{i:02d}.png")
    return root


def test_counts_per_class_disjoint_and_seeded(tmp_path):
    root = _tree(tmp_path / "dermofit", {"bcc": 10, "mel": 20})
    out = class_folder_datalists(root, val_fraction=0.1, test_fraction=0.2, seed=5)
    assert out["class_names"] == ["bcc", "mel"]
    # test: round(0.2 * n) -> 2 and 4; val: round(0.125 * 8) = 1 and round(0.125 * 16) = 2
    assert np.bincount([int(i["label"]) for i in out["test"]]).tolist() == [2, 4]
    assert np.bincount([int(i["label"]) for i in out["val"]]).tolist() == [1, 2]
    assert np.bincount([int(i["label"]) for i in out["train"]]).tolist() == [7, 14]
    ids = [i["id"] for s in ("train", "val", "test") for i in out[s]]
    assert len(ids) == len(set(ids)) == 30
    again = class_folder_datalists(root, val_fraction=0.1, test_fraction=0.2, seed=5)
    assert [i["id"] for i in again["test"]] == [i["id"] for i in out["test"]]
    other = class_folder_datalists(root, val_fraction=0.1, test_fraction=0.2, seed=6)
    assert [i["id"] for i in other["test"]] != [i["id"] for i in out["test"]]


def test_too_small_class_is_a_label_budget_error(tmp_path):
    root = _tree(tmp_path / "d", {"a": 10, "b": 2})
    with pytest.raises(LabelBudgetError, match="class 1 \\(2 items\\)"):
        class_folder_datalists(root, test_fraction=0.2)


@pytest.mark.parametrize("val, test, message", [
    (0.0, 0.2, "val_fraction must be a number in \\(0, 1\\)"),
    (0.1, 1.0, "test_fraction must be a number in \\(0, 1\\)"),
    (0.5, 0.5, "must be below 1"),
])
def test_bad_fractions(val, test, message):
    items = [{"id": str(i), "label": i % 2} for i in range(20)]
    with pytest.raises(ValueError, match=message):
        stratified_splits(items, val, test)
