"""Tests of the synthetic skin-lesion classification demo: round trip through the ISIC reader, looks, safety, speed."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.isic_classification import isic2017_classification_datalists
from monai_ssl.data.synthetic import DEMO_MARKER
from monai_ssl.data.synthetic_common import dataset_or_demo
from monai_ssl.data.synthetic_isic import ensure_isic_demo
from monai_ssl.data.synthetic_skin_lesion import ensure_skin_lesion_demo, is_skin_lesion_demo, make_skin_lesion_demo

SMALL = {"n_train_per_class": 3, "n_val_per_class": 1, "n_test_per_class": 2, "size": (48, 64), "seed": 3}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, float]:
    start = time.perf_counter()
    root = make_skin_lesion_demo(tmp_path_factory.mktemp("skin") / "demo", **SMALL)
    return root, time.perf_counter() - start


def test_round_trip_counts_labels_masks(demo):
    root, seconds = demo
    assert seconds < 2.0
    assert is_skin_lesion_demo(root)
    out = isic2017_classification_datalists(root)
    for split, per_class in (("train", 3), ("val", 1), ("test", 2)):
        labels = [i["label"] for i in out[split]]
        assert np.bincount(labels, minlength=3).tolist() == [per_class] * 3
        assert all(Path(i["mask"]).is_file() for i in out[split])
    ids = [i["id"] for s in ("train", "val", "test") for i in out[s]]
    assert ids == [f"ISIC_{n:07d}" for n in range(len(ids))]  # numbered through the splits
    with (root / "ISIC-2017_Validation_Part3_GroundTruth.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image_id", "melanoma", "seborrheic_keratosis"]
    expected = {"0": ["1.0", "0.0"], "1": ["0.0", "1.0"], "2": ["0.0", "0.0"]}
    assert [row[1:] for row in rows[1:]] == [expected[str(i["label"])] for i in out["val"]]


def test_images_rgb_masks_binary_and_lesion_darker_by_class(demo):
    root, _ = demo
    items = isic2017_classification_datalists(root)["train"]
    areas: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for item in items:
        image = np.asarray(Image.open(item["image"]))
        mask = np.asarray(Image.open(item["mask"]))
        assert image.shape == (48, 64, 3) and mask.shape == (48, 64)
        assert set(np.unique(mask).tolist()) == {0, 255}
        inside, outside = image[mask > 0].mean(), image[mask == 0].mean()
        assert inside < outside - 20  # the lesion is darker than the skin
        areas[item["label"]].append((mask > 0).mean())
    # melanoma largest, nevus smallest: the class shows in the image
    assert min(areas[0]) > max(areas[1]) and min(areas[1]) > max(areas[2])


def test_deterministic_and_seed_dependent(tmp_path, demo):
    root, _ = demo
    again = make_skin_lesion_demo(tmp_path / "again", **SMALL)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((root / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = make_skin_lesion_demo(tmp_path / "other", **{**SMALL, "seed": 4})
    name = "ISIC-2017_Training_Data/ISIC_0000000.jpg"
    assert (other / name).read_bytes() != (root / name).read_bytes()
    assert json.loads((root / DEMO_MARKER).read_text())["dataset"] == "isic2017_classification"


def test_ensure_reuses_and_refuses_foreign_folders(tmp_path, demo):
    root, _ = demo
    assert ensure_skin_lesion_demo(root, **SMALL) == root
    made = dataset_or_demo(tmp_path / "d", tmp_path / "d", ensure_skin_lesion_demo, **SMALL)
    assert is_skin_lesion_demo(made)
    real = tmp_path / "real"
    real.mkdir()
    (real / "photo.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="refusing to write demo files"):
        ensure_skin_lesion_demo(real)
    with pytest.raises(ValueError, match="another kind of demo"):
        ensure_isic_demo(root)
    with pytest.raises(FileExistsError):
        make_skin_lesion_demo(root, **SMALL)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_train_per_class": 0}, "n_train_per_class must be an integer >= 1"),
    ({"n_test_per_class": True}, "n_test_per_class must be an integer >= 1"),
    ({"size": (16, 64)}, r"size\[0\] \(height\) must be an integer >= 32"),
    ({"size": (64,)}, r"size must be \(height, width\)"),
    ({"seed": -1}, "seed must be an integer >= 0"),
])
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_skin_lesion_demo(tmp_path / "bad", **kwargs)
