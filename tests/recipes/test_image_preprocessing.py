"""The 2D image transforms: one chain for validation, evaluation, inference and scoring, the augmented one, the views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import DeleteItemsd, EnsureTyped, RandFlipd, RandRotated, Resized, ScaleIntensityd
from PIL import Image

from monai_ssl.recipes import image_transforms, image_view_transforms
from monai_ssl.recipes.image_preprocessing import FINE_TUNING_ROTATION
from monai_ssl.transforms import BYOLViewParamsd, BYOLViewsd, CompactUint8d, LoadImage2Dd


def _image(tmp_path, height=30, width=40, mode="L"):
    path = tmp_path / f"scan_{mode}.png"
    shape = (height, width) if mode == "L" else (height, width, 3)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8), mode=mode).save(path)
    return {"image": str(path), "label": 2, "id": path.name}


def _types(compose):
    return [type(t) for t in compose.transforms]


def test_evaluation_chain(tmp_path):
    chain = image_transforms(in_channels=1, image_size=16)
    assert _types(chain) == [LoadImage2Dd, ScaleIntensityd, Resized, EnsureTyped]
    assert tuple(chain.transforms[2].resizer.spatial_size) == (16, 16) and chain.transforms[2].resizer.mode == "area"
    item = _image(tmp_path, mode="RGB")
    out = chain(dict(item))
    assert out["image"].shape == (1, 16, 16) and type(out["image"]) is torch.Tensor
    assert 0.0 <= float(out["image"].min()) < float(out["image"].max()) <= 1.0 and int(out["label"]) == 2
    assert torch.equal(out["image"], chain(dict(item))["image"])
    assert image_transforms(3, 16)({"image": item["image"]})["image"].shape == (3, 16, 16)  # no label: inference


def test_fine_tuning_chain(tmp_path):
    chain = image_transforms(in_channels=1, image_size=16, augment=True)
    assert _types(chain) == [LoadImage2Dd, ScaleIntensityd, Resized, RandFlipd, RandRotated, EnsureTyped]
    assert chain.transforms[3].flipper.spatial_axis == 1
    assert chain.transforms[4].rand_rotate.range_x == (-FINE_TUNING_ROTATION, FINE_TUNING_ROTATION)
    assert FINE_TUNING_ROTATION == pytest.approx(0.17)  # 10 degrees
    assert chain(_image(tmp_path))["image"].shape == (1, 16, 16)


def test_views_drop_the_label(tmp_path):
    in_workers = image_view_transforms(False, in_channels=1, image_size=16)
    assert _types(in_workers) == [LoadImage2Dd, ScaleIntensityd, BYOLViewsd, DeleteItemsd]
    out = in_workers(_image(tmp_path))
    assert out["view1"].shape == out["view2"].shape == (1, 16, 16) and "label" not in out
    on_device = image_view_transforms(True, in_channels=1, image_size=16, working_size=24)
    assert _types(on_device) == [LoadImage2Dd, Resized, CompactUint8d, BYOLViewParamsd, DeleteItemsd]
    out = on_device(_image(tmp_path))
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (1, 24, 24) and "label" not in out
    own_size = image_view_transforms(True, in_channels=1, image_size=16, working_size=0)(_image(tmp_path))
    assert own_size["image"].shape == (1, 30, 40)  # working_size 0: each image keeps its size


@pytest.mark.parametrize(("in_channels", "image_size", "message"),
                         [(2, 16, "`in_channels` must be 1"), (1, 0, "`image_size` must be a positive")])
def test_bad_settings_are_refused_by_name(in_channels, image_size, message):
    with pytest.raises(ValueError, match=message):
        image_transforms(in_channels, image_size)
    with pytest.raises(ValueError, match=message):
        image_view_transforms(True, in_channels, image_size)
