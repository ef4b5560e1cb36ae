"""Tests for the synthetic MRNet-layout demo: determinism, layout, learnable signal, safety."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from monai_ssl.data import (
    DEMO_MARKER,
    MRNET_PLANES,
    MRNET_SPLITS,
    MRNET_TASKS,
    ensure_mrnet_demo,
    is_mrnet_demo,
    make_mrnet_demo,
    mrnet_datalist,
)

SMALL = {"n_train": 9, "n_valid": 6, "num_slices": (5, 7), "size": 64}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_byte_identical_other_seed_differs(tmp_path):
    a = _tree(make_mrnet_demo(tmp_path / "a", seed=3, **SMALL))
    b = _tree(make_mrnet_demo(tmp_path / "b", seed=3, **SMALL))
    c = _tree(make_mrnet_demo(tmp_path / "c", seed=4, **SMALL))
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_layout_readable_for_every_split_plane_task(tmp_path):
    root = make_mrnet_demo(tmp_path / "demo", **SMALL)
    for split, ids in (("train", range(0, 9)), ("valid", range(9, 15))):
        for plane in MRNET_PLANES:
            for task in MRNET_TASKS:
                items = mrnet_datalist(root, split, plane, task)
                assert [i["id"] for i in items] == [f"{k:04d}" for k in ids]
                labels = [float(i["label"][0]) for i in items]
                assert 0.0 in labels and 1.0 in labels, (split, task)
            volume = np.load(items[0]["image"])
            assert volume.dtype == np.uint8 and volume.ndim == 3
            assert 5 <= volume.shape[0] <= 7 and volume.shape[1:] == (64, 64)
    assert (root / "train-acl.csv").read_text().splitlines()[0] in ("0,0", "0,1")
    assert json.loads((root / DEMO_MARKER).read_text())["n_train"] == 9


def test_labels_imbalanced_and_abnormal_is_acl_or_meniscus(tmp_path):
    root = make_mrnet_demo(tmp_path / "demo", n_train=12, n_valid=6, num_slices=(3, 3), size=32)
    for split in MRNET_SPLITS:
        labels = {t: np.array([i["label"][0] for i in mrnet_datalist(root, split, task=t)]) for t in MRNET_TASKS}
        n = len(labels["acl"])
        assert labels["acl"].sum() == round(n / 3) and labels["meniscus"].sum() == round(n / 3)
        np.testing.assert_array_equal(labels["abnormal"], np.maximum(labels["acl"], labels["meniscus"]))
        assert labels["abnormal"].min() == 0.0


def _centre_mean(path: str) -> float:
    """Mean intensity of the central 20% square of the middle slice, where the ACL band lies."""
    volume = np.load(path).astype(np.float32)
    s, h, w = volume.shape
    return float(volume[s // 2, int(0.4 * h) : int(0.6 * h), int(0.4 * w) : int(0.6 * w)].mean())


@pytest.mark.parametrize("plane", MRNET_PLANES)
def test_acl_signal_separates_the_classes(tmp_path, plane):
    root = make_mrnet_demo(tmp_path / "demo", **SMALL)
    items = mrnet_datalist(root, "train", plane, "acl") + mrnet_datalist(root, "valid", plane, "acl")
    positive = [_centre_mean(i["image"]) for i in items if i["label"][0] == 1.0]
    negative = [_centre_mean(i["image"]) for i in items if i["label"][0] == 0.0]
    assert min(positive) > max(negative) + 20.0


def test_default_generation_is_fast(tmp_path):
    start = time.perf_counter()
    root = make_mrnet_demo(tmp_path / "demo")
    elapsed = time.perf_counter() - start
    assert elapsed < 6.0  # about 1 s on 2 CPU cores; generous for slow CI
    volume = np.load(mrnet_datalist(root, "valid", "axial")[0]["image"])
    assert volume.shape[1:] == (256, 256) and 17 <= volume.shape[0] <= 22


def test_planes_subset(tmp_path):
    root = make_mrnet_demo(tmp_path / "demo", planes=("sagittal",), **SMALL)
    assert sorted(p.name for p in (root / "train").iterdir()) == ["sagittal"]
    with pytest.raises(FileNotFoundError, match="coronal"):
        mrnet_datalist(root, plane="coronal")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train": 1}, "n_train must be an integer >= 2"),
        ({"n_valid": 0}, "n_valid must be an integer >= 2"),
        ({"size": 16}, "size must be an integer >= 32"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"num_slices": (8, 4)}, "num_slices must be"),
        ({"num_slices": (2, 4)}, "num_slices must be"),
        ({"planes": ("oblique",)}, "planes must be distinct names"),
        ({"planes": ()}, "planes must be distinct names"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mrnet_demo(tmp_path / "demo", **kwargs)
    assert not (tmp_path / "demo").exists()


def test_make_refuses_existing_non_empty_and_fills_empty(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="full"):
        make_mrnet_demo(tmp_path / "full", **SMALL)
    (tmp_path / "empty").mkdir()
    assert is_mrnet_demo(make_mrnet_demo(tmp_path / "empty", **SMALL))


def test_interrupted_creation_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    import monai_ssl.data.synthetic as synthetic

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic.np, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        make_mrnet_demo(tmp_path / "demo", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_ensure_is_idempotent(tmp_path, caplog):
    root = ensure_mrnet_demo(tmp_path / "demo", **SMALL)
    before = _tree(root)
    mtime = (root / DEMO_MARKER).stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        assert ensure_mrnet_demo(tmp_path / "demo", **SMALL) == root
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _tree(root) == before and (root / DEMO_MARKER).stat().st_mtime_ns == mtime
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        ensure_mrnet_demo(tmp_path / "demo", **dict(SMALL, n_train=20))
    assert "reusing the synthetic MRNet demo" in caplog.text and _tree(root) == before


def test_ensure_creates_in_empty_folder(tmp_path):
    (tmp_path / "demo").mkdir()
    assert is_mrnet_demo(ensure_mrnet_demo(tmp_path / "demo", **SMALL))


def test_ensure_refuses_real_data_folder(tmp_path):
    real = tmp_path / "MRNet-v1.0"
    (real / "train").mkdir(parents=True)
    (real / "train-acl.csv").write_text("0,1\n")
    with pytest.raises(ValueError, match=r"MRNet-v1\.0 exists, is not empty and is not a monai_ssl demo"):
        ensure_mrnet_demo(real, **SMALL)
    assert sorted(p.name for p in real.iterdir()) == ["train", "train-acl.csv"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a monai_ssl demo"):
        ensure_mrnet_demo(tmp_path / "file", **SMALL)
