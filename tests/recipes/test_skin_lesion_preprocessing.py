"""The dermoscopy classification transforms: the fine-tuning/evaluation chain and the pre-training views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import CacheDataset, list_data_collate
from monai.transforms import Compose, DeleteItemsd, RandFlipd, Randomizable, RandRotated, Resized, ScaleIntensityRanged
from PIL import Image

from monai_ssl.engines import DeviceViews, MultiCropDeviceViews, prepare_view_list
from monai_ssl.recipes import skin_lesion_prepare_batch, skin_lesion_transforms, skin_lesion_view_transforms
from monai_ssl.recipes.skin_lesion_preprocessing import SKIN_LESION_ROTATION
from monai_ssl.transforms import (
    BYOLViewParamsd,
    BYOLViewsd,
    CompactUint8d,
    LoadDermoscopyd,
    MultiCropViewsd,
    NormalizeRedChanneld,
    normalize_red_channel,
)

SIZES = {"image_size": 32, "working_size": 64}


def _save(path, array) -> str:
    Image.fromarray(array).save(path)
    return str(path)


@pytest.fixture
def noisy_jpeg(tmp_path) -> str:
    """A 70 x 50 RGB JPEG of random values (a dermoscopy photograph stand-in)."""
    return _save(tmp_path / "ISIC_0000001.jpg", np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8))


@pytest.fixture
def planted(tmp_path) -> dict[str, str]:
    """A dark 64 x 64 PNG with a bright off-centre square, and its mask (255 on the square)."""
    image = np.full((64, 64, 3), 20, dtype=np.uint8)
    image[8:28, 36:56] = 240
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[8:28, 36:56] = 255
    return {"image": _save(tmp_path / "lesion.png", image), "mask": _save(tmp_path / "lesion_mask.png", mask)}


def _types(chain: Compose) -> list[type]:
    return [type(t) for t in chain.transforms]


def _first_random(chain: Compose) -> int:
    return next(i for i, t in enumerate(chain.transforms) if isinstance(t, Randomizable))


def test_evaluation_chain_shapes_range_and_determinism(noisy_jpeg):
    chain = skin_lesion_transforms(**SIZES, normalize_red=False)
    assert not any(isinstance(t, Randomizable) for t in chain.transforms)
    first = chain({"image": noisy_jpeg, "label": 2})
    assert type(first["image"]) is torch.Tensor and first["image"].dtype == torch.float32
    assert first["image"].shape == (3, 32, 32) and int(first["label"]) == 2
    assert 0.0 <= float(first["image"].min()) < float(first["image"].max()) <= 1.0
    assert torch.equal(first["image"], chain({"image": noisy_jpeg})["image"])  # no label (inference): same image
    multi_hot = chain({"image": noisy_jpeg, "label": [1, 0, 1]})["label"]
    assert multi_hot.tolist() == [1, 0, 1]


def test_both_resizes_come_before_any_random_transform():
    chain = skin_lesion_transforms(**SIZES, augment=True)
    resizes = [i for i, t in enumerate(chain.transforms) if isinstance(t, Resized)]
    assert [tuple(chain.transforms[i].resizer.spatial_size) for i in resizes] == [(64, 64), (32, 32)]
    assert chain.transforms[resizes[0]].mode == ("area", "nearest")
    assert max(resizes) < _first_random(chain)
    assert all(isinstance(t, Randomizable) for t in chain.transforms[_first_random(chain):-4])
    random_types = _types(chain)[_first_random(chain):_first_random(chain) + 3]
    assert random_types == [RandFlipd, RandFlipd, RandRotated]
    assert [t.flipper.spatial_axis for t in chain.transforms[_first_random(chain):][:2]] == [0, 1]
    rotate = chain.transforms[_first_random(chain) + 2]
    assert rotate.rand_rotate.range_x == pytest.approx((-math.radians(10), math.radians(10))) and rotate.prob == 0.5
    assert rotate.mode == ("bilinear", "nearest")
    assert SKIN_LESION_ROTATION == pytest.approx(0.174533, abs=1e-6)


def test_cache_dataset_keeps_the_resized_uint8_image(noisy_jpeg, tmp_path):
    chain = skin_lesion_transforms(**SIZES, augment=True)
    cached = Compose(chain.transforms[:_first_random(chain)])({"image": noisy_jpeg})
    assert cached["image"].dtype == torch.uint8 and cached["image"].shape == (3, 32, 32)
    dataset = CacheDataset([{"image": noisy_jpeg, "label": 1}], transform=chain, num_workers=0, progress=False)
    (tmp_path / "ISIC_0000001.jpg").unlink()  # a later epoch must not read (decode) the file again
    item = dataset[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32 and int(item["label"]) == 1


def test_augmentation_moves_image_and_mask_together(planted):
    chain = skin_lesion_transforms(**SIZES, augment=True, normalize_red=False)
    reference = skin_lesion_transforms(**SIZES, normalize_red=False)(dict(planted))
    assert reference["mask"].shape == (1, 32, 32) and set(reference["mask"].unique().tolist()) == {0.0, 1.0}
    changed = 0
    for seed in range(12):
        chain.set_random_state(seed)
        out = chain(dict(planted))
        image, mask = out["image"], out["mask"]
        assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}  # nearest interpolation keeps the mask binary
        bright = (image.mean(0, keepdim=True) > 0.5).float()
        overlap = float((bright * mask).sum()) / float(torch.maximum(bright, mask).sum())
        assert overlap > 0.85, f"seed {seed}: image and mask no longer aligned (IoU {overlap:.2f})"
        changed += not torch.equal(mask, reference["mask"])
    assert changed >= 6  # the flips and rotations did move the square


def test_augmentation_is_random_and_evaluation_is_not(planted):
    chain = skin_lesion_transforms(**SIZES, augment=True, normalize_red=False)
    outputs = []
    for seed in range(6):
        chain.set_random_state(seed)
        outputs.append(chain(dict(planted))["image"])
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


def test_red_channel_normalisation_only_when_on(tmp_path):
    uniform = _save(tmp_path / "uniform.png", np.broadcast_to(np.array([51, 102, 204], np.uint8), (40, 40, 3)).copy())
    off = skin_lesion_transforms(**SIZES, normalize_red=False)
    on = skin_lesion_transforms(**SIZES)  # the default
    assert NormalizeRedChanneld not in _types(off) and NormalizeRedChanneld in _types(on)
    plain = off({"image": uniform})["image"]
    # 51/255, 102/255, 204/255 = 0.2, 0.4, 0.8
    assert plain.mean(dim=(1, 2)).tolist() == pytest.approx([0.2, 0.4, 0.8], abs=1e-5)
    normalised = on({"image": uniform})["image"]
    # a constant red channel standardizes to 0; green and blue keep their values
    assert normalised.mean(dim=(1, 2)).tolist() == pytest.approx([0.0, 0.4, 0.8], abs=1e-5)


def test_red_channel_is_standardized_on_a_textured_image(noisy_jpeg):
    plain = skin_lesion_transforms(**SIZES, normalize_red=False)({"image": noisy_jpeg})["image"]
    red = skin_lesion_transforms(**SIZES)({"image": noisy_jpeg})["image"]
    assert float(red[0].mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(red[0].std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(red[1:], plain[1:])


def test_byol_views_in_the_workers(noisy_jpeg):
    chain = skin_lesion_view_transforms(False, **SIZES)
    assert _types(chain) == [LoadDermoscopyd, Resized, ScaleIntensityRanged, BYOLViewsd, NormalizeRedChanneld,
                             DeleteItemsd]
    assert chain.transforms[4].keys == ("view1", "view2")
    out = chain({"image": noisy_jpeg, "label": 1, "mask": "unused.png"})
    assert out["view1"].shape == out["view2"].shape == (3, 32, 32)
    assert "label" not in out and "mask" not in out
    assert float(out["view1"][1:].min()) >= 0.0 and float(out["view1"][1:].max()) <= 1.0
    plain = skin_lesion_view_transforms(False, **SIZES, normalize_red=False)({"image": noisy_jpeg})
    assert _types(skin_lesion_view_transforms(False, **SIZES, normalize_red=False))[-2:] == [BYOLViewsd, DeleteItemsd]
    assert 0.0 <= float(plain["view1"].min()) and float(plain["view1"].max()) <= 1.0


def test_dino_views_in_the_workers(noisy_jpeg):
    settings = {"method": "dino", "global_views": 2, "local_views": 3, "local_size": 16}
    chain = skin_lesion_view_transforms(False, **SIZES, method_settings=settings)
    assert isinstance(chain.transforms[3], MultiCropViewsd)
    out = chain({"image": noisy_jpeg, "label": 0})
    views = sorted(key for key in out if key.startswith("view"))
    assert views == ["view1", "view2", "view3", "view4", "view5"] and out["num_global_views"] == 2
    assert [tuple(out[k].shape) for k in views] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 3
    for key in views:  # every view's red channel standardized
        assert float(out[key][0].mean()) == pytest.approx(0.0, abs=1e-4)


def test_views_on_the_device_keep_uint8(noisy_jpeg):
    chain = skin_lesion_view_transforms(True, **SIZES, normalize_red=False)
    assert _types(chain) == [LoadDermoscopyd, Resized, CompactUint8d, BYOLViewParamsd, DeleteItemsd]
    out = chain({"image": noisy_jpeg, "label": 1})
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 64, 64)
    assert "view1_params" in out and "view2_params" in out and "label" not in out
    dino = skin_lesion_view_transforms(True, **SIZES, normalize_red=False,
                                       method_settings={"method": "dino", "local_views": 2, "local_size": 16})
    assert sorted(k for k in dino({"image": noisy_jpeg}) if k.endswith("_params")) == [
        f"view{i}_params" for i in range(1, 5)]


@pytest.mark.parametrize(("sizes", "message"), [
    ({"image_size": 0, "working_size": 64}, "`image_size` must be a positive whole number"),
    ({"image_size": 32, "working_size": 64.5}, "`working_size` must be a positive whole number"),
    ({"image_size": True, "working_size": 64}, "`image_size` must be a positive whole number"),
    ({"image_size": 64, "working_size": 32}, r"`working_size` \(32\) must be at least `image_size` \(64\)"),
])
def test_bad_sizes_are_refused_by_name(sizes, message):
    with pytest.raises(ValueError, match=message):
        skin_lesion_transforms(**sizes)
    with pytest.raises(ValueError, match=message):
        skin_lesion_view_transforms(False, **sizes)


def test_red_normalisation_with_device_views_is_done_by_the_prepare_batch(noisy_jpeg):
    """With views on the device the chain only draws parameters; the prepare_batch standardizes each view's red."""
    chain = skin_lesion_view_transforms(True, **SIZES)  # normalize_red=True by default: no longer refused
    assert _types(chain) == _types(skin_lesion_view_transforms(True, **SIZES, normalize_red=False))
    item = chain({"image": noisy_jpeg, "label": 0})
    assert item["image"].dtype == torch.uint8
    batch = list_data_collate([item, chain({"image": noisy_jpeg})])
    prepare = skin_lesion_prepare_batch(None, views_on_device=True)
    assert isinstance(prepare, DeviceViews) and prepare.normalize_red is True
    plain = DeviceViews()(batch, "cpu")
    for view, raw in zip(prepare(batch, "cpu"), plain):
        assert view.shape == (2, 3, 32, 32)
        assert torch.equal(view[:, 1:], raw[:, 1:])
        for i in range(2):
            assert torch.equal(view[i], normalize_red_channel(raw[i]))
    dino = {"method": "dino", "local_views": 2, "local_size": 16}
    multi = skin_lesion_prepare_batch(dino, views_on_device=True)
    assert isinstance(multi, MultiCropDeviceViews) and multi.normalize_red is True
    assert skin_lesion_prepare_batch({"method": "cass"}, True, normalize_red=False).normalize_red is False
    assert skin_lesion_prepare_batch(dino, views_on_device=False) is prepare_view_list


def test_display_key_keeps_the_image_as_a_person_sees_it(noisy_jpeg):
    """``display_key``: a uint8 copy before the intensity steps, so saliency pictures show the lesion's colours."""
    shown = skin_lesion_transforms(image_size=32, working_size=48, display_key="display")({"image": noisy_jpeg})
    plain = skin_lesion_transforms(image_size=32, working_size=48, normalize_red=False)({"image": noisy_jpeg})
    assert shown["display"].dtype == torch.uint8 and tuple(shown["display"].shape) == (3, 32, 32)
    assert torch.allclose(shown["display"].float() / 255.0, plain["image"], atol=1e-6)  # the scaled input, unstandardized
    assert not torch.allclose(shown["image"][0], plain["image"][0])  # the network's input has the red channel standardized
    assert "display" not in skin_lesion_transforms(image_size=32, working_size=48)({"image": noisy_jpeg})
