"""Tests of the generic label CSV reader: both CSV shapes, single- and multi-label, and every bad-input message."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.label_csv import label_csv_datalist, read_label_csv


def _images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8), (120, 80, 60)).save(folder / name)
    return folder


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    return _images(tmp_path / "img", ["a.jpg", "b.png", "c.jpg", "d.jpg"])


def test_id_label_with_names(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,label\na,nevus\nb,melanoma\nc,nevus\n")
    items, names = label_csv_datalist(csv_path, images)
    assert names == ["melanoma", "nevus"]  # sorted distinct names
    assert [(i["id"], i["label"]) for i in items] == [("a", 1), ("b", 0), ("c", 1)]
    assert items[1]["image"] == str(images / "b.png")
    assert all(isinstance(i["label"], int) for i in items)


def test_id_label_with_indices_and_declared_names(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "image,target\nd,2\na,0\nb,nevus\n")
    items, names = label_csv_datalist(csv_path, images, class_names=["melanoma", "keratosis", "nevus"])
    assert names == ["melanoma", "keratosis", "nevus"]
    assert [(i["id"], i["label"]) for i in items] == [("d", 2), ("a", 0), ("b", 2)]


def test_id_label_indices_without_names(tmp_path, images):
    items, names = label_csv_datalist(_csv(tmp_path / "l.csv", "id,label\na,3\nb,1\n"), images)
    assert names == ["0", "1", "2", "3"]
    assert [i["label"] for i in items] == [3, 1]


def test_ids_with_extension_and_id_column(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "label,file\nx,c.jpg\ny,a\n")
    items, names = label_csv_datalist(csv_path, images, id_column="file")
    assert names == ["x", "y"]
    assert [(i["id"], Path(i["image"]).name, i["label"]) for i in items] == [("c.jpg", "c.jpg", 0), ("a", "a.jpg", 1)]


def test_one_hot_columns_single_label(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,cat,dog,bird\na,0,1,0\nb,1.0,0.0,0.0\nc,0,0,1\n")
    items, names = label_csv_datalist(csv_path, images)
    assert names == ["cat", "dog", "bird"]
    assert [i["label"] for i in items] == [1, 0, 2]


def test_one_hot_columns_reordered_by_class_names(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,cat,dog,bird\na,0,1,0\nc,0,0,1\n")
    items, names = label_csv_datalist(csv_path, images, class_names=["bird", "cat", "dog"])
    assert names == ["bird", "cat", "dog"]
    assert [i["label"] for i in items] == [2, 0]


def test_multi_label_detected_and_forced(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,p,q,r\na,1,1,0\nb,0,0,0\nc,0,0,1\n")
    items, names = label_csv_datalist(csv_path, images)
    assert names == ["p", "q", "r"]
    labels = [i["label"] for i in items]
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (3,) for v in labels)
    np.testing.assert_array_equal(np.stack(labels), [[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    one_each = _csv(tmp_path / "m.csv", "id,p,q\na,1,0\nb,0,1\n")
    forced, _ = label_csv_datalist(one_each, images, multi_label=True)
    np.testing.assert_array_equal(np.stack([i["label"] for i in forced]), [[1, 0], [0, 1]])


def test_multi_label_collates_to_batch_matrix(tmp_path, images):
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate

    items, _ = label_csv_datalist(_csv(tmp_path / "l.csv", "id,p,q,r\na,1,1,0\nc,0,0,1\n"), images)
    batch = default_collate([{"label": i["label"]} for i in items])["label"]
    assert batch.shape == (2, 3) and batch.dtype == torch.float32


def test_several_classes_in_single_label_row_named(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,p,q\na,1,0\nb,1,1\n")
    with pytest.raises(ValueError, match=r"l\.csv, row 3 \(id 'b'\).*exactly one.*sets 2 \(\['p', 'q'\]\)"):
        label_csv_datalist(csv_path, images, multi_label=False)
    none_set = _csv(tmp_path / "n.csv", "id,p,q\na,1,0\nc,0,0\n")
    with pytest.raises(ValueError, match=r"n\.csv, row 3 \(id 'c'\).*sets 0 \(none\)"):
        label_csv_datalist(none_set, images)


def test_columns_not_matching_class_names(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,p,q\na,1,0\n")
    with pytest.raises(ValueError, match=r"l\.csv: its label columns \['p', 'q'\] do not match "
                                         r"class_names=\['p', 'z'\].*without a column: \['z'\].*no class: \['q'\]"):
        label_csv_datalist(csv_path, images, class_names=["p", "z"])


def test_unknown_label_name_or_index(tmp_path, images):
    csv_path = _csv(tmp_path / "l.csv", "id,label\na,nevus\nb,7\n")
    with pytest.raises(ValueError, match=r"l\.csv, row 3 \(id 'b'\): label '7'.*class index 0\.\.1"):
        label_csv_datalist(csv_path, images, class_names=["melanoma", "nevus"])


@pytest.mark.parametrize("cell", ["", "NaN", "nan", "NA"])
def test_empty_or_nan_cell_named_by_row(tmp_path, images, cell):
    csv_path = _csv(tmp_path / "l.csv", f"id,p,q\na,1,0\nb,0,{cell}\n")
    with pytest.raises(ValueError, match=r"l\.csv, row 3 \(id 'b'\): the cell of column 'q' is empty or NaN"):
        label_csv_datalist(csv_path, images)


def test_non_binary_indicator_named(tmp_path, images):
    with pytest.raises(ValueError, match=r"row 2 \(id 'a'\): column 'q' holds '2'; expected 0 or 1"):
        label_csv_datalist(_csv(tmp_path / "l.csv", "id,p,q\na,0,2\n"), images)


def test_missing_images_named_with_count_and_skipped(tmp_path, images, caplog):
    csv_path = _csv(tmp_path / "l.csv", "id,label\na,x\nzz,y\nb,x\nyy,x\n")
    with pytest.raises(ValueError, match=r"2 of 4 image\(s\) listed in .*l\.csv are missing from .*img: zz, yy "
                                         r"\(pass skip_missing=True"):
        label_csv_datalist(csv_path, images)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        items, names = label_csv_datalist(csv_path, images, skip_missing=True)
    assert [i["id"] for i in items] == ["a", "b"]
    assert names == ["x"]  # the skipped rows' classes do not count
    assert "skipped 2 of 4 image(s) listed in" in caplog.text
    assert "2 image(s) in" in caplog.text and "c.jpg, d.jpg" in caplog.text  # present but unlisted: reported


def test_ambiguous_id_two_files(tmp_path):
    folder = _images(tmp_path / "img", ["a.jpg", "a.png"])
    with pytest.raises(ValueError, match=r"row 2: id 'a' matches 2 files .*a\.jpg, a\.png"):
        label_csv_datalist(_csv(tmp_path / "l.csv", "id,label\na,x\n"), folder)


def test_malformed_csvs(tmp_path, images):
    with pytest.raises(FileNotFoundError, match="label CSV not found"):
        label_csv_datalist(tmp_path / "none.csv", images)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        label_csv_datalist(_csv(tmp_path / "l.csv", "id,label\na,x\n"), tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"dup\.csv: id 'a' is listed twice, in rows 2 and 3"):
        read_label_csv(_csv(tmp_path / "dup.csv", "id,label\na,x\na,y\n"))
    with pytest.raises(ValueError, match=r"short\.csv, row 3: 2 cell\(s\) but the header has 3"):
        read_label_csv(_csv(tmp_path / "short.csv", "id,p,q\na,1,0\nb,1\n"))
    with pytest.raises(ValueError, match=r"no label column besides the id column 'id'"):
        read_label_csv(_csv(tmp_path / "one.csv", "id\na\n"))
    with pytest.raises(ValueError, match=r"id_column 'name' is not in the header \['id', 'label'\]"):
        read_label_csv(_csv(tmp_path / "l.csv", "id,label\na,x\n"), id_column="name")
    with pytest.raises(ValueError, match="has a header but no data row"):
        read_label_csv(_csv(tmp_path / "h.csv", "id,label\n"))
    with pytest.raises(ValueError, match=r"multi_label=True needs one 0/1 column per class.*'label'"):
        label_csv_datalist(_csv(tmp_path / "l.csv", "id,label\na,x\n"), images, multi_label=True)


def test_read_label_csv_rows_and_bom(tmp_path):
    columns, rows = read_label_csv(_csv(tmp_path / "b.csv", "\ufeffid,p\n\n a ,1\n"))
    assert columns == ["p"]
    assert [(r.line, r.id, r.cells) for r in rows] == [(3, "a", {"p": "1"})]
