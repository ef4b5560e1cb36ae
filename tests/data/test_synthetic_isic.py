"""Tests for the synthetic ISIC 2017-layout demo: layout, masks, lesion contrast, determinism, safety, speed."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.isic import segmentation_datalist
from monai_ssl.data.synthetic import DEMO_MARKER
from monai_ssl.data.synthetic_isic import ensure_isic_demo, is_isic_demo, make_isic_demo

SMALL = {"n_train": 3, "n_val": 1, "n_test": 1, "height": (36, 48), "width": (48, 64)}
FOLDERS = [
    "ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth", "ISIC-2017_Training_Data",
    "ISIC-2017_Training_Part1_GroundTruth", "ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth",
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory) -> tuple[Path, float]:
    """The default demo (48 images), made once for this module, with its creation time in seconds."""
    start = time.perf_counter()
    root = make_isic_demo(tmp_path_factory.mktemp("isic") / "ISIC2017")
    return root, time.perf_counter() - start


def test_default_demo_layout_sizes_and_speed(default_demo):
    root, seconds = default_demo
    assert seconds < 6.0  # about 1.5 s on 2 CPU cores; generous for slow CI
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == FOLDERS
    assert not list(root.rglob("*superpixels*"))
    ids, sizes = [], set()
    for split, n in (("train", 32), ("val", 8), ("test", 8)):
        items = segmentation_datalist(root, split)  # also checks every mask's size against its image
        assert len(items) == n
        ids += [item["id"] for item in items]
        for item in items:
            with Image.open(item["image"]) as image:
                assert image.format == "JPEG" and image.mode == "RGB"
                width, height = image.size
            assert 480 <= width <= 640 and 360 <= height <= 480 and 1.2 < width / height < 1.5
            sizes.add((width, height))
    assert ids == [f"ISIC_{i:07d}" for i in range(48)]  # numbered through the splits, like the real ids
    assert len(sizes) > 30
    assert is_isic_demo(root) and json.loads((root / DEMO_MARKER).read_text())["dataset"] == "isic2017"


def test_masks_are_binary_and_lesions_clearly_darker_than_skin(default_demo):
    root, _ = default_demo
    for item in segmentation_datalist(root, "train"):
        with Image.open(item["label"]) as mask_file:
            assert mask_file.format == "PNG" and mask_file.mode == "L"
            mask = np.asarray(mask_file)
        assert set(np.unique(mask).tolist()) == {0, 255}
        lesion = mask == 255
        assert 0.02 < lesion.mean() < 0.6
        rgb = np.asarray(Image.open(item["image"]), dtype=np.float64)
        luma = rgb @ [0.299, 0.587, 0.114]
        assert luma[~lesion].mean() - luma[lesion].mean() > 40, item["id"]
        red = rgb[..., 0]
        assert red[~lesion].mean() > red[lesion].mean() + 40  # brown lesion on pinkish-beige skin


def test_same_seed_byte_identical_other_seed_differs(tmp_path):
    a = _tree(make_isic_demo(tmp_path / "a", seed=3, **SMALL))
    b = _tree(make_isic_demo(tmp_path / "b", seed=3, **SMALL))
    c = _tree(make_isic_demo(tmp_path / "c", seed=4, **SMALL))
    assert a == b
    assert a.keys() == c.keys() and a != c
    assert len(a) == 2 * 5 + 1  # images, masks and the marker


def test_without_hair(tmp_path):
    root = make_isic_demo(tmp_path / "demo", hair=False, **SMALL)
    assert json.loads((root / DEMO_MARKER).read_text())["hair"] is False


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train": 1}, "n_train must be an integer >= 2"),
        ({"n_val": 0}, "n_val must be an integer >= 1"),
        ({"n_test": 1.5}, "n_test must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"height": (20, 60)}, "height must be"),
        ({"width": (140, 120)}, "width must be"),
        ({"hair": 1}, "hair must be True or False"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_isic_demo(tmp_path / "demo", **{**SMALL, **kwargs})
    assert not (tmp_path / "demo").exists()


def test_make_refuses_existing_non_empty_and_fills_empty(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="full"):
        make_isic_demo(tmp_path / "full", **SMALL)
    (tmp_path / "empty").mkdir()
    assert is_isic_demo(make_isic_demo(tmp_path / "empty", **SMALL))


def test_interrupted_creation_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        make_isic_demo(tmp_path / "demo", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_ensure_creates_then_reuses(tmp_path, caplog):
    root = ensure_isic_demo(tmp_path / "demo", **SMALL)
    before = _tree(root)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        assert ensure_isic_demo(tmp_path / "demo", **SMALL) == root
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        ensure_isic_demo(tmp_path / "demo", **{**SMALL, "n_train": 5})
    assert "reusing the synthetic ISIC demo" in caplog.text and _tree(root) == before
    (tmp_path / "empty").mkdir()
    assert is_isic_demo(ensure_isic_demo(tmp_path / "empty", **SMALL))


def test_ensure_refuses_real_data_and_other_demos(tmp_path):
    real = tmp_path / "ISIC2017"
    (real / "ISIC-2017_Training_Data").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"ISIC2017 exists, is not empty and is not a monai_ssl ISIC demo \(no "):
        ensure_isic_demo(real, **SMALL)
    assert [p.name for p in real.iterdir()] == ["ISIC-2017_Training_Data"]
    oct_demo = tmp_path / "oct_demo"
    oct_demo.mkdir()
    (oct_demo / DEMO_MARKER).write_text(json.dumps({"dataset": "oct2017", "format": 1}))
    with pytest.raises(ValueError, match="marker belongs to another kind of demo"):
        ensure_isic_demo(oct_demo, **SMALL)
    assert not is_isic_demo(oct_demo)
