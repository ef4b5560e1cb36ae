"""Tests for the synthetic OCT2017-layout demo: layout, determinism, class signals, safety, speed."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.data.image_folder import image_folder_datalist
from monai_ssl.data.synthetic import DEMO_MARKER
from monai_ssl.data.synthetic_oct import OCT_CLASSES, ensure_oct_demo, is_oct_demo, make_oct_demo

SMALL = {"n_train_per_class": 2, "n_test_per_class": 1, "height": (60, 64), "width": (70, 76)}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_default_demo_layout_sizes_and_speed(tmp_path):
    start = time.perf_counter()
    root = make_oct_demo(tmp_path / "OCT2017")
    assert time.perf_counter() - start < 6.0  # about 0.3 s on 2 CPU cores; generous for slow CI
    sizes = set()
    for split, n in (("train", 12), ("test", 6)):
        items, names = image_folder_datalist(root, split)
        assert names == list(OCT_CLASSES) and len(items) == 4 * n
        for item in items:
            assert item["id"].endswith(".jpeg") and Path(item["image"]).parent.name == names[int(item["label"])]
            with Image.open(item["image"]) as image:
                assert image.format == "JPEG" and image.mode == "L"
                width, height = image.size
            assert 90 <= height <= 110 and 120 <= width <= 140
            sizes.add((height, width))
    assert len(sizes) > 10
    assert is_oct_demo(root) and json.loads((root / DEMO_MARKER).read_text())["dataset"] == "oct2017"


def test_same_seed_byte_identical_other_seed_differs(tmp_path):
    a = _tree(make_oct_demo(tmp_path / "a", seed=5, **SMALL))
    b = _tree(make_oct_demo(tmp_path / "b", seed=5, **SMALL))
    c = _tree(make_oct_demo(tmp_path / "c", seed=6, **SMALL))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_class_subset(tmp_path):
    root = make_oct_demo(tmp_path / "demo", classes=("NORMAL", "DME"), **SMALL)
    assert image_folder_datalist(root, "test")[1] == ["DME", "NORMAL"]


def _smooth(a: np.ndarray, kh: int, kw: int) -> np.ndarray:
    padded = np.pad(a, ((kh // 2,), (kw // 2,)), mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, (kh, kw)).mean(axis=(-1, -2))


def _signs(path: str) -> tuple[float, float, float]:
    """Dark pixels inside the retina (cysts), tallest bright column (CNV dome), RPE bumps (drusen)."""
    a = np.asarray(Image.open(path), dtype=np.float32)
    s = _smooth(a, 5, 5)
    rows = np.arange(s.shape[0])[:, None]
    lit = s > 80
    first, last = lit.argmax(0), s.shape[0] - 1 - lit[::-1].argmax(0)
    cysts = float(((s < 30) & (rows > first) & (rows < last)).sum())
    dome = float((s > 160).sum(0).max())
    rpe = _smooth(a, 3, 7).argmax(0).astype(np.float64)  # the brightest row of every column
    x, keep = np.arange(len(rpe)), np.ones(len(rpe), bool)
    for _ in range(3):  # a robust quadratic fit of the RPE line; bumps rise above it
        above = np.polyval(np.polyfit(x[keep], rpe[keep], 2), x) - rpe
        keep = np.abs(above) < 2.5
    return cysts, dome, float((above >= 3).sum())


def test_classes_show_their_signs(tmp_path):
    root = make_oct_demo(tmp_path / "demo", n_test_per_class=1)
    items, names = image_folder_datalist(root, "train")
    signs: dict[str, list] = {}
    for item in items:
        signs.setdefault(names[int(item["label"])], []).append(_signs(item["image"]))
    values = {name: np.array(v) for name, v in signs.items()}
    mean = {name: v.mean(axis=0) for name, v in values.items()}
    others = [n for n in OCT_CLASSES if n != "DME"]
    assert values["DME"][:, 0].min() > 50 > max(values[n][:, 0].max() for n in others)  # every DME image
    assert mean["CNV"][1] > max(mean[n][1] for n in OCT_CLASSES if n != "CNV") + 2.0
    assert mean["DRUSEN"][2] > 2.0 * mean["NORMAL"][2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train_per_class": 1}, "n_train_per_class must be an integer >= 2"),
        ({"n_test_per_class": 0}, "n_test_per_class must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"height": (40, 60)}, "height must be"),
        ({"width": (140, 120)}, "width must be"),
        ({"width": 128}, "width must be"),
        ({"classes": ("CNV",)}, "classes must be at least two distinct names"),
        ({"classes": ("CNV", "AMD")}, "classes must be at least two distinct names"),
        ({"classes": ("CNV", "CNV")}, "classes must be at least two distinct names"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_oct_demo(tmp_path / "demo", **kwargs)
    assert not (tmp_path / "demo").exists()


def test_make_refuses_existing_non_empty_and_fills_empty(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="full"):
        make_oct_demo(tmp_path / "full", **SMALL)
    (tmp_path / "empty").mkdir()
    assert is_oct_demo(make_oct_demo(tmp_path / "empty", **SMALL))


def test_interrupted_creation_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        make_oct_demo(tmp_path / "demo", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_ensure_is_idempotent(tmp_path, caplog):
    root = ensure_oct_demo(tmp_path / "demo", **SMALL)
    before = _tree(root)
    mtime = (root / DEMO_MARKER).stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        assert ensure_oct_demo(tmp_path / "demo", **SMALL) == root
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _tree(root) == before and (root / DEMO_MARKER).stat().st_mtime_ns == mtime
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        ensure_oct_demo(tmp_path / "demo", **dict(SMALL, n_train_per_class=20))
    assert "reusing the synthetic OCT demo" in caplog.text and _tree(root) == before


def test_ensure_creates_in_empty_folder(tmp_path):
    (tmp_path / "demo").mkdir()
    assert is_oct_demo(ensure_oct_demo(tmp_path / "demo", **SMALL))


def test_ensure_refuses_real_data_and_other_demos(tmp_path):
    real = tmp_path / "OCT2017"
    (real / "train" / "CNV").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"OCT2017 exists, is not empty and is not a monai_ssl OCT demo \(no "):
        ensure_oct_demo(real, **SMALL)
    assert [p.name for p in real.iterdir()] == ["train"]
    mrnet = tmp_path / "mrnet_demo"
    mrnet.mkdir()
    (mrnet / DEMO_MARKER).write_text(json.dumps({"format": 1, "n_train": 12}))
    with pytest.raises(ValueError, match="marker belongs to another kind of demo"):
        ensure_oct_demo(mrnet, **SMALL)
    assert not is_oct_demo(mrnet)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a monai_ssl OCT demo"):
        ensure_oct_demo(tmp_path / "file", **SMALL)
