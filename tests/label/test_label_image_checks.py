"""Image checks of the MONAI Label server (:mod:`monai_ssl.label.image_checks`).

The spatial size read from headers (PNG, JPEG, NumPy, NIfTI, DICOM), the megapixel limit, decoding
that finds truncated and empty files, masks checked against their image, and :class:`DecodeCache`,
which decodes an unchanged file only once (also across instances, through its JSON file).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_ssl.label import image_checks
from monai_ssl.label.image_checks import DecodeCache, decode_problem, label_problem, pixel_count, size_problem, spatial_shape


def _noise(height: int, width: int, channels: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (height, width) if channels is None else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _png(path: Path, height: int, width: int, channels: int | None = None, seed: int = 0) -> Path:
    Image.fromarray(_noise(height, width, channels, seed)).save(path)
    return path


def _jpeg(path: Path, height: int, width: int, seed: int = 0) -> Path:
    Image.fromarray(_noise(height, width, 3, seed)).save(path, quality=90)
    return path


# ---------------------------------------------------------------- spatial_shape, pixel_count
def test_png_shape_is_height_by_width(tmp_path):
    gray = _png(tmp_path / "gray.png", 30, 50)
    rgb = _png(tmp_path / "rgb.png", 24, 40, channels=3)
    assert spatial_shape(gray) == (30, 50)
    assert spatial_shape(rgb) == (24, 40)  # colour channels are not spatial
    assert spatial_shape(str(rgb)) == (24, 40)
    assert pixel_count(gray) == 1500
    assert pixel_count(rgb) == 960


def test_jpeg_shape_is_height_by_width(tmp_path):
    assert spatial_shape(_jpeg(tmp_path / "a.jpg", 40, 56)) == (40, 56)


def test_npy_shape_is_the_array_shape(tmp_path):
    path = tmp_path / "exam.npy"
    np.save(path, np.zeros((5, 12, 16), dtype=np.uint8))
    assert spatial_shape(path) == (5, 12, 16)
    assert pixel_count(path) == 5 * 12 * 16
    assert decode_problem(path) is None


@pytest.mark.parametrize("name", ["volume.nii", "volume.nii.gz", "VOLUME.NII.GZ"])
def test_nifti_shape_is_the_first_three_dimensions(tmp_path, name):
    nibabel = pytest.importorskip("nibabel")
    path = tmp_path / name
    nibabel.save(nibabel.Nifti1Image(np.zeros((6, 7, 8, 2), dtype=np.float32), np.eye(4)), str(path))
    assert spatial_shape(path) == (6, 7, 8)
    assert pixel_count(path) == 6 * 7 * 8
    assert decode_problem(path) is None


def test_dicom_shape_is_rows_by_columns(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm")
    path = tmp_path / "slice.dcm"
    shutil.copyfile(source, path)
    ds = pydicom.dcmread(source)
    assert spatial_shape(path) == (int(ds.Rows), int(ds.Columns))
    assert decode_problem(path) is None


def test_dicom_without_pixel_data_is_not_an_image(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    path = tmp_path / "header_only.dcm"
    ds.save_as(path)
    assert decode_problem(path) == "DICOM file without pixel data (not an image)"


def test_empty_file_has_no_shape(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        spatial_shape(path)


# ---------------------------------------------------------------- size_problem
def test_size_problem_against_the_megapixel_limit(tmp_path):
    path = _png(tmp_path / "a.png", 100, 200)  # 20,000 pixels = 0.02 megapixels
    assert size_problem(path, 1.0) is None
    assert size_problem(path, 0.02) is None  # at the limit is allowed
    problem = size_problem(path, 0.01)
    assert problem is not None
    assert "megapixels" in problem
    assert "0.01" in problem


# ---------------------------------------------------------------- decode_problem
def test_good_images_decode(tmp_path):
    assert decode_problem(_png(tmp_path / "gray.png", 20, 30)) is None
    assert decode_problem(_png(tmp_path / "rgb.png", 20, 30, channels=3)) is None
    assert decode_problem(_jpeg(tmp_path / "a.jpg", 40, 56)) is None


def test_truncated_jpeg_has_a_header_but_does_not_decode(tmp_path):
    whole = _jpeg(tmp_path / "whole.jpg", 64, 64).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    assert spatial_shape(cut) == (64, 64)  # the header is intact
    problem = decode_problem(cut)
    assert problem is not None
    assert problem.startswith("not a readable image")


def test_truncated_png_does_not_decode(tmp_path):
    whole = _png(tmp_path / "whole.png", 64, 64).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[: len(whole) // 2])
    assert spatial_shape(cut) == (64, 64)
    assert decode_problem(cut).startswith("not a readable image")


def test_empty_file_is_reported(tmp_path):
    for name in ("empty.png", "empty.jpg", "empty.npy", "empty.nii.gz", "empty.dcm"):
        path = tmp_path / name
        path.write_bytes(b"")
        assert decode_problem(path) == "empty file (0 bytes)"


@pytest.mark.parametrize("name", ["noise.png", "noise.jpg", "noise.npy", "noise.nii.gz", "noise.dcm"])
def test_random_bytes_are_not_an_image(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(1).bytes(512))
    problem = decode_problem(path)
    assert problem is not None
    assert problem.startswith("not a readable image") or "not an image" in problem


def test_missing_file_is_reported(tmp_path):
    assert decode_problem(tmp_path / "missing.png").startswith("not a readable image (FileNotFoundError")


# ---------------------------------------------------------------- label_problem
def test_mask_of_the_image_size_is_a_label(tmp_path):
    image = _jpeg(tmp_path / "image.jpg", 40, 56)
    mask = tmp_path / "mask.png"
    Image.fromarray((_noise(40, 56) > 128).astype(np.uint8)).save(mask)
    assert label_problem(image, mask) is None


def test_mask_of_another_size_is_refused(tmp_path):
    image = _jpeg(tmp_path / "image.jpg", 40, 56)
    mask = _png(tmp_path / "mask.png", 30, 20)
    assert label_problem(image, mask) == "the label is 30x20, its image 40x56"


def test_unreadable_label_is_refused(tmp_path):
    image = _jpeg(tmp_path / "image.jpg", 40, 56)
    garbage = tmp_path / "mask.png"
    garbage.write_bytes(b"not a png at all")
    assert label_problem(image, garbage).startswith("the label is not a readable image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty file" in label_problem(image, empty)


def test_truncated_label_of_the_right_size_is_refused(tmp_path):
    image = _png(tmp_path / "image.png", 64, 64)
    whole = _png(tmp_path / "whole.png", 64, 64, seed=3).read_bytes()
    cut = tmp_path / "mask.png"
    cut.write_bytes(whole[: len(whole) // 2])
    assert label_problem(image, cut).startswith("not a readable image")


def test_unreadable_image_is_reported(tmp_path):
    image = tmp_path / "image.png"
    image.write_bytes(b"garbage")
    mask = _png(tmp_path / "mask.png", 10, 10)
    assert label_problem(image, mask).startswith("the image is not readable")


# ---------------------------------------------------------------- DecodeCache
@pytest.fixture
def decode_calls(monkeypatch):
    """The paths that :func:`decode_problem` is called with (it still decodes)."""
    calls: list[str] = []
    real = image_checks.decode_problem

    def counting(path):
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(image_checks, "decode_problem", counting)
    return calls


def test_cache_decodes_an_unchanged_file_once(tmp_path, decode_calls):
    good = _png(tmp_path / "good.png", 20, 20)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cache = DecodeCache(tmp_path / "cache.json")
    assert cache.problem(good) is None
    assert cache.problem(empty) == "empty file (0 bytes)"
    assert len(decode_calls) == 2
    assert cache.problem(good) is None
    assert cache.problem(empty) == "empty file (0 bytes)"
    assert len(decode_calls) == 2  # answered from the cache


def test_cache_decodes_a_changed_file_again(tmp_path, decode_calls):
    path = _png(tmp_path / "image.png", 20, 20)
    cache = DecodeCache(tmp_path / "cache.json")
    assert cache.problem(path) is None
    assert len(decode_calls) == 1
    path.write_bytes(path.read_bytes()[:40])  # new content, new size
    problem = cache.problem(path)
    assert len(decode_calls) == 2
    assert problem is not None and problem.startswith("not a readable image")
    _png(path, 24, 24, seed=5)  # fixed again
    assert cache.problem(path) is None
    assert len(decode_calls) == 3


def test_cache_decodes_a_file_touched_with_the_same_size_again(tmp_path, decode_calls):
    path = _png(tmp_path / "image.png", 20, 20)
    cache = DecodeCache(tmp_path / "cache.json")
    cache.problem(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    cache.problem(path)
    assert len(decode_calls) == 2


def test_saved_cache_is_reused_by_a_new_instance(tmp_path, decode_calls):
    good = _png(tmp_path / "good.png", 20, 20)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    cache_file = tmp_path / "state" / "cache.json"
    cache = DecodeCache(cache_file)
    assert not cache_file.exists()
    bad_problem = cache.problem(bad)
    assert bad_problem is not None
    assert cache.problem(good) is None
    cache.save()
    saved = json.loads(cache_file.read_text())
    assert set(saved) == {str(good), str(bad)}
    assert saved[str(good)]["problem"] is None
    assert saved[str(bad)]["problem"] == bad_problem
    assert len(decode_calls) == 2

    again = DecodeCache(cache_file)
    assert again.problem(good) is None
    assert again.problem(bad) == bad_problem
    assert len(decode_calls) == 2  # no decoding: the answers came from the file


def test_cache_save_writes_only_when_changed(tmp_path, decode_calls):
    cache_file = tmp_path / "cache.json"
    cache = DecodeCache(cache_file)
    cache.save()
    assert not cache_file.exists()  # nothing checked, nothing written
    cache.problem(_png(tmp_path / "a.png", 8, 8))
    cache.save()
    assert list(json.loads(cache_file.read_text())) == [str(tmp_path / "a.png")]
    cache_file.write_text("{}")  # a later save without new answers leaves the file alone
    cache.save()
    assert cache_file.read_text() == "{}"


@pytest.mark.parametrize("content", ["not json", "[1, 2]", ""])
def test_unreadable_cache_file_starts_empty(tmp_path, decode_calls, content):
    cache_file = tmp_path / "cache.json"
    cache_file.write_text(content)
    cache = DecodeCache(cache_file)
    assert cache.problem(_png(tmp_path / "a.png", 8, 8)) is None
    assert len(decode_calls) == 1
    cache.save()
    assert list(json.loads(cache_file.read_text())) == [str(tmp_path / "a.png")]


def test_cache_reports_a_missing_file_without_decoding(tmp_path, decode_calls):
    cache = DecodeCache(tmp_path / "cache.json")
    assert cache.problem(tmp_path / "missing.png").startswith("cannot be opened")
    assert decode_calls == []
