"""Tests for LoadImage2Dd: JPEG, PNG (gray, RGB, RGBA, 16-bit, palette), DICOM, arrays, channels, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image
from pydicom.data import get_testdata_file

from monai_ssl.transforms.image2d import LoadImage2Dd, load_image_2d

CT_SMALL = get_testdata_file("CT_small.dcm")  # int16 (128, 128), MONOCHROME2


def _gray(h: int = 20, w: int = 30) -> np.ndarray:
    return (np.add.outer(np.arange(h) * 5, np.arange(w) * 3) % 256).astype(np.uint8)


def _rgb(h: int = 20, w: int = 30) -> np.ndarray:
    g = _gray(h, w)
    return np.stack([g, 255 - g, (g // 2 + 40).astype(np.uint8)], axis=-1)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.float32)


def _save(path: Path, array: np.ndarray, **kwargs) -> str:
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


def test_png_gray_exact_and_repeated_to_rgb(tmp_path):
    path = _save(tmp_path / "g.png", _gray())
    out = LoadImage2Dd(keys="image")({"image": path, "label": np.array(2), "id": "a/g.png"})
    image = out["image"]
    assert isinstance(image, MetaTensor) and image.dtype == torch.float32 and image.shape == (1, 20, 30)
    assert image.meta["filename_or_obj"] == path
    np.testing.assert_array_equal(image[0].numpy(), _gray().astype(np.float32))  # no scaling
    assert out["id"] == "a/g.png" and int(out["label"]) == 2
    rgb = LoadImage2Dd(channels=3)({"image": path})["image"]
    assert rgb.shape == (3, 20, 30)
    for c in range(3):
        np.testing.assert_array_equal(rgb[c].numpy(), _gray().astype(np.float32))


def test_png_rgb_kept_or_converted_with_bt601_luma(tmp_path):
    path = _save(tmp_path / "c.png", _rgb())
    rgb = load_image_2d(path, channels=3)
    np.testing.assert_array_equal(rgb.numpy(), np.moveaxis(_rgb(), -1, 0).astype(np.float32))
    gray = load_image_2d(path, channels=1)
    assert gray.shape == (1, 20, 30)
    np.testing.assert_allclose(gray[0].numpy(), _luma(_rgb()), atol=1e-4)


def test_png_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([_rgb(), np.full((20, 30, 1), 7, np.uint8)], axis=-1)
    path = _save(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(load_image_2d(path, 3).numpy(), np.moveaxis(_rgb(), -1, 0).astype(np.float32))
    np.testing.assert_allclose(load_image_2d(path, 1)[0].numpy(), _luma(_rgb()), atol=1e-4)


def test_png_gray_with_alpha_and_palette(tmp_path):
    la = Image.fromarray(_gray()).convert("LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_image_2d(tmp_path / "la.png")[0].numpy(), _gray().astype(np.float32))
    Image.fromarray(_gray()).convert("P").save(tmp_path / "p.png")  # a gray palette image
    np.testing.assert_allclose(load_image_2d(tmp_path / "p.png")[0].numpy(), _gray().astype(np.float32), atol=1e-3)


def test_png_16_bit_keeps_values(tmp_path):
    values = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)  # up to 59900
    path = _save(tmp_path / "deep.png", values)
    image = load_image_2d(path)
    assert float(image.max()) == 59900.0
    np.testing.assert_array_equal(image[0].numpy(), values.astype(np.float32))


def test_jpeg_gray_and_rgb_match_pil(tmp_path):
    gray = _save(tmp_path / "g.jpeg", _gray(), quality=95)
    expected = np.asarray(Image.open(gray)).astype(np.float32)
    np.testing.assert_array_equal(load_image_2d(gray)[0].numpy(), expected)
    colour = _save(tmp_path / "c.jpg", _rgb(), quality=95)
    decoded = np.asarray(Image.open(colour))
    np.testing.assert_allclose(load_image_2d(colour)[0].numpy(), _luma(decoded), atol=1e-4)
    assert load_image_2d(colour, 3).shape == (3, 20, 30)


def test_real_dicom_gives_stored_values():
    image = LoadImage2Dd()({"image": CT_SMALL})["image"]
    expected = pydicom.dcmread(CT_SMALL).pixel_array
    assert image.shape == (1, 128, 128) and image.dtype == torch.float32
    np.testing.assert_array_equal(image[0].numpy(), expected.astype(np.float32))
    assert image.meta["filename_or_obj"] == CT_SMALL
    assert LoadImage2Dd(channels=3)({"image": CT_SMALL})["image"].shape == (3, 128, 128)


def test_rgb_dicom_to_gray(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    rgb = _rgb()
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    path = tmp_path / "rgb.dcm"
    ds.save_as(path)
    np.testing.assert_allclose(load_image_2d(path)[0].numpy(), _luma(rgb), atol=1e-4)
    np.testing.assert_array_equal(load_image_2d(path, 3).numpy(), np.moveaxis(rgb, -1, 0).astype(np.float32))


@pytest.mark.parametrize(
    "array, channels, expected_shape",
    [
        (np.zeros((28, 28), np.uint8), 1, (1, 28, 28)),
        (np.zeros((28, 28), np.uint8), 3, (3, 28, 28)),
        (np.zeros((28, 28, 1), np.uint8), 1, (1, 28, 28)),
        (np.zeros((28, 28, 3), np.uint8), 1, (1, 28, 28)),
        (np.zeros((28, 28, 3), np.uint8), 3, (3, 28, 28)),
        (np.zeros((28, 28, 4), np.uint8), 3, (3, 28, 28)),
        (torch.zeros(28, 28, dtype=torch.uint8), 1, (1, 28, 28)),
    ],
)
def test_in_memory_array_shapes(array, channels, expected_shape):
    image = LoadImage2Dd(channels=channels)({"image": array, "id": "train/00000"})["image"]
    assert image.shape == expected_shape and image.dtype == torch.float32


def test_in_memory_values_and_conversion():
    gray, rgb = _gray(), _rgb()
    np.testing.assert_array_equal(load_image_2d(gray)[0].numpy(), gray.astype(np.float32))
    np.testing.assert_array_equal(load_image_2d(gray, 3)[2].numpy(), gray.astype(np.float32))
    np.testing.assert_allclose(load_image_2d(rgb)[0].numpy(), _luma(rgb), atol=1e-4)
    np.testing.assert_array_equal(load_image_2d(rgb, 3)[1].numpy(), rgb[..., 1].astype(np.float32))
    equal = np.repeat(gray[..., None], 3, axis=-1)  # gray stored as RGB converts back exactly
    np.testing.assert_array_equal(load_image_2d(equal)[0].numpy(), gray.astype(np.float32))
    assert "filename_or_obj" not in load_image_2d(gray).meta
    assert gray.dtype == np.uint8  # the input is not modified


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        load_image_2d(tmp_path / "nothere.png")
    (tmp_path / "empty.jpeg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.jpeg.*0 bytes"):
        load_image_2d(tmp_path / "empty.jpeg")
    (tmp_path / "junk.png").write_bytes(b"not a picture at all")
    with pytest.raises(ValueError, match=r"unreadable image .*junk\.png"):
        LoadImage2Dd()({"image": str(tmp_path / "junk.png")})
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 200)
    with pytest.raises(ValueError, match=r"unreadable image .*junk\.dcm"):
        load_image_2d(tmp_path / "junk.dcm")
    whole = Path(_save(tmp_path / "whole.jpeg", _rgb(64, 64))).read_bytes()
    (tmp_path / "cut.jpeg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"unreadable image .*cut\.jpeg"):
        load_image_2d(tmp_path / "cut.jpeg")


def test_multi_frame_dicom_is_refused(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(tmp_path / "two.dcm")
    with pytest.raises(ValueError, match=r"two\.dcm.*multi-frame DICOM with 2 frames"):
        load_image_2d(tmp_path / "two.dcm")


def test_bad_arrays_channels_and_values():
    with pytest.raises(ValueError, match=r"'image' of item 'train/00003'.*shape \(3, 28, 28\)"):
        LoadImage2Dd()({"image": np.zeros((3, 28, 28), np.uint8), "id": "train/00003"})
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        load_image_2d(np.zeros(5))
    with pytest.raises(ValueError, match="expected numbers"):
        load_image_2d(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="channels must be 1"):
        LoadImage2Dd(channels=2)
    with pytest.raises(TypeError, match="key 'image' must hold an image file path"):
        LoadImage2Dd()({"image": 3})
    with pytest.raises(KeyError):
        LoadImage2Dd()({"label": 1})
    assert LoadImage2Dd(allow_missing_keys=True)({"label": 1}) == {"label": 1}
