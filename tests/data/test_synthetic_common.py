"""The shared demo plumbing: marker reading, kinds, atomic building, reuse and refusal."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from monai_ssl.data.synthetic_common import (
    DEMO_MARKER,
    build_demo,
    check_integer,
    check_range,
    ensure_demo,
    is_demo,
    read_demo_marker,
)
from monai_ssl.data import dataset_or_demo

PARAMS = {"dataset": "toy", "format": 1, "n": 2}


def _write(folder, params):
    (folder / "data.txt").write_text(str(params["n"]))


def _make(path):
    return build_demo(path, PARAMS, _write, "make_toy_demo")


def test_check_integer_and_range():
    assert check_integer("make_toy_demo", "n", np.int64(3), 2) == 3
    for bad in (True, 1, 2.0, "3"):
        with pytest.raises(ValueError, match=r"make_toy_demo: n must be an integer >= 2, got "):
            check_integer("make_toy_demo", "n", bad, 2)
    assert check_range("make_toy_demo", "size", (np.int32(4), 4), 3) == [4, 4]
    for bad in ((2, 5), (5, 4), (3,), (3, True), "34", (3.0, 4.0), np.array([3, 4])):
        with pytest.raises(ValueError, match=r"size must be \(low, high\) integers with 3 <= low <= high"):
            check_range("make_toy_demo", "size", bad, 3)


def test_read_demo_marker_and_is_demo(tmp_path):
    assert read_demo_marker(tmp_path) is None and not is_demo(tmp_path, None)
    marker = tmp_path / DEMO_MARKER
    for text in ("not json", "[1, 2]"):
        marker.write_text(text)
        assert read_demo_marker(tmp_path) == {}
        assert is_demo(tmp_path, None) and not is_demo(tmp_path, "toy")
    marker.write_text(json.dumps(PARAMS))
    assert read_demo_marker(str(tmp_path)) == PARAMS
    assert is_demo(tmp_path, "toy") and is_demo(tmp_path, None) and not is_demo(tmp_path, "other")


def test_build_demo_writes_the_marker_after_the_files(tmp_path):
    root = _make(tmp_path / "demo")
    assert (root / "data.txt").read_text() == "2" and read_demo_marker(root) == PARAMS
    with pytest.raises(FileExistsError, match="make_toy_demo"):
        _make(root)


def test_ensure_demo_creates_reuses_and_refuses(tmp_path, caplog):
    root = ensure_demo(tmp_path / "demo", PARAMS, _make, kind="toy", label="Toy")
    assert is_demo(root, "toy")
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        assert ensure_demo(root, PARAMS, _make, kind="toy", label="Toy") == root
        assert not caplog.records
        assert ensure_demo(root, {**PARAMS, "n": 3}, _make, kind="toy", label="Toy") == root
    assert "reusing the synthetic Toy demo at" in caplog.text and (root / "data.txt").read_text() == "2"
    with pytest.raises(ValueError, match=r"is not a monai_ssl Other demo \(its marker belongs to another kind"):
        ensure_demo(root, PARAMS, _make, kind="other", label="Other")
    assert ensure_demo(root, PARAMS, _make, kind=None, label="Any") == root  # kind None: any marker
    real = tmp_path / "real"
    real.mkdir()
    (real / "x.txt").write_text("keep")
    with pytest.raises(ValueError, match=rf"real exists, is not empty and is not a monai_ssl demo \(no {DEMO_MARKER}"):
        ensure_demo(real, PARAMS, _make, kind=None, label="Any")
    with pytest.raises(ValueError, match=r"is not a monai_ssl Toy demo \(no "):
        ensure_demo(real, PARAMS, _make, kind="toy", label="Toy")
    assert [p.name for p in real.iterdir()] == ["x.txt"]


def test_ensure_demo_accepts_a_concurrent_creator(tmp_path):
    def racing_make(path):
        _make(path)  # another process finished first
        return _make(path)

    assert ensure_demo(tmp_path / "demo", PARAMS, racing_make, kind="toy", label="Toy") == tmp_path / "demo"
    with pytest.raises(FileExistsError):
        ensure_demo(tmp_path / "other", PARAMS, racing_make, kind="else", label="Else")


def test_dataset_or_demo_makes_the_demo_only_in_the_bundles_demo_folder(tmp_path):
    made = []
    make = lambda root, **kw: made.append((root, kw)) or root  # noqa: E731
    assert dataset_or_demo(tmp_path / "mine", tmp_path / "demo", make, n=2) == tmp_path / "mine" and made == []
    assert dataset_or_demo(tmp_path / "demo", tmp_path / "demo", make, n=2) == tmp_path / "demo"
    assert made == [(tmp_path / "demo", {"n": 2})]


def test_demo_or_dataset_value_follows_the_dataset_dir_setting(tmp_path):
    from monai_ssl.data import demo_or_dataset_value

    demo = tmp_path / "bundle" / "demo_data"
    assert demo_or_dataset_value(demo, demo, 2, 100) == 2
    assert demo_or_dataset_value(str(demo), demo, 2, 100) == 2  # the config's strings and paths compare alike
    assert demo_or_dataset_value(tmp_path / "ISIC2017", demo, 2, 100) == 100
    assert demo_or_dataset_value(tmp_path / "ISIC2017", str(demo), "demo", None) is None
