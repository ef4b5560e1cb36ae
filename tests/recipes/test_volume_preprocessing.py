"""The BYOLMed2D exam transforms: one chain for evaluation and inference, the augmented one for fine-tuning, the views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import EnsureTyped, RandFlipd, RandRotated, Resized, ScaleIntensityd

from monai_ssl.recipes import volume_transforms, volume_view_transforms
from monai_ssl.recipes.volume_preprocessing import FINE_TUNING_ROTATION
from monai_ssl.transforms import BYOLViewParamsd, BYOLViewsd, CompactUint8d, LoadVolumed, SampleSlicesd


def _exam(tmp_path, slices=7, size=40, seed=0):
    path = tmp_path / f"exam{seed}.npy"
    np.save(path, np.random.default_rng(seed).integers(0, 256, (slices, size, size)).astype(np.uint8))
    return {"image": str(path), "label": np.array([1.0], dtype=np.float32), "id": "0001"}


def _types(compose):
    return [type(t) for t in compose.transforms]


def test_evaluation_chain_is_deterministic_and_sized(tmp_path):
    chain = volume_transforms(num_slices=4, image_size=16)
    assert _types(chain) == [LoadVolumed, SampleSlicesd, ScaleIntensityd, Resized, EnsureTyped]
    assert chain.transforms[1].random_sampling is False
    assert tuple(chain.transforms[3].resizer.spatial_size) == (-1, 16, 16)
    item = _exam(tmp_path)
    first, again = chain(dict(item)), chain(dict(item))
    assert first["image"].shape == (1, 4, 16, 16) and type(first["image"]) is torch.Tensor  # no meta: track_meta False
    assert float(first["image"].min()) >= 0.0 and float(first["image"].max()) <= 1.0
    assert torch.equal(first["image"], again["image"]) and first["label"].shape == (1,)
    unlabeled = chain({"image": item["image"]})  # inference: no label, no error
    assert "label" not in unlabeled and unlabeled["image"].shape == (1, 4, 16, 16)


def test_fine_tuning_chain_adds_random_slices_flip_and_rotation(tmp_path):
    chain = volume_transforms(num_slices=4, image_size=16, augment=True)
    assert _types(chain) == [LoadVolumed, SampleSlicesd, ScaleIntensityd, Resized, RandFlipd, RandRotated, EnsureTyped]
    assert chain.transforms[1].random_sampling is True
    assert chain.transforms[4].prob == 0.5 and chain.transforms[4].flipper.spatial_axis == 2
    assert chain.transforms[5].rand_rotate.range_x == (-FINE_TUNING_ROTATION, FINE_TUNING_ROTATION)
    assert FINE_TUNING_ROTATION == pytest.approx(0.26)  # 15 degrees
    assert chain(_exam(tmp_path))["image"].shape == (1, 4, 16, 16)


def test_views_in_the_workers_or_their_parameters_for_the_device(tmp_path):
    in_workers = volume_view_transforms(False, num_slices=4, image_size=16)
    assert _types(in_workers) == [LoadVolumed, SampleSlicesd, ScaleIntensityd, BYOLViewsd]
    out = in_workers(_exam(tmp_path))
    assert out["view1"].shape == out["view2"].shape == (1, 4, 16, 16)
    on_device = volume_view_transforms(True, num_slices=4, image_size=16, byol_plus=True)
    assert _types(on_device) == [LoadVolumed, CompactUint8d, SampleSlicesd, BYOLViewParamsd]
    out = on_device(_exam(tmp_path))
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (1, 4, 40, 40)  # the views are made later
    assert {"view1_params", "view2_params"} <= set(out)


@pytest.mark.parametrize(("num_slices", "image_size", "name"), [(0, 16, "num_slices"), (4, 0, "image_size")])
def test_sizes_below_one_are_refused_by_name(num_slices, image_size, name):
    with pytest.raises(ValueError, match=f"`{name}` must be a positive"):
        volume_transforms(num_slices, image_size)
    with pytest.raises(ValueError, match=f"`{name}` must be a positive"):
        volume_view_transforms(False, num_slices, image_size)
