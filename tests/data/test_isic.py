"""Tests for the ISIC 2017 / generic segmentation datalists and their checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.isic import segmentation_datalist, unlabeled_image_datalist

TRAIN_DATA, TRAIN_TRUTH = "ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"


def _image(path: Path, size: tuple[int, int] = (24, 18)) -> Path:
    """An RGB image of ``size`` (width, height) in the format of its suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 150, 130)).save(path)
    return path


def _mask(path: Path, size: tuple[int, int] = (24, 18)) -> Path:
    """A 0/255 mask of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0]), np.uint8)
    array[2:6, 3:9] = 255
    Image.fromarray(array).save(path)
    return path


def _isic_split(root: Path, data: str, truth: str | None, stems: list[str], size=(24, 18)) -> None:
    """One ISIC challenge split: images, superpixels, a metadata CSV and (unless ``truth`` is None) masks."""
    for stem in stems:
        _image(root / data / f"{stem}.jpg", size)
        _mask(root / data / f"{stem}_superpixels.png", size)
        if truth is not None:
            _mask(root / truth / f"{stem}_segmentation.png", size)
    (root / data / "ISIC-2017_Training_Data_metadata.csv").write_text("image_id,age_approximate,sex\n")


def _ids(items) -> list[str]:
    return [item["id"] for item in items]


# ------------------------------------------------------------------------------------------------- ISIC layout
def test_isic_layout_pairs_images_and_masks_and_ignores_superpixels(tmp_path):
    stems = ["ISIC_0000002", "ISIC_0000000", "ISIC_0000001"]
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, stems)
    items = segmentation_datalist(tmp_path, "train")
    assert _ids(items) == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    for item in items:
        assert set(item) == {"id", "image", "label"}
        assert item["image"] == str(tmp_path / TRAIN_DATA / f"{item['id']}.jpg")
        assert item["label"] == str(tmp_path / TRAIN_TRUTH / f"{item['id']}_segmentation.png")
        assert Path(item["image"]).is_absolute()


def test_isic_validation_and_both_test_folder_names(tmp_path):
    _isic_split(tmp_path / "v2", "ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth", ["ISIC_1"])
    _isic_split(tmp_path / "v2", "ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth", ["ISIC_2", "ISIC_3"])
    _isic_split(tmp_path / "v1", "ISIC-2017_Test_Data", "ISIC-2017_Test_Part1_GroundTruth", ["ISIC_4"])
    assert _ids(segmentation_datalist(tmp_path / "v2", "val")) == ["ISIC_1"]
    test = segmentation_datalist(tmp_path / "v2", "test")
    assert _ids(test) == ["ISIC_2", "ISIC_3"] and "Test_v2_Part1_GroundTruth" in test[0]["label"]
    assert _ids(segmentation_datalist(tmp_path / "v1", "test")) == ["ISIC_4"]


def test_isic_root_without_split_says_which_splits(tmp_path):
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000000"])
    with pytest.raises(ValueError, match=r"no images found in .*ISIC 2017 challenge layout: pass split='train'"):
        segmentation_datalist(tmp_path)


def test_isic_images_without_ground_truth_folder(tmp_path):
    _isic_split(tmp_path, "ISIC-2017_Test_v2_Data", None, ["ISIC_7", "ISIC_8"])
    with pytest.raises(FileNotFoundError, match=r"ground-truth folder not found: .*Test_v2_Part1_GroundTruth"):
        segmentation_datalist(tmp_path, "test")
    items = segmentation_datalist(tmp_path, "test", require_masks=False)
    assert items == [
        {"id": f"ISIC_{i}", "image": str(tmp_path / "ISIC-2017_Test_v2_Data" / f"ISIC_{i}.jpg")} for i in (7, 8)
    ]


# ---------------------------------------------------------------------------------------------- generic layouts
def test_generic_split_with_images_and_masks_folders(tmp_path):
    for stem in ("b", "a"):
        _image(tmp_path / "train" / "images" / f"{stem}.png")
        _mask(tmp_path / "train" / "masks" / f"{stem}.png")
    items = segmentation_datalist(tmp_path, "train", image_glob="*.png", mask_name="{stem}.png")
    assert items == [
        {"id": s, "image": str(tmp_path / "train" / "images" / f"{s}.png"),
         "label": str(tmp_path / "train" / "masks" / f"{s}.png")}
        for s in ("a", "b")
    ]


def test_generic_images_and_masks_directly_in_the_folder(tmp_path):
    _image(tmp_path / "images" / "lesion1.JPG")
    _mask(tmp_path / "masks" / "lesion1_mask.png")
    items = segmentation_datalist(tmp_path, image_glob="*.jpg", mask_name="{stem}_mask.png")  # case-insensitive glob
    assert _ids(items) == ["lesion1"] and items[0]["label"].endswith("masks/lesion1_mask.png")


def test_generic_side_by_side_skips_mask_files_as_images(tmp_path):
    for stem in ("x1", "x2"):
        _image(tmp_path / "val" / f"{stem}.png")
        _mask(tmp_path / "val" / f"{stem}_segmentation.png")
        _mask(tmp_path / "val" / f"{stem}_superpixels.png")
    items = segmentation_datalist(tmp_path, "val", image_glob="*.png")
    assert _ids(items) == ["x1", "x2"]
    assert items[1]["label"] == str(tmp_path / "val" / "x2_segmentation.png")


def test_unlabeled_listing_needs_no_masks(tmp_path):
    _image(tmp_path / "images" / "u1.jpg")
    _image(tmp_path / "images" / "u0.jpg")
    assert segmentation_datalist(tmp_path, image_glob="*.jpg", require_masks=False) == [
        {"id": s, "image": str(tmp_path / "images" / f"{s}.jpg")} for s in ("u0", "u1")
    ]
    with pytest.raises(FileNotFoundError, match=r"mask folder not found: .*masks"):
        segmentation_datalist(tmp_path, image_glob="*.jpg")


# ------------------------------------------------------------------------------------------------- bad inputs
def test_images_without_masks_are_listed_with_count_folder_and_expected_names(tmp_path):
    stems = [f"ISIC_{i:07d}" for i in range(9)]
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, stems)
    for stem in stems[2:]:
        (tmp_path / TRAIN_TRUTH / f"{stem}_segmentation.png").unlink()
    with pytest.raises(ValueError) as info:
        segmentation_datalist(tmp_path, "train")
    message = str(info.value)
    assert message.startswith(f"7 of 9 image(s) in {tmp_path / TRAIN_DATA} have no mask in {tmp_path / TRAIN_TRUTH}")
    assert "ISIC_0000002.jpg, ISIC_0000003.jpg, ISIC_0000004.jpg, ISIC_0000005.jpg, ISIC_0000006.jpg, ..." in message
    assert "ISIC_0000008.jpg" not in message
    assert "expected mask names: ISIC_0000002_segmentation.png" in message


def test_wrongly_named_masks_show_the_files_found(tmp_path):
    _image(tmp_path / "images" / "a.png")
    _mask(tmp_path / "masks" / "a_mask.png")
    with pytest.raises(ValueError, match=r"a\.png.*a_segmentation\.png.*no file there matches mask_name.*a_mask\.png"):
        segmentation_datalist(tmp_path, image_glob="*.png")


def test_mask_without_image(tmp_path):
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000000"])
    _mask(tmp_path / TRAIN_TRUTH / "ISIC_0000005_segmentation.png")
    with pytest.raises(ValueError, match=r"1 mask\(s\) in .*GroundTruth have no image in .*Training_Data.*"
                                         r"ISIC_0000005_segmentation\.png"):
        segmentation_datalist(tmp_path, "train")


def test_mask_of_another_size(tmp_path):
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000000", "ISIC_0000001"])
    _mask(tmp_path / TRAIN_TRUTH / "ISIC_0000001_segmentation.png", size=(12, 9))
    with pytest.raises(ValueError, match=r"1 mask\(s\) in .* differ in size .*ISIC_0000001_segmentation\.png is 12x9 "
                                         r"but ISIC_0000001\.jpg is 24x18"):
        segmentation_datalist(tmp_path, "train")
    assert len(segmentation_datalist(tmp_path, "train", check_sizes=False)) == 2


def test_unreadable_image_header_is_named(tmp_path):
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000000"])
    (tmp_path / TRAIN_DATA / "ISIC_0000000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"not a readable image: .*ISIC_0000000\.jpg"):
        segmentation_datalist(tmp_path, "train")


def test_min_size_names_the_file_and_the_minimum(tmp_path):
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000000"], size=(40, 30))
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000001"], size=(40, 12))
    with pytest.raises(ValueError, match=r"1 image\(s\) in .* shorter side below min_size=16 pixels: "
                                         r"ISIC_0000001\.jpg \(40x12\)"):
        segmentation_datalist(tmp_path, "train", min_size=16)
    with pytest.raises(ValueError, match="min_size=16"):
        segmentation_datalist(tmp_path, "train", require_masks=False, check_sizes=False, min_size=16)
    assert len(segmentation_datalist(tmp_path, "train", min_size=12)) == 2


def test_missing_folders_name_the_path_and_the_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"segmentation dataset folder not found: .*nowhere; accepted layouts"):
        segmentation_datalist(tmp_path / "nowhere", "train")
    (tmp_path / "data" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"split 'val' not found in .*data: no folder .*val and no "
                                                r"ISIC-2017_Validation_Data \(sub-folders there: train\); accepted"):
        segmentation_datalist(tmp_path / "data", "val")


def test_no_images_found(tmp_path):
    _mask(tmp_path / "train" / "notes.png")
    with pytest.raises(ValueError, match=r"no images found in .*train: no file matches image_glob='ISIC_\*\.jpg'"):
        segmentation_datalist(tmp_path, "train")


def test_two_images_with_one_id(tmp_path):
    _image(tmp_path / "images" / "a.jpg")
    _image(tmp_path / "images" / "a.png")
    with pytest.raises(ValueError, match=r"share the id 'a': a\.jpg and a\.png"):
        segmentation_datalist(tmp_path, image_glob="a.*", require_masks=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask_name": "mask.png"}, "mask_name must be a file name holding"),
        ({"mask_name": "{stem}_{x}.png"}, "no placeholder other than"),
        ({"image_glob": ""}, "image_glob must be a file name pattern"),
        ({"min_size": 0}, "min_size must be None or an integer >= 1"),
        ({"split": "a/b"}, "split must be a folder name"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    _isic_split(tmp_path, TRAIN_DATA, TRAIN_TRUTH, ["ISIC_0000000"])
    with pytest.raises(ValueError, match=match):
        segmentation_datalist(tmp_path, **{"split": "train", **kwargs})


# ------------------------------------------------------------------------------------------ extra unlabeled images
def test_unlabeled_image_folder_skips_masks_and_superpixels(tmp_path):
    folder = tmp_path / "ISIC-Archive"
    _isic_split(tmp_path, "ISIC-Archive", None, ["ISIC_0100001", "ISIC_0100000"])
    _mask(folder / "ISIC_0100000_segmentation.png")
    assert unlabeled_image_datalist(folder) == [
        {"id": s, "image": str(folder / f"{s}.jpg")} for s in ("ISIC_0100000", "ISIC_0100001")
    ]
    with pytest.raises(ValueError, match="no images found"):
        unlabeled_image_datalist(folder, image_glob="*.png")  # only superpixels and masks
    with pytest.raises(FileNotFoundError, match=r"unlabeled image folder not found: .*missing"):
        unlabeled_image_datalist(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"ISIC_0100000\.jpg \(24x18\)"):
        unlabeled_image_datalist(folder, min_size=20)
