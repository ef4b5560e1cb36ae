"""label_free_datalist / indexed_images: every training image once, no mask, never a validation or test id."""

from __future__ import annotations

import pytest
from PIL import Image

from monai_ssl.data import indexed_images, label_free_datalist


def test_indexed_images_drop_labels_and_number_items():
    items = indexed_images([{"id": "a", "image": "a.jpg", "label": "a.png"}, {"image": "b.jpg"}])
    assert items == [{"image": "a.jpg", "index": 0, "id": "a"}, {"image": "b.jpg", "index": 1}]
    with pytest.raises(KeyError, match="item 1"):
        indexed_images([{"image": "a"}, {"label": "b"}])


def test_training_images_plus_unlabeled_dir_without_evaluation_ids(tmp_path):
    folder = tmp_path / "extra"
    folder.mkdir()
    for name in ("ISIC_0000100", "ISIC_0000009", "ISIC_0000002"):  # new, a test id, a training id
        Image.new("RGB", (40, 40), (200, 150, 120)).save(folder / f"{name}.jpg")
    splits = {
        "train": [{"id": f"ISIC_000000{i}", "image": f"t{i}.jpg", "label": f"t{i}.png"} for i in range(3)],
        "val": [{"id": "ISIC_0000008", "image": "v.jpg", "label": "v.png"}],
        "test": [{"id": "ISIC_0000009", "image": "x.jpg", "label": "x.png"}],
    }
    items = label_free_datalist(splits, unlabeled_dir=folder, image_glob="ISIC_*.jpg")
    assert [i["id"] for i in items] == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000100"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert all("label" not in i for i in items)
    assert items[2]["image"] == "t2.jpg"  # the training split's own file wins over the extra copy


def test_an_empty_training_set_is_an_error():
    with pytest.raises(ValueError, match="no training image"):
        label_free_datalist({"train": [], "val": [], "test": []})
