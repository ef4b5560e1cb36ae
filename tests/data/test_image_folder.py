"""Tests for image_folder_datalist: OCT2017-style class folders, class order, file checks, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file
from torch.utils.data import default_collate

from monai_ssl.data.image_folder import image_folder_datalist, validate_image_file

CT_SMALL = get_testdata_file("CT_small.dcm")


def _image(path: Path, size: tuple[int, int] = (12, 10), value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".dcm":
        path.write_bytes(Path(CT_SMALL).read_bytes())
    else:
        Image.fromarray(np.full(size, value, np.uint8)).save(path, format="PNG" if suffix == ".png" else "JPEG")
    return path


def _oct(root: Path, split: str = "train", classes=("CNV", "DME", "DRUSEN", "NORMAL"), n: int = 2) -> Path:
    for name in classes:
        for i in range(n):
            _image(root / split / name / f"{name}-{i}.jpeg")
    return root


def test_oct_layout_items_labels_and_class_names(tmp_path):
    root = _oct(tmp_path / "OCT2017")
    _image(root / "train" / "DME" / "extra.png")
    _image(root / "train" / "NORMAL" / "scan.DCM")
    (root / "train" / "CNV" / "notes.txt").write_text("not an image")
    (root / "train" / "CNV" / ".hidden.jpeg").write_bytes(b"")
    (root / "train" / ".cache").mkdir()
    items, names = image_folder_datalist(root, "train")
    assert names == ["CNV", "DME", "DRUSEN", "NORMAL"]
    ids = [item["id"] for item in items]
    assert ids == sorted(ids) and len(ids) == 10
    assert "DME/extra.png" in ids and "NORMAL/scan.DCM" in ids and "CNV/notes.txt" not in ids
    for item in items:
        assert Path(item["image"]).is_absolute() and Path(item["image"]).is_file()
        assert item["id"] == f"{Path(item['image']).parent.name}/{Path(item['image']).name}"
        assert item["label"].dtype == np.int64 and item["label"].shape == ()
        assert names[int(item["label"])] == item["id"].split("/")[0]
    batch = default_collate([item["label"] for item in items[:4]])
    assert batch.dtype == torch.int64 and batch.shape == (4,)


def test_class_names_fix_the_order_and_other_folders_are_ignored(tmp_path, caplog):
    root = _oct(tmp_path / "OCT2017", split="test")
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        items, names = image_folder_datalist(root, "test", class_names=["NORMAL", "CNV"])
    assert names == ["NORMAL", "CNV"]
    assert {item["id"].split("/")[0]: int(item["label"]) for item in items} == {"NORMAL": 0, "CNV": 1}
    assert "not in class_names: DME, DRUSEN" in caplog.text
    with pytest.raises(ValueError, match=r"class folder\(s\) GA not found in .*test.*CNV, DME, DRUSEN, NORMAL"):
        image_folder_datalist(root, "test", class_names=["CNV", "GA"])
    with pytest.raises(ValueError, match="distinct"):
        image_folder_datalist(root, "test", class_names=["CNV", "CNV"])


def test_split_none_and_extensions(tmp_path):
    _image(tmp_path / "flat" / "a" / "x.png")
    _image(tmp_path / "flat" / "b" / "y.jpg")
    items, names = image_folder_datalist(tmp_path / "flat", split=None)
    assert names == ["a", "b"] and [i["id"] for i in items] == ["a/x.png", "b/y.jpg"]
    with pytest.raises(ValueError, match=r"class folder .*b is empty: no \.png files"):
        image_folder_datalist(tmp_path / "flat", split=None, extensions=["png"])


def test_missing_root_split_or_class_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"root not found: .*nowhere; expected the layout <root>/train/<class>"):
        image_folder_datalist(tmp_path / "nowhere")
    _oct(tmp_path / "download" / "OCT2017", split="test", n=1)
    with pytest.raises(FileNotFoundError, match=r"split folder not found: .*test;.*did you mean root=.*OCT2017\?"):
        image_folder_datalist(tmp_path / "download", "test")
    with pytest.raises(FileNotFoundError, match=r"split folder not found: .*val; expected the layout <root>/val/"):
        image_folder_datalist(tmp_path / "download" / "OCT2017", "val")
    (tmp_path / "bare" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no class folders"):
        image_folder_datalist(tmp_path / "bare")


def test_empty_class_folder_is_named(tmp_path):
    root = _oct(tmp_path / "OCT2017", classes=("CNV", "NORMAL"))
    (root / "train" / "DME").mkdir()
    (root / "train" / "DME" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"class folder .*DME is empty"):
        image_folder_datalist(root)


def _broken(root: Path) -> Path:
    _oct(root, classes=("CNV", "NORMAL"), n=3)
    (root / "train" / "CNV" / "CNV-1.jpeg").write_bytes(b"")
    (root / "train" / "NORMAL" / "bad.dcm").write_bytes(b"garbage" * 40)
    return root


def test_unreadable_files_raise_or_are_skipped(tmp_path, caplog):
    root = _broken(tmp_path / "OCT2017")
    with pytest.raises(ValueError, match=r"unreadable image .*CNV-1\.jpeg: empty file.*1 more unreadable: bad\.dcm"):
        image_folder_datalist(root)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        items, names = image_folder_datalist(root, skip_unreadable=True)
    assert [i["id"] for i in items] == ["CNV/CNV-0.jpeg", "CNV/CNV-2.jpeg", "NORMAL/NORMAL-0.jpeg",
                                        "NORMAL/NORMAL-1.jpeg", "NORMAL/NORMAL-2.jpeg"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2 of 7 unreadable images" in warnings[0].getMessage()
    assert len(image_folder_datalist(root, check_files=False)[0]) == 7


def test_class_with_only_unreadable_files(tmp_path):
    root = _oct(tmp_path / "OCT2017", classes=("CNV",), n=1)
    (root / "train" / "DME").mkdir()
    (root / "train" / "DME" / "a.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"every image in class folder .*DME is unreadable"):
        image_folder_datalist(root, skip_unreadable=True)


def test_validate_image_file(tmp_path):
    assert validate_image_file(_image(tmp_path / "ok.png")) is None
    assert validate_image_file(_image(tmp_path / "ok.jpeg")) is None
    assert validate_image_file(CT_SMALL) is None
    (tmp_path / "empty.png").write_bytes(b"")
    assert validate_image_file(tmp_path / "empty.png") == "empty file (0 bytes)"
    (tmp_path / "text.jpeg").write_text("hello")
    assert validate_image_file(tmp_path / "text.jpeg").startswith("not a readable image")
    assert validate_image_file(tmp_path / "missing.png").startswith("not a readable image")
