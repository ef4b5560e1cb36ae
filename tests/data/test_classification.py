"""The label-CSV side of the classification bundles: splits, labeled subsets and threshold items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.classification import classification_splits, evaluation_datalist, task_labeled_split

NAMES = [f"img{i:02d}" for i in range(12)]


def _dataset(tmp_path: Path, multi: bool = True) -> tuple[Path, Path]:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in NAMES:
        Image.new("L", (8, 8), 100).save(folder / f"{name}.png")
    if multi:  # label a on even rows, b on every third, c on rows 1, 5, 9: several labels per row
        rows = [f"{n},{int(i % 2 == 0)},{int(i % 3 == 0)},{int(i % 4 == 1)}" for i, n in enumerate(NAMES)]
        header = "id,a,b,c"
    else:
        rows = [f"{n},{'xy'[i % 2]}" for i, n in enumerate(NAMES)]
        header = "id,label"
    csv = tmp_path / "labels.csv"
    csv.write_text("\n".join([header] + rows) + "\n")
    return csv, folder


def test_multi_label_csv_hold_out(tmp_path):
    csv, folder = _dataset(tmp_path)
    splits = classification_splits(tmp_path, labels_csv=csv, image_dir=folder, val_fraction=0.25, val_seed=3)
    assert splits["multi_label"] is True and splits["class_names"] == ["a", "b", "c"]
    assert (len(splits["train"]), len(splits["val"])) == (9, 3)
    assert not {i["id"] for i in splits["train"]} & {i["id"] for i in splits["val"]}
    label = splits["train"][0]["label"]
    assert isinstance(label, np.ndarray) and label.dtype == np.float32 and label.shape == (3,)
    again = classification_splits(tmp_path, labels_csv=csv, image_dir=folder, val_fraction=0.25, val_seed=3)
    assert [i["id"] for i in again["val"]] == [i["id"] for i in splits["val"]]  # seeded
    assert "0.25 hold-out" in splits["val_source"]


def test_single_label_csv_is_stratified_and_settings_are_checked(tmp_path):
    csv, folder = _dataset(tmp_path, multi=False)
    splits = classification_splits(tmp_path, labels_csv=csv, image_dir=folder, val_fraction=1 / 3)
    assert splits["multi_label"] is False and splits["class_names"] == ["x", "y"]
    assert sorted(i["label"] for i in splits["val"]) == [0, 0, 1, 1]  # 2 of the 6 per class
    with pytest.raises(ValueError, match="multi_label=True needs one 0/1 column per class"):
        classification_splits(tmp_path, labels_csv=csv, image_dir=folder, multi_label=True)
    with pytest.raises(ValueError, match="`multi_label` is true but the dataset is read from class folders"):
        classification_splits(tmp_path, multi_label=True)
    with pytest.raises(ValueError, match="`multi_label` must be"):
        classification_splits(tmp_path, labels_csv=csv, image_dir=folder, multi_label="maybe")
    with pytest.raises(ValueError, match="val_fraction"):
        classification_splits(tmp_path, labels_csv=csv, image_dir=folder, val_fraction=1.0)


def test_val_labels_csv(tmp_path):
    csv, folder = _dataset(tmp_path)
    val_csv = tmp_path / "val.csv"
    val_csv.write_text("id,c,a,b\nimg00,1,0,1\nimg01,0,1,0\n")  # columns in another order: labels follow the model
    splits = classification_splits(tmp_path, labels_csv=csv, image_dir=folder, val_labels_csv=val_csv)
    assert len(splits["train"]) == 12 and [i["label"].tolist() for i in splits["val"]] == [[0, 1, 1], [1, 0, 0]]


def test_task_labeled_split(tmp_path):
    csv, folder = _dataset(tmp_path)
    items = classification_splits(tmp_path, labels_csv=csv, image_dir=folder, val_fraction=0.25)["train"]
    labeled, rest = task_labeled_split(items, fraction=1 / 3, seed=0, multi_label=True)
    assert (len(labeled), len(rest)) == (3, 6) and not {i["id"] for i in labeled} & {i["id"] for i in rest}
    with pytest.raises(ValueError, match="`labeled_per_class`"):
        task_labeled_split(items, per_class=2, multi_label=True)
    single = [{"id": f"s{i}", "label": i % 2} for i in range(8)]
    labeled, rest = task_labeled_split(single, per_class=1, seed=0)
    assert sorted(i["label"] for i in labeled) == [0, 1] and len(rest) == 6


def test_evaluation_datalist_reads_a_split_or_a_label_csv_in_the_model_s_order(tmp_path):
    csv, folder = _dataset(tmp_path)
    items, names = evaluation_datalist(tmp_path, "test", ["c", "a", "b"], labels_csv=csv, image_dir=folder, multi_label=True)
    by_column = {i["id"]: i["label"].tolist() for i in items}
    rows = [line.split(",") for line in csv.read_text().splitlines()]
    header, first = rows[0], rows[1]
    expected = [float(first[header.index(n)]) for n in ("c", "a", "b")]
    assert names == ["c", "a", "b"] and by_column[first[0]] == expected  # labels follow the model's order
    with pytest.raises(ValueError):
        evaluation_datalist(tmp_path, "test", ["a", "b", "d"], labels_csv=csv, image_dir=folder, multi_label=True)
