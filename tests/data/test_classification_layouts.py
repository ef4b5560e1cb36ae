"""The dermoscopy bundle's one dataset reader: ISIC 2017, class folders and label CSVs, auto-detected, and label budgets."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data import LabelBudgetError, make_skin_lesion_demo
from monai_ssl.data.classification import task_labeled_split
from monai_ssl.data.classification_layouts import classification_layout, skin_lesion_datalists

ISIC_CLASSES = ["melanoma", "seborrheic_keratosis", "nevus"]


def _write_images(folder, ids):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(ids):
        Image.fromarray(np.full((32, 32, 3), 10 * i % 255, dtype=np.uint8)).save(folder / f"{name}.jpg")


def _multi_label_csv(root, n=18):
    """``n`` images; row i sets label_a when i % 3 == 0, label_b when i % 3 == 1, label_c when i % 2 == 0
    (so rows 0, 4, 6, ... set two labels)."""
    ids = [f"img{i:02d}" for i in range(n)]
    _write_images(root / "images", ids)
    lines = ["id,label_a,label_b,label_c"]
    lines += [f"{name},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 2 == 0)}" for i, name in enumerate(ids)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return ids


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_skin_lesion_demo(tmp_path_factory.mktemp("skin") / "isic", n_train_per_class=4, n_val_per_class=2,
                                 n_test_per_class=2, size=(48, 64))


def test_isic2017_layout_is_detected_and_keeps_the_challenge_splits_with_masks(demo):
    assert classification_layout(demo) == "isic2017"
    splits = skin_lesion_datalists(demo)
    assert splits["layout"] == "isic2017" and splits["multi_label"] is False
    assert splits["class_names"] == ISIC_CLASSES
    assert [len(splits[k]) for k in ("train", "val", "test")] == [12, 6, 6]
    assert all(item["mask"].endswith(f"{item['id']}_segmentation.png") for item in splits["test"])
    assert sorted(int(item["label"]) for item in splits["test"]) == [0, 0, 1, 1, 2, 2]


def test_isic2017_refuses_multi_label_true(demo):
    with pytest.raises(ValueError, match=r"`multi_label` is true but the 'isic2017' layout .* is single-label"):
        skin_lesion_datalists(demo, multi_label=True)


def test_class_folders_are_detected_and_split_per_class(tmp_path):
    for name in ("akiec", "bcc", "mel"):
        _write_images(tmp_path / name, [f"{name}_{i}" for i in range(10)])
    assert classification_layout(tmp_path) == "class_folders"
    splits = skin_lesion_datalists(tmp_path, val_fraction=0.2, test_fraction=0.2, split_seed=0)
    assert splits["layout"] == "class_folders" and splits["class_names"] == ["akiec", "bcc", "mel"]
    assert splits["multi_label"] is False
    for key, per_class in (("train", 6), ("val", 2), ("test", 2)):
        assert np.bincount([item["label"] for item in splits[key]], minlength=3).tolist() == [per_class] * 3
    ids = [{item["id"] for item in splits[k]} for k in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    again = skin_lesion_datalists(tmp_path, val_fraction=0.2, test_fraction=0.2, split_seed=0)
    assert [i["id"] for i in again["test"]] == [i["id"] for i in splits["test"]]
    with pytest.raises(ValueError, match="`multi_label` is true but the 'class_folders' layout"):
        skin_lesion_datalists(tmp_path, multi_label=True)


def test_multi_label_csv_is_detected_and_split_at_random(tmp_path):
    ids = _multi_label_csv(tmp_path)
    assert classification_layout(tmp_path, "labels.csv") == "csv"
    splits = skin_lesion_datalists(tmp_path, labels_csv="labels.csv", image_dir=tmp_path / "images")
    assert splits["layout"] == "csv" and splits["multi_label"] is True
    assert splits["class_names"] == ["label_a", "label_b", "label_c"]
    # 18 images: round(0.2 * 18) = 4 test, round(0.1 * 18) = 2 validation, 12 training
    assert [len(splits[k]) for k in ("train", "val", "test")] == [12, 2, 4]
    assert sorted(i["id"] for k in ("train", "val", "test") for i in splits[k]) == ids
    first = next(i for k in ("train", "val", "test") for i in splits[k] if i["id"] == "img00")
    assert first["label"].dtype == np.float32 and first["label"].tolist() == [1.0, 0.0, 1.0]
    # the same CSV read as single-label names the first row setting two classes
    with pytest.raises(ValueError, match="img00"):
        skin_lesion_datalists(tmp_path, labels_csv="labels.csv", image_dir=tmp_path / "images", multi_label=False)


def test_single_label_csv_with_absolute_path(tmp_path):
    ids = [f"x{i}" for i in range(18)]
    _write_images(tmp_path / "imgs", ids)
    rows = ["id,label"] + [f"{name},{['cyst', 'mole', 'wart'][i % 3]}" for i, name in enumerate(ids)]
    (tmp_path / "y.csv").write_text("\n".join(rows) + "\n")
    splits = skin_lesion_datalists(tmp_path / "imgs", layout="csv", labels_csv=str(tmp_path / "y.csv"))
    assert splits["multi_label"] is False and splits["class_names"] == ["cyst", "mole", "wart"]
    assert sum(len(splits[k]) for k in ("train", "val", "test")) == 18
    assert all(isinstance(i["label"], int) for i in splits["train"])


def test_layout_errors(tmp_path):
    with pytest.raises(ValueError, match=r"`layout` must be one of .*'csv'.*got 'dermofit'"):
        skin_lesion_datalists(tmp_path, layout="dermofit")
    with pytest.raises(ValueError, match="layout 'csv' needs `labels_csv`"):
        skin_lesion_datalists(tmp_path, layout="csv")
    with pytest.raises(ValueError, match="`multi_label` must be true, false or 'auto', got 'yes'"):
        skin_lesion_datalists(tmp_path, multi_label="yes")
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no known classification layout.*one folder per class.*`labels_csv`"):
        classification_layout(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"classification dataset folder not found: .*nowhere.*`dataset_dir`"):
        skin_lesion_datalists(tmp_path / "nowhere")


def _multi_items(n=10):
    return [{"id": f"i{k}", "label": np.array([k % 2, 1, 0], dtype=np.float32)} for k in range(n)]


def test_the_labeled_draw_of_multi_label_data_counts_and_seed_stability():
    """The skin bundle's labeled subset (``task_labeled_split``, shared with OCT) on multi-label items."""
    items = _multi_items(10)

    def labeled(**kwargs):
        return task_labeled_split(items, multi_label=True, **kwargs)[0]

    half = labeled(fraction=0.5, seed=3)
    assert len(half) == 5 and half == labeled(fraction=0.5, seed=3)
    assert [i["id"] for i in half] == sorted(i["id"] for i in half)
    assert len(labeled(fraction=0.01)) == 1  # at least one
    assert len(labeled(fraction=1.0)) == 10
    assert {i["id"] for i in labeled(fraction=0.3, seed=1)} <= {i["id"] for i in labeled(fraction=0.6, seed=1)}  # nested
    draws = {tuple(i["id"] for i in labeled(fraction=0.3, seed=s)) for s in range(6)}
    assert len(draws) > 1  # the seed chooses the draw
    with pytest.raises(ValueError, match="`labeled_per_class`.*needs single-label"):
        labeled(per_class=2)
    for bad in (0, 1.5, None, True):
        with pytest.raises(ValueError, match="labeled_fraction"):
            labeled(fraction=bad)


def test_the_labeled_draw_of_single_label_data_is_per_class():
    items = [{"id": f"s{k}", "label": k % 3} for k in range(12)]
    two = task_labeled_split(items, per_class=2, seed=0)[0]
    assert sorted(np.bincount([i["label"] for i in two]).tolist()) == [2, 2, 2]
    with pytest.raises(LabelBudgetError):
        task_labeled_split(items, per_class=5, seed=0)
