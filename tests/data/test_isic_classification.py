"""Tests of the ISIC 2017 Part 3 reader on challenge-layout trees written in the test."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from monai_ssl.data.isic_classification import ISIC_CLASSES, isic2017_classification_datalists, isic_part3_csv_name
from monai_ssl.data.splits import SplitOverlapError

HEADER = "image_id,melanoma,seborrheic_keratosis\n"
SPLITS = {"train": "Training", "val": "Validation", "test": "Test_v2"}


def _split(root: Path, name: str, rows: dict[str, tuple[str, str]], masks: bool = True,
           extra_images: tuple[str, ...] = ()) -> None:
    data = root / f"ISIC-2017_{name}_Data"
    data.mkdir(parents=True)
    for stem in [*rows, *extra_images]:
        Image.new("RGB", (8, 6), (150, 100, 80)).save(data / f"{stem}.jpg")
        Image.new("RGB", (8, 6)).save(data / f"{stem}_superpixels.png")
        if masks:
            folder = root / f"ISIC-2017_{name}_Part1_GroundTruth"
            folder.mkdir(exist_ok=True)
            Image.new("L", (8, 6)).save(folder / f"{stem}_segmentation.png")
    body = "".join(f"{stem},{m},{k}\n" for stem, (m, k) in rows.items())
    (root / f"ISIC-2017_{name}_Part3_GroundTruth.csv").write_text(HEADER + body, encoding="utf-8")


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0"), "ISIC_0000002": ("0.0", "1.0"),
                                  "ISIC_0000003": ("0.0", "0.0"), "ISIC_0000004": ("0", "0")})
    _split(tmp_path, "Validation", {"ISIC_0000010": ("0.0", "1.0")}, masks=False)
    _split(tmp_path, "Test_v2", {"ISIC_0000020": ("1.0", "0.0"), "ISIC_0000021": ("0.0", "0.0")})
    return tmp_path


def test_csv_name():
    assert isic_part3_csv_name("ISIC-2017_Test_v2_Data") == "ISIC-2017_Test_v2_Part3_GroundTruth.csv"


def test_reads_three_splits_with_labels_and_masks(root):
    out = isic2017_classification_datalists(root)
    assert out["class_names"] == list(ISIC_CLASSES) == ["melanoma", "seborrheic_keratosis", "nevus"]
    assert [(i["id"], i["label"]) for i in out["train"]] == [
        ("ISIC_0000001", 0), ("ISIC_0000002", 1), ("ISIC_0000003", 2), ("ISIC_0000004", 2)]
    assert [(i["id"], i["label"]) for i in out["val"]] == [("ISIC_0000010", 1)]
    assert [(i["id"], i["label"]) for i in out["test"]] == [("ISIC_0000020", 0), ("ISIC_0000021", 2)]
    first = out["train"][0]
    assert first["image"] == str(root / "ISIC-2017_Training_Data" / "ISIC_0000001.jpg")
    assert first["mask"] == str(root / "ISIC-2017_Training_Part1_GroundTruth" / "ISIC_0000001_segmentation.png")
    assert all("mask" in i for i in out["train"] + out["test"])
    assert "mask" not in out["val"][0]  # no Part 1 folder for this split


def test_old_test_folder_name_and_csv_inside_data_folder(tmp_path):
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0")})
    _split(tmp_path, "Validation", {"ISIC_0000002": ("0.0", "0.0")})
    _split(tmp_path, "Test", {"ISIC_0000003": ("0.0", "1.0")})
    csv_path = tmp_path / "ISIC-2017_Test_Part3_GroundTruth.csv"
    csv_path.rename(tmp_path / "ISIC-2017_Test_Data" / csv_path.name)
    out = isic2017_classification_datalists(tmp_path)
    assert [(i["id"], i["label"]) for i in out["test"]] == [("ISIC_0000003", 1)]


def test_both_classes_set_names_file_and_row(tmp_path):
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0"), "ISIC_0000002": ("1.0", "1.0")})
    with pytest.raises(ValueError, match=r"ISIC-2017_Training_Part3_GroundTruth\.csv, row 3 \(image_id "
                                         r"'ISIC_0000002'\): both melanoma and seborrheic_keratosis are 1"):
        isic2017_classification_datalists(tmp_path)


def test_wrong_columns_named(tmp_path):
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0")})
    path = tmp_path / "ISIC-2017_Training_Part3_GroundTruth.csv"
    path.write_text("image_id,melanoma,nevus\nISIC_0000001,1,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"Training_Part3_GroundTruth\.csv: the columns are \['image_id', 'melanoma', "
                                         r"'nevus'\]; expected \['image_id', 'melanoma', 'seborrheic_keratosis'\]"):
        isic2017_classification_datalists(tmp_path)


def test_empty_cell_named(tmp_path):
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "")})
    with pytest.raises(ValueError, match=r"row 2 \(id 'ISIC_0000001'\): the cell of column 'seborrheic_keratosis'"):
        isic2017_classification_datalists(tmp_path)


def test_missing_images_counted_and_skipped(root, caplog):
    (root / "ISIC-2017_Training_Data" / "ISIC_0000002.jpg").unlink()
    (root / "ISIC-2017_Training_Data" / "ISIC_0000004.jpg").unlink()
    with pytest.raises(ValueError, match=r"2 of 4 image\(s\) listed in .*Training_Part3_GroundTruth\.csv are missing"
                                         r" from .*ISIC-2017_Training_Data: ISIC_0000002, ISIC_0000004"):
        isic2017_classification_datalists(root)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        out = isic2017_classification_datalists(root, skip_missing=True)
    assert [i["id"] for i in out["train"]] == ["ISIC_0000001", "ISIC_0000003"]
    assert "skipped 2 of 4 image(s)" in caplog.text


def test_unlisted_images_reported_superpixels_ignored(tmp_path, caplog):
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0")}, extra_images=("ISIC_0000009",))
    _split(tmp_path, "Validation", {"ISIC_0000002": ("0.0", "0.0")})
    _split(tmp_path, "Test_v2", {"ISIC_0000003": ("0.0", "1.0")})
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        out = isic2017_classification_datalists(tmp_path)
    assert [i["id"] for i in out["train"]] == ["ISIC_0000001"]
    assert "1 image(s) in" in caplog.text and "ISIC_0000009.jpg" in caplog.text
    assert "superpixels" not in caplog.text


def test_missing_folder_and_csv_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ISIC 2017 dataset folder not found"):
        isic2017_classification_datalists(tmp_path / "nothing")
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0")})
    with pytest.raises(FileNotFoundError, match=r"split 'val' not found: expected .*ISIC-2017_Validation_Data"):
        isic2017_classification_datalists(tmp_path)
    (tmp_path / "ISIC-2017_Training_Part3_GroundTruth.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"Part 3 ground truth of split 'train' not found: expected "
                                                r".*ISIC-2017_Training_Part3_GroundTruth\.csv"):
        isic2017_classification_datalists(tmp_path)


def test_id_in_two_splits_refused(tmp_path):
    _split(tmp_path, "Training", {"ISIC_0000001": ("1.0", "0.0")})
    _split(tmp_path, "Validation", {"ISIC_0000002": ("0.0", "0.0")})
    _split(tmp_path, "Test_v2", {"ISIC_0000001": ("1.0", "0.0")})
    with pytest.raises(SplitOverlapError, match="'train'.*'test'"):
        isic2017_classification_datalists(tmp_path)
