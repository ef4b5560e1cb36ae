from __future__ import annotations

import logging

import numpy as np
import pytest

from monai_ssl.data import volume_datalist


def test_lists_volumes_by_name_with_ids(tmp_path):
    np.save(tmp_path / "b.npy", np.zeros((3, 4, 4), np.uint8))
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 4), np.uint8))
    (tmp_path / "scan.nii.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    items = volume_datalist(tmp_path)
    assert [i["id"] for i in items] == ["a", "b", "scan"]
    assert items[0]["image"].endswith("a.npy")


def test_errors_and_skip(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        volume_datalist(tmp_path / "missing")
    with pytest.raises(ValueError, match="no volume file"):
        volume_datalist(tmp_path)
    np.save(tmp_path / "good.npy", np.zeros((3, 4, 4), np.uint8))
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="flat.npy"):
        volume_datalist(tmp_path)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        items = volume_datalist(tmp_path, skip_unreadable=True)
    assert [i["id"] for i in items] == ["good"]
    assert "skipped 1 of 2" in caplog.text
