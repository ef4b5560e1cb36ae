"""Tests for MRNet's multi-label tasks: ``task="all"`` or a list of findings, labels and splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_ssl.data import (
    MRNET_PLANES,
    mrnet_class_names,
    mrnet_datalist,
    mrnet_findings,
    mrnet_multi_label,
    mrnet_splits,
)
from monai_ssl.data.mrnet_splits import multi_label_hold_out

# hand-made labels of 10 exams: abnormal, acl, meniscus
LABELS = {
    "abnormal": [0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
    "acl": [0, 0, 0, 0, 0, 1, 1, 1, 1, 0],
    "meniscus": [0, 0, 0, 1, 1, 0, 0, 1, 1, 1],
}
# combinations: 000 x3 (exams 0-2), 101 x2 (3, 4), 110 x2 (5, 6), 111 x2 (7, 8), 101 -> exam 9 is a third 101


def _mrnet(root: Path, n_valid: int = 2) -> Path:
    """10 train exams with LABELS, ``n_valid`` valid exams labeled 1 for every finding; (3, 8, 8) volumes."""
    for split, ids in (("train", range(10)), ("valid", range(1130, 1130 + n_valid))):
        for plane in MRNET_PLANES:
            folder = root / split / plane
            folder.mkdir(parents=True)
            for exam in ids:
                np.save(folder / f"{exam:04d}.npy", np.zeros((3, 8, 8), np.uint8))
        for finding, values in LABELS.items():
            rows = values if split == "train" else [1] * n_valid
            (root / f"{split}-{finding}.csv").write_text("".join(f"{e},{v}\n" for e, v in zip(ids, rows)))
    return root


def test_findings_of_a_task():
    assert mrnet_findings("acl") == ("acl",)
    assert mrnet_findings("all") == ("abnormal", "acl", "meniscus")
    assert mrnet_findings(["meniscus", "acl"]) == ("meniscus", "acl")  # the given order is the label order
    assert [mrnet_multi_label(t) for t in ("acl", "all", ["acl"], ("acl", "meniscus"))] == [False, True, True, True]
    assert mrnet_class_names("meniscus") == ["negative", "meniscus"]  # as before: one binary finding
    assert mrnet_class_names("all") == ["abnormal", "acl", "meniscus"]
    assert mrnet_class_names(["acl", "abnormal"]) == ["acl", "abnormal"]


@pytest.mark.parametrize(
    "task, match",
    [
        ("pcl", r"unknown MRNet task 'pcl' \(setting 'task'\); expected one of abnormal, acl, meniscus, 'all'"),
        (["acl", "pcl"], r"unknown MRNet finding\(s\) \['pcl'\].*expected one of abnormal, acl, meniscus"),
        (["acl", "acl"], "names a finding more than once"),
        ([], "non-empty list"),
        (3, "must be a finding name or a non-empty list, got 3"),
    ],
)
def test_bad_task_names_the_three_findings(tmp_path, task, match):
    with pytest.raises(ValueError, match=match):
        mrnet_findings(task)
    with pytest.raises(ValueError, match=match):
        mrnet_datalist(_mrnet(tmp_path), task=task)


def test_multi_hot_labels_hand_made(tmp_path):
    items = mrnet_datalist(_mrnet(tmp_path), task="all")
    assert [i["id"] for i in items] == [f"{e:04d}" for e in range(10)]
    assert all(i["label"].dtype == np.float32 and i["label"].shape == (3,) for i in items)
    assert items[0]["label"].tolist() == [0.0, 0.0, 0.0]
    assert items[3]["label"].tolist() == [1.0, 0.0, 1.0]
    assert items[5]["label"].tolist() == [1.0, 1.0, 0.0]
    assert items[7]["label"].tolist() == [1.0, 1.0, 1.0]
    pair = mrnet_datalist(tmp_path, task=["meniscus", "acl"])  # columns follow the task's order
    assert pair[5]["label"].tolist() == [0.0, 1.0] and pair[3]["label"].tolist() == [1.0, 0.0]
    single = mrnet_datalist(tmp_path, task="acl")  # a single finding is unchanged: shape (1,)
    assert single[5]["label"].tolist() == [1.0] and single[5]["label"].shape == (1,)


def test_multi_hot_labels_collate_to_b_by_k(tmp_path):
    from monai.data import DataLoader, Dataset

    batch = next(iter(DataLoader(Dataset(mrnet_datalist(_mrnet(tmp_path), task="all")), batch_size=4, shuffle=False)))
    assert tuple(batch["label"].shape) == (4, 3) and batch["label"].dtype == torch.float32
    assert batch["label"][3].tolist() == [1.0, 0.0, 1.0]


def test_every_finding_csv_is_checked(tmp_path):
    root = _mrnet(tmp_path)
    (root / "train-meniscus.csv").unlink()
    with pytest.raises(FileNotFoundError, match="train-meniscus.csv"):
        mrnet_datalist(root, task="all")
    assert len(mrnet_datalist(root, task=["abnormal", "acl"])) == 10
    (root / "train-acl.csv").write_text("".join(f"{e},0\n" for e in range(9)))  # exam 9 has no acl row
    with pytest.raises(ValueError, match=r"1 volume\(s\) in .* have no row in .*train-acl\.csv: 0009"):
        mrnet_datalist(root, task=["abnormal", "acl"])


def test_hold_out_stratified_on_label_combinations(tmp_path):
    items = mrnet_datalist(_mrnet(tmp_path), task="all")
    # val_fraction 0.5: combinations 000 (3 exams) -> round(1.5) = 2, 101 (3 exams: 3, 4, 9) -> 2,
    # 110 (2) -> 1, 111 (2) -> 1; 6 held out, 4 left to train on
    val, train = multi_label_hold_out(items, 0.5, seed=0)
    assert len(val) == 6 and len(train) == 4
    assert {i["id"] for i in val}.isdisjoint(i["id"] for i in train)
    combos = sorted(tuple(i["label"].astype(int).tolist()) for i in val)
    assert combos.count((0, 0, 0)) == 2 and combos.count((1, 0, 1)) == 2
    assert combos.count((1, 1, 0)) == 1 and combos.count((1, 1, 1)) == 1
    assert multi_label_hold_out(items, 0.5, seed=0) == (val, train)  # seeded


def test_single_exam_combination_stays_in_train(tmp_path):
    items = mrnet_datalist(_mrnet(tmp_path), task="all")
    items[9] = {**items[9], "label": np.array([0, 1, 1], np.float32)}  # the only 011 exam
    val, train = multi_label_hold_out(items, 0.1, seed=3)
    assert "0009" in [i["id"] for i in train]
    assert len(val) == 4  # one of each combination with two exams or more: 000, 101, 110, 111


def test_hold_out_errors(tmp_path):
    items = mrnet_datalist(_mrnet(tmp_path), task="all")
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \(0, 1\), got 1.5"):
        multi_label_hold_out(items, 1.5, seed=0)
    unique = [{**item, "label": np.array([int(b) for b in f"{k:03b}"], np.float32)} for k, item in enumerate(items[:8])]
    with pytest.raises(ValueError, match="no label combination of the 8 training exams occurs twice"):
        multi_label_hold_out(unique, 0.5, seed=0)


def test_mrnet_splits_for_all_findings(tmp_path):
    root = _mrnet(tmp_path, n_valid=3)
    splits = mrnet_splits(root, task="all", val_fraction=0.5, val_seed=0)
    assert len(splits["val"]) == 6 and len(splits["train"]) == 4 and len(splits["test"]) == 3
    assert all(i["label"].shape == (3,) for part in splits.values() for i in part)
    assert [i["label"].tolist() for i in splits["test"]] == [[1.0, 1.0, 1.0]] * 3
    again = mrnet_splits(root, task="all", val_fraction=0.5, val_seed=0)
    assert {k: [i["id"] for i in v] for k, v in again.items()} == {k: [i["id"] for i in v] for k, v in splits.items()}
    single = mrnet_splits(root, task="acl", val_fraction=0.5, val_seed=0)  # the binary path is unchanged
    assert all(i["label"].shape == (1,) for part in single.values() for i in part)
