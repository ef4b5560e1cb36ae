"""Tests for LoadVolumed: .npy validation, NIfTI and DICOM through MONAI, slice-axis handling."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from nibabel.testing import data_path
from pydicom.data import get_testdata_file

from monai_ssl.transforms.io import LoadVolumed, load_volume

ANATOMICAL = os.path.join(data_path, "anatomical.nii")  # 3D (33, 41, 25)
TIME_SERIES = os.path.join(data_path, "example4d.nii.gz")  # 4D (128, 96, 24, 2)


def _volume(shape=(3, 8, 9)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)


def test_npy_loads_channel_first_float32(tmp_path):
    path = tmp_path / "0000.npy"
    np.save(path, _volume())
    out = LoadVolumed(keys="image")({"image": str(path), "id": "0000"})
    image = out["image"]
    assert isinstance(image, MetaTensor)
    assert image.shape == (1, 3, 8, 9) and image.dtype == torch.float32
    assert image.meta["filename_or_obj"] == str(path)
    assert out["id"] == "0000"
    np.testing.assert_array_equal(image[0].numpy(), _volume().astype(np.float32))  # no scaling


def test_npy_with_leading_channel_and_pathlike(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, _volume((1, 4, 5, 6)))
    assert LoadVolumed()({"image": path})["image"].shape == (1, 4, 5, 6)


def test_npy_slice_axis(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, _volume((8, 9, 3)))
    image = LoadVolumed(slice_axis=-1)({"image": str(path)})["image"]
    assert image.shape == (1, 3, 8, 9)
    np.testing.assert_array_equal(image[0, 1].numpy(), _volume((8, 9, 3))[:, :, 1])


def test_truncated_npy(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, _volume())
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"not a readable \.npy array: .*cut\.npy"):
        LoadVolumed()({"image": str(path)})


def test_object_npy_is_refused(tmp_path):
    path = tmp_path / "pickled.npy"
    np.save(path, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"not a readable \.npy array: .*pickled\.npy"):
        LoadVolumed()({"image": str(path)})


def test_wrong_ndim_npy(tmp_path):
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"flat\.npy has shape \(8, 8\); expected 3 dimensions"):
        LoadVolumed()({"image": str(path)})
    np.save(path, np.zeros((2, 3, 8, 8), np.uint8))  # 4D but two channels
    with pytest.raises(ValueError, match=r"flat\.npy has shape \(2, 3, 8, 8\)"):
        LoadVolumed()({"image": str(path)})


def test_missing_file_and_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        LoadVolumed()({"image": str(tmp_path / "nope.npy")})
    with pytest.raises(KeyError):
        LoadVolumed()({"other": "x"})
    assert LoadVolumed(allow_missing_keys=True)({"other": "x"}) == {"other": "x"}
    with pytest.raises(TypeError, match="key 'image' must hold a file path"):
        LoadVolumed()({"image": np.zeros((3, 8, 8))})


def test_real_nifti_last_axis_becomes_slices():
    image = LoadVolumed()({"image": ANATOMICAL})["image"]
    h, w, d = nib.load(ANATOMICAL).shape
    assert image.shape == (1, d, h, w) and image.dtype == torch.float32
    assert image.meta["filename_or_obj"] == ANATOMICAL
    reference = np.asarray(nib.load(ANATOMICAL).dataobj, dtype=np.float32)
    np.testing.assert_allclose(image[0].numpy(), np.moveaxis(reference, -1, 0))
    # the affine follows the axes: the slice axis now maps through the original third column
    original = nib.load(ANATOMICAL).affine
    np.testing.assert_allclose(image.affine.numpy()[:3, 0], original[:3, 2])


def test_real_nifti_explicit_slice_axis():
    image = load_volume(ANATOMICAL, slice_axis=0)
    assert image.shape == (1,) + nib.load(ANATOMICAL).shape


def test_real_dicom_single_slice_gives_one_slice():
    path = get_testdata_file("CT_small.dcm")
    image = LoadVolumed()({"image": path})["image"]
    assert image.shape == (1, 1, 128, 128) and image.dtype == torch.float32
    assert image.meta["filename_or_obj"] == path


def test_multichannel_nifti_is_refused():
    with pytest.raises(ValueError, match=r"example4d\.nii\.gz has 2 channels"):
        load_volume(TIME_SERIES)


def test_unreadable_other_format(tmp_path):
    path = tmp_path / "broken.nii"
    path.write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match=r"not a readable volume: .*broken\.nii"):
        load_volume(path)


def test_bad_slice_axis(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, _volume())
    with pytest.raises(ValueError, match="slice_axis must be in -3..2"):
        load_volume(path, slice_axis=3)
