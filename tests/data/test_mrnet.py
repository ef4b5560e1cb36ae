"""Tests for the MRNet datalist: layout, labels, validation and unreadable-file handling."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_ssl.data import (
    MRNET_PLANES,
    MRNET_SPLITS,
    MRNET_TASKS,
    mrnet_datalist,
    read_mrnet_labels,
    validate_volume_file,
)


def _fake_mrnet(root: Path, train_ids=(0, 1, 2, 3), valid_ids=(1130, 1131)) -> Path:
    """A tiny MRNet tree: (3, 8, 8) uint8 volumes in every plane, labels id % 2 for every task."""
    for split, ids in (("train", train_ids), ("valid", valid_ids)):
        for plane in MRNET_PLANES:
            folder = root / split / plane
            folder.mkdir(parents=True)
            for exam in ids:
                np.save(folder / f"{exam:04d}.npy", np.full((3, 8, 8), exam % 256, dtype=np.uint8))
        for task in MRNET_TASKS:
            (root / f"{split}-{task}.csv").write_text("".join(f"{e},{e % 2}\n" for e in ids))
    return root


def test_constants():
    assert MRNET_SPLITS == ("train", "valid")
    assert MRNET_PLANES == ("sagittal", "coronal", "axial")
    assert MRNET_TASKS == ("abnormal", "acl", "meniscus")


def test_unlabeled_datalist(tmp_path):
    root = _fake_mrnet(tmp_path / "MRNet-v1.0")
    (root / "train" / "sagittal" / "._0000.npy").write_bytes(b"macOS resource fork")  # hidden: ignored
    items = mrnet_datalist(root)
    assert [i["id"] for i in items] == ["0000", "0001", "0002", "0003"]
    assert all(set(i) == {"image", "id"} for i in items)
    assert all(Path(i["image"]).is_absolute() and Path(i["image"]).is_file() for i in items)
    assert items[2]["image"].endswith("train/sagittal/0002.npy")


def test_labeled_datalist_all_splits_planes_tasks(tmp_path):
    root = _fake_mrnet(tmp_path)
    for split in MRNET_SPLITS:
        for plane in MRNET_PLANES:
            for task in MRNET_TASKS:
                items = mrnet_datalist(root, split, plane, task)
                assert items and all(i["label"].tolist() == [float(int(i["id"]) % 2)] for i in items)
                assert all(i["label"].dtype == np.float32 and i["label"].shape == (1,) for i in items)
                assert f"/{split}/{plane}/" in items[0]["image"]
    assert [i["id"] for i in mrnet_datalist(root, "valid", "axial", "acl")] == ["1130", "1131"]


def test_ids_sorted_numerically(tmp_path):
    root = _fake_mrnet(tmp_path, train_ids=(10, 2, 100, 1))
    assert [i["id"] for i in mrnet_datalist(root, task="acl")] == ["0001", "0002", "0010", "0100"]


def test_label_collates_to_b_by_1(tmp_path):
    from monai.data import DataLoader, Dataset

    batch = next(iter(DataLoader(Dataset(mrnet_datalist(_fake_mrnet(tmp_path), task="acl")), batch_size=4)))
    assert tuple(batch["label"].shape) == (4, 1)
    assert batch["label"].dtype == torch.float32
    assert batch["label"][:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "test"}, "split 'test'.*train, valid"),
        ({"plane": "oblique"}, "plane 'oblique'.*sagittal, coronal, axial"),
        ({"task": "pcl"}, "task 'pcl'.*abnormal, acl, meniscus"),
    ],
)
def test_bad_names(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mrnet_datalist(_fake_mrnet(tmp_path), **kwargs)


def test_root_missing_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="root folder not found.*nowhere"):
        mrnet_datalist(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder.*file"):
        mrnet_datalist(tmp_path / "file")


def test_plane_folder_missing_names_layout(tmp_path):
    _fake_mrnet(tmp_path / "MRNet-v1.0")
    with pytest.raises(FileNotFoundError, match=r"train/sagittal.*expected the layout .*NNNN\.npy.*did you mean"):
        mrnet_datalist(tmp_path)


def test_empty_plane_folder(tmp_path):
    (tmp_path / "train" / "sagittal").mkdir(parents=True)
    with pytest.raises(ValueError, match="empty.*sagittal"):
        mrnet_datalist(tmp_path)


def test_label_csv_missing(tmp_path):
    root = _fake_mrnet(tmp_path)
    (root / "train-acl.csv").unlink()
    with pytest.raises(FileNotFoundError, match="train-acl.csv"):
        mrnet_datalist(root, task="acl")


@pytest.mark.parametrize("row", ["case,label", "3", "3,2", "3;1", "x,1", "3,1,0"])
def test_malformed_csv_row(tmp_path, row):
    root = _fake_mrnet(tmp_path)
    (root / "train-meniscus.csv").write_text(f"0,0\n1,1\n\n{row}\n")
    with pytest.raises(ValueError, match=rf"train-meniscus\.csv, line 4: malformed row '{row}'"):
        mrnet_datalist(root, task="meniscus")


def test_duplicate_csv_id(tmp_path):
    root = _fake_mrnet(tmp_path)
    (root / "train-acl.csv").write_text("0,0\n1,1\n2,0\n3,1\n1,0\n")
    with pytest.raises(ValueError, match=r"train-acl\.csv, line 5: ID 1 appears more than once"):
        mrnet_datalist(root, task="acl")


def test_read_mrnet_labels(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("0,0\n1130,1\n7 , 1.0\n")
    assert read_mrnet_labels(path) == {0: 0.0, 1130: 1.0, 7: 1.0}


def test_csv_ids_without_volume(tmp_path):
    root = _fake_mrnet(tmp_path)
    for exam in (0, 2):
        (root / "train" / "coronal" / f"{exam:04d}.npy").unlink()
    with pytest.raises(ValueError, match=r"2 ID\(s\) in .*train-acl\.csv have no volume in .*coronal: 0000, 0002"):
        mrnet_datalist(root, plane="coronal", task="acl")


def test_volumes_without_csv_row(tmp_path):
    root = _fake_mrnet(tmp_path)
    np.save(root / "train" / "axial" / "0099.npy", np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"1 volume\(s\) in .*axial have no row in .*train-abnormal\.csv: 0099"):
        mrnet_datalist(root, plane="axial", task="abnormal")
    assert len(mrnet_datalist(root, plane="axial")) == 5  # unlabeled use needs no CSV


def _break(folder: Path) -> None:
    """Make 0001 truncated and 0003 two-dimensional."""
    data = (folder / "0001.npy").read_bytes()
    (folder / "0001.npy").write_bytes(data[:-20])
    np.save(folder / "0003.npy", np.zeros((8, 8), np.uint8))


def test_unreadable_volume_raises_with_file_name(tmp_path):
    root = _fake_mrnet(tmp_path)
    _break(root / "train" / "sagittal")
    with pytest.raises(ValueError, match=r"0001\.npy: not a readable \.npy array.*1 more unreadable: 0003"):
        mrnet_datalist(root)
    assert len(mrnet_datalist(root, check_files=False)) == 4


def test_skip_unreadable_warns_once_with_count(tmp_path, caplog):
    root = _fake_mrnet(tmp_path)
    _break(root / "train" / "sagittal")
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        items = mrnet_datalist(root, task="acl", skip_unreadable=True)
    assert [i["id"] for i in items] == ["0000", "0002"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 2 of 4 unreadable volumes" in warnings[0].getMessage()
    assert "0001.npy" in warnings[0].getMessage() and "0003.npy" in warnings[0].getMessage()


def test_all_unreadable_raises_even_when_skipping(tmp_path):
    folder = tmp_path / "train" / "sagittal"
    folder.mkdir(parents=True)
    (folder / "0000.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="all 1 MRNet volumes.*unreadable"):
        mrnet_datalist(tmp_path, skip_unreadable=True)


def test_validate_volume_file(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, 8, 8), np.uint8))
    assert validate_volume_file(good) is None
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:-1])
    assert "not a readable .npy array" in validate_volume_file(truncated)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "not a readable .npy array" in validate_volume_file(pickled)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((8, 8)))
    assert "expected 3 dimensions" in validate_volume_file(flat)
    text = tmp_path / "text.npy"
    np.save(text, np.array([[["a"]]]))
    assert "numeric dtype" in validate_volume_file(text)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 8, 8), np.uint8))
    assert "empty array" in validate_volume_file(empty)
    assert "not a readable" in validate_volume_file(tmp_path / "missing.npy")
