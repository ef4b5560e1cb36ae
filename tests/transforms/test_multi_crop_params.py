"""The device path of DINO's multi-crop: parameters drawn in the workers, every view made for a whole batch.

The batched code runs on any device, so these run on the CPU: for one seed, ``MultiCropViewParamsd`` draws
the parameters ``MultiCropViewsd`` draws, and ``MultiCropDeviceViews`` makes from them the views
``MultiCropViewsd`` makes image by image, global and local views each at their own size.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from monai.data import DataLoader, Dataset, list_data_collate
from monai.transforms import Compose, ScaleIntensityd

from monai_ssl.engines import MultiCropDeviceViews
from monai_ssl.transforms import (
    VIEW_PARAM_FIELDS,
    CompactUint8d,
    MultiCropViewParamsd,
    MultiCropViewsd,
    multi_crop_param_keys,
    view_params_vector,
)

FIELD = {name: i for i, name in enumerate(VIEW_PARAM_FIELDS)}
TOLERANCE = 5e-5  # as tests/transforms/test_batched_views.py: float32 rounding; an operation gone wrong is >= 1e-2
GLOBAL, LOCAL = (24, 20), 12
KEYS = ("view1", "view2", "view3", "view4")
SETTINGS: dict[str, Any] = {"global_views": 2, "global_size": GLOBAL, "local_views": 2, "local_size": LOCAL}


def _images(batch: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed))


def _both_paths(images: torch.Tensor, seed: int, **kwargs: Any) -> tuple[list[dict], list[dict]]:
    """``MultiCropViewsd`` and ``MultiCropViewParamsd`` items of every image, each transform seeded with ``seed``."""
    settings = {**SETTINGS, **kwargs}
    cpu = MultiCropViewsd(keys="image", **settings).set_random_state(seed)
    params = MultiCropViewParamsd(keys="image", **settings).set_random_state(seed)
    return [cpu({"image": img}) for img in images], [params({"image": img}) for img in images]


@pytest.mark.parametrize(
    "shape", [(1, 40, 56), (3, 40, 56), (3, 2, 30, 64)], ids=["gray", "rgb", "rgb-volume"]
)
def test_device_views_equal_multicropviewsd_for_the_same_seed(shape) -> None:
    images = _images(24, shape)
    reference, drawn = _both_paths(images, seed=5)
    batch = list_data_collate(drawn)
    views = MultiCropDeviceViews(scale_intensity=False)(batch, torch.device("cpu"), view_keys=KEYS)
    assert len(views) == 4
    sizes = [GLOBAL, GLOBAL, (LOCAL, LOCAL), (LOCAL, LOCAL)]
    for key, view, size in zip(KEYS, views, sizes):
        expected = torch.stack([r[key] for r in reference])
        assert view.shape == expected.shape == (24, *shape[:-2], *size)
        assert view.dtype == torch.float32 and view.min() >= 0.0 and view.max() <= 1.0
        assert (view - expected).abs().max() < TOLERANCE, key
    # the batch exercised what is compared: global 1 always blurs, global 2 solarizes some, locals blur some,
    # flips and colour jitter go both ways
    params = torch.stack([batch[f"{k}_params"] for k in KEYS])  # (4, B, fields)
    assert params[0, :, FIELD["blur_on"]].all() and params[1, :, FIELD["solarize"]].any()
    assert 0 < params[2:, :, FIELD["blur_on"]].float().mean() < 1
    assert 0 < params[:, :, FIELD["flip"]].mean() < 1 and 0 < params[:, :, FIELD["jitter_on"]].mean() < 1


def test_params_are_drawn_in_the_cpu_transforms_random_order() -> None:
    """Image after image, each vector equals the parameters the CPU transform's view sampled last."""
    cpu = MultiCropViewsd(keys="image", **SETTINGS).set_random_state(11)
    params = MultiCropViewParamsd(keys="image", **SETTINGS).set_random_state(11)
    seen = []
    for img in _images(6, (3, 33, 47), seed=1):
        cpu({"image": img})
        item = params({"image": img})
        for view, key in zip(cpu.views, multi_crop_param_keys(KEYS)):
            assert torch.equal(item[key], view_params_vector(view))
        seen.append(item["view3_params"])
    assert not torch.equal(seen[0], seen[1])  # the stream moves on from image to image
    # another seed draws other parameters
    other = MultiCropViewParamsd(keys="image", **SETTINGS).set_random_state(12)({"image": img})
    assert not torch.equal(other["view1_params"], item["view1_params"])


def test_keys_shapes_and_output_sizes_of_the_params() -> None:
    image = torch.rand(1, 40, 50)
    out = MultiCropViewParamsd(keys="image", **SETTINGS).set_random_state(0)({"image": image, "id": "a"})
    assert out["image"] is image and out["id"] == "a" and out["num_global_views"] == 2
    assert set(out) == {"image", "id", "num_global_views", *multi_crop_param_keys(KEYS)}
    for key, size in zip(multi_crop_param_keys(KEYS), [GLOBAL, GLOBAL, (LOCAL, LOCAL), (LOCAL, LOCAL)]):
        assert out[key].shape == (len(VIEW_PARAM_FIELDS),) and out[key].dtype == torch.float64
        assert tuple(out[key][:2].tolist()) == size
    height, width = FIELD["crop_height"], FIELD["crop_width"]
    crop_area = [float(out[k][height] * out[k][width]) / (40 * 50) for k in ("view1_params", "view3_params")]
    assert crop_area[0] >= 0.4 * 0.95 and crop_area[1] <= 0.4 * 1.05  # a global and a local crop
    custom = MultiCropViewParamsd(
        keys="img", global_views=1, local_views=0, view_keys_prefix="crop", param_keys_suffix="_p"
    )
    assert custom.param_keys == ("crop1_p",)


def _uint8_items(n: int = 8) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 200, 40).expand(40, 40)
    return [{"image": (ramp + 55 * torch.rand(40, 40, generator=g)).round()[None], "id": str(i)} for i in range(n)]


def _loader(transforms: list) -> DataLoader:
    torch.manual_seed(3)  # MONAI's DataLoader seeds the transforms from torch's generator when num_workers=0
    dataset = Dataset(_uint8_items(), transform=Compose(transforms))
    return DataLoader(dataset, batch_size=8, num_workers=0, collate_fn=list_data_collate)


def test_uint8_batches_from_a_monai_loader_give_the_cpu_views() -> None:
    """CompactUint8d + MultiCropViewParamsd, collated by list_data_collate, then scaled and viewed on the device."""
    scale = ScaleIntensityd(keys="image", minv=0.0, maxv=1.0)
    cpu = next(iter(_loader([scale, MultiCropViewsd(keys="image", **SETTINGS)])))
    batch = next(iter(_loader([CompactUint8d(keys="image"), MultiCropViewParamsd(keys="image", **SETTINGS)])))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (8, 1, 40, 40)
    assert batch["view4_params"].shape == (8, len(VIEW_PARAM_FIELDS)) and batch["num_global_views"].tolist() == [2] * 8
    views = MultiCropDeviceViews(view_keys=KEYS)(batch, "cpu", non_blocking=True)
    for key, view in zip(KEYS, views):
        assert view.shape == cpu[key].shape
        assert (view - cpu[key]).abs().max() < 1e-4  # as tests/engines/test_device_views.py (uint8 round trip)
    # the trainer may ask for a subset, in its own order
    two = MultiCropDeviceViews()(batch, "cpu", view_keys=("view3", "view1"))
    assert torch.equal(two[0], views[2]) and torch.equal(two[1], views[0])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(KeyError, match=r"need \['view2_params'\].*MultiCropViewParamsd"):
        MultiCropDeviceViews()({"image": torch.zeros(2, 1, 8, 8), "view1_params": torch.zeros(2, 30)}, "cpu")
    with pytest.raises(ValueError, match="at least one view"):
        MultiCropDeviceViews(view_keys=())
    with pytest.raises(ValueError, match=r"'image' must be \(C, H, W\)"):
        MultiCropViewParamsd(keys="image", **SETTINGS)({"image": torch.rand(2, 10, 10)})
    with pytest.raises(ValueError, match="parameter keys"):
        MultiCropViewParamsd(keys="view1_params", **SETTINGS)
