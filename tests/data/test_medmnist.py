"""Tests for the MedMNIST .npz datalist: the real BreastMNIST archive, label/image forms, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset

from monai_ssl.data.medmnist import medmnist_class_count, medmnist_datalist
from monai_ssl.transforms.image2d import LoadImage2Dd

BREASTMNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "breastmnist.npz"


def _npz(path: Path, n=(4, 2, 3), size=(6, 5), rgb=False, column=False, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        shape = (count, *size, 3) if rgb else (count, *size)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        labels = (np.arange(count) % 3).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None] if column else labels
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


@pytest.mark.skipif(not BREASTMNIST.is_file(), reason=f"{BREASTMNIST} not available")
def test_real_breastmnist():
    counts = {"train": 546, "val": 78, "test": 156}
    for split, count in counts.items():
        items = medmnist_datalist(BREASTMNIST, split)
        assert len(items) == count
        assert items[0]["id"] == f"{split}/00000" and items[-1]["id"] == f"{split}/{count - 1:05d}"
        assert items[0]["image"].shape == (28, 28) and items[0]["image"].dtype == np.uint8
        labels = np.array([int(i["label"]) for i in items])
        assert set(labels.tolist()) == {0, 1}
    assert medmnist_class_count(BREASTMNIST) == 2
    train = medmnist_datalist(BREASTMNIST, "train")
    assert sum(int(i["label"]) == 0 for i in train) == 147  # malignant
    loader = DataLoader(Dataset(train[:8], transform=LoadImage2Dd(keys="image")), batch_size=8)
    batch = next(iter(loader))
    assert batch["image"].shape == (8, 1, 28, 28) and batch["image"].dtype == torch.float32
    assert batch["label"].shape == (8,) and batch["label"].dtype == torch.int64
    assert float(batch["image"].max()) > 1.0  # intensities stay in 0..255


def test_flat_and_column_labels_and_rgb_images(tmp_path):
    flat = medmnist_datalist(_npz(tmp_path / "flat.npz"), "val")
    column = medmnist_datalist(_npz(tmp_path / "column.npz", column=True), "val")
    assert [int(i["label"]) for i in flat] == [int(i["label"]) for i in column] == [0, 1]
    for item in flat + column:
        assert item["label"].dtype == np.int64 and item["label"].shape == ()
    rgb = medmnist_datalist(_npz(tmp_path / "rgb.npz", rgb=True), "test")
    assert len(rgb) == 3 and rgb[0]["image"].shape == (6, 5, 3) and rgb[2]["id"] == "test/00002"
    assert LoadImage2Dd(channels=3)(rgb[0])["image"].shape == (3, 6, 5)
    assert medmnist_class_count(tmp_path / "rgb.npz") == 3


def test_missing_file_and_split(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MedMNIST archive not found: .*nothere\.npz"):
        medmnist_datalist(tmp_path / "nothere.npz")
    with pytest.raises(ValueError, match="unknown MedMNIST split 'valid'; expected one of train, val, test"):
        medmnist_datalist(_npz(tmp_path / "a.npz"), "valid")


def test_missing_keys_are_listed(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2))
    with pytest.raises(ValueError, match=r"other\.npz.*missing key\(s\) train_images, train_labels; "
                                         r"keys present: x_train, y_train"):
        medmnist_datalist(path)
    partial = _npz(tmp_path / "partial.npz", test_labels=None)
    assert len(medmnist_datalist(partial, "train")) == 4  # other splits are not needed
    with pytest.raises(ValueError, match=r"partial\.npz.*missing key\(s\) test_labels"):
        medmnist_datalist(partial, "test")
    with pytest.raises(ValueError, match="missing key"):
        medmnist_class_count(partial)


def test_not_an_archive(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.npz is not a readable \.npz archive"):
        medmnist_datalist(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(ValueError, match=r"single\.npz is not an \.npz archive"):
        medmnist_datalist(tmp_path / "single.npz")


def test_count_mismatch_and_bad_shapes(tmp_path):
    path = _npz(tmp_path / "m.npz", train_labels=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"m\.npz: train_images holds 4 images but train_labels holds 3 labels"):
        medmnist_datalist(path)
    path = _npz(tmp_path / "multi.npz", train_labels=np.zeros((4, 14), np.uint8))
    with pytest.raises(ValueError, match=r"multi\.npz: train_labels has shape \(4, 14\); expected \(N,\) or \(N, 1\)"):
        medmnist_datalist(path)
    with pytest.raises(ValueError, match=r"train_labels has shape \(4, 14\)"):
        medmnist_class_count(path)
    path = _npz(tmp_path / "neg.npz", train_labels=np.array([0, 1, -1, 2]))
    with pytest.raises(ValueError, match="not class indices"):
        medmnist_datalist(path)
    path = _npz(tmp_path / "img.npz", train_images=np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=r"train_images has shape \(4, 6\); expected \(N, H, W\) or \(N, H, W, 3\)"):
        medmnist_datalist(path)
