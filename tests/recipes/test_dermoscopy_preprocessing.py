"""The dermoscopy (ISIC) preprocessing recipes: the training chain and the evaluation/inference chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import (
    CastToTyped,
    CopyItemsd,
    EnsureTyped,
    RandFlipd,
    RandRotate90d,
    RandRotated,
    RandSpatialCropd,
    Resized,
    ScaleIntensityRanged,
)
from PIL import Image

from monai_ssl.recipes import dermoscopy_evaluation_transforms, dermoscopy_training_transforms
from monai_ssl.transforms import BinarizeMaskd, LoadDermoscopyd, NormalizeRedChanneld


@pytest.fixture
def lesion_files(tmp_path) -> dict[str, str]:
    """A 40x30 (W x H) RGB image with values up to 255 and its 0/255 mask."""
    rng = np.random.default_rng(0)
    image, mask = tmp_path / "case.png", tmp_path / "case_mask.png"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(image)
    Image.fromarray((rng.integers(0, 2, (30, 40)) * 255).astype(np.uint8)).save(mask)
    return {"image": str(image), "label": str(mask)}


def _types(chain) -> list[type]:
    return [type(t) for t in chain.transforms]


def test_training_chain_caches_resized_uint8_then_augments():
    chain = dermoscopy_training_transforms(working_size=48, patch_size=32)
    assert _types(chain) == [LoadDermoscopyd, BinarizeMaskd, Resized, CastToTyped, RandSpatialCropd, RandRotate90d,
                             RandFlipd, RandFlipd, RandRotated, ScaleIntensityRanged, EnsureTyped]
    resize, crop, rotate = chain.transforms[2], chain.transforms[4], chain.transforms[8]
    assert tuple(resize.resizer.spatial_size) == (48, 48) and resize.mode == ("bilinear", "nearest")
    assert tuple(crop.cropper.roi_size) == (32, 32) and not crop.cropper.random_size
    assert rotate.rand_rotate.range_x == (-0.35, 0.35)
    assert [t.flipper.spatial_axis for t in chain.transforms[6:8]] == [0, 1]
    with_red = dermoscopy_training_transforms(48, 32, normalize_red_channel=True)
    assert _types(with_red)[-3:] == [ScaleIntensityRanged, NormalizeRedChanneld, EnsureTyped]


def test_training_chain_gives_patches_with_and_without_a_mask(lesion_files):
    chain = dermoscopy_training_transforms(working_size=48, patch_size=32)
    chain.set_random_state(0)
    out = chain(dict(lesion_files))
    assert out["image"].shape == (3, 32, 32) and out["label"].shape == (1, 32, 32)
    assert out["image"].dtype == torch.float32 and 0.0 <= out["image"].min() and out["image"].max() <= 1.0
    assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
    assert type(out["image"]) is torch.Tensor  # no metadata
    unlabeled = chain({"image": lesion_files["image"]})
    assert unlabeled["image"].shape == (3, 32, 32) and "label" not in unlabeled


def test_evaluation_chain_resizes_the_image_only_and_keeps_the_original(lesion_files):
    chain = dermoscopy_evaluation_transforms(working_size=48)
    assert _types(chain) == [LoadDermoscopyd, BinarizeMaskd, CopyItemsd, Resized, ScaleIntensityRanged]
    out = chain(dict(lesion_files))
    assert out["image"].shape == (3, 48, 48)
    assert out["label"].shape == (1, 40, 30) and out["image_original"].shape == (3, 40, 30)  # (W, H): PILReader
    assert out["image"].max() <= 1.0 < out["image_original"].max()
    assert [op["class"] for op in out["image"].applied_operations] == ["Resize"]  # what Invertd undoes


def test_inference_chain_reads_images_only(lesion_files):
    chain = dermoscopy_evaluation_transforms(working_size=48, normalize_red_channel=True, labeled=False)
    assert _types(chain) == [LoadDermoscopyd, Resized, ScaleIntensityRanged, NormalizeRedChanneld]
    out = chain(dict(lesion_files))
    assert out["image"].shape == (3, 48, 48) and isinstance(out["label"], str)  # the mask path is not read


@pytest.mark.parametrize("bad", [0, -32, 2.5, True, "480"])
def test_sizes_must_be_positive_whole_numbers(bad):
    with pytest.raises((ValueError, TypeError)):
        dermoscopy_evaluation_transforms(working_size=bad)
    with pytest.raises((ValueError, TypeError)):
        dermoscopy_training_transforms(working_size=64, patch_size=bad)


def test_patch_larger_than_working_size_is_refused():
    with pytest.raises(ValueError, match=r"`patch_size` \(96\) must not exceed `working_size` \(64\)"):
        dermoscopy_training_transforms(working_size=64, patch_size=96)
