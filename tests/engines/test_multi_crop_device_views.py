"""``MultiCropDeviceViews`` with the red channel of RGB dermoscopy standardized on the device.

Run on the CPU (the batched code runs on any device): for one seed, the device path's views with
``normalize_red=True`` equal ``MultiCropViewsd`` followed by ``NormalizeRedChanneld`` image by image,
global and local views alike.
"""

from __future__ import annotations

import pytest
import torch
from monai.data import list_data_collate

from monai_ssl.engines import MultiCropDeviceViews
from monai_ssl.transforms import MultiCropViewParamsd, MultiCropViewsd, NormalizeRedChanneld, normalize_red_channel

KEYS = ("view1", "view2", "view3", "view4")
SETTINGS = {"global_views": 2, "global_size": (24, 24), "local_views": 2, "local_size": 12}


def _batches(channels: int, seed: int = 5) -> tuple[list[dict], dict]:
    images = torch.rand(6, channels, 40, 48, generator=torch.Generator().manual_seed(0))
    cpu = MultiCropViewsd(keys="image", **SETTINGS).set_random_state(seed)
    params = MultiCropViewParamsd(keys="image", **SETTINGS).set_random_state(seed)
    return [cpu({"image": img}) for img in images], list_data_collate([params({"image": img}) for img in images])


def test_red_channel_of_every_view_standardized_as_on_the_cpu_path() -> None:
    reference, batch = _batches(3)
    red = NormalizeRedChanneld(keys=list(KEYS))
    expected = [red(item) for item in reference]
    plain = MultiCropDeviceViews(scale_intensity=False)(batch, torch.device("cpu"), view_keys=KEYS)
    views = MultiCropDeviceViews(scale_intensity=False, normalize_red=True)(batch, torch.device("cpu"), view_keys=KEYS)
    assert [tuple(v.shape) for v in views] == [(6, 3, 24, 24)] * 2 + [(6, 3, 12, 12)] * 2
    for key, view, raw in zip(KEYS, views, plain):
        want = torch.stack([e[key] for e in expected])
        assert (view - want).abs().max() < 1e-3, key  # CPU views, then the CPU transform
        assert torch.equal(view[:, 1:], raw[:, 1:])
        for i in range(6):
            assert torch.equal(view[i], normalize_red_channel(raw[i]))
        means = view[:, 0].flatten(1).mean(1)
        stds = view[:, 0].flatten(1).std(1, unbiased=False)
        assert torch.allclose(means, torch.zeros(6), atol=1e-5) and torch.allclose(stds, torch.ones(6), atol=1e-4)


def test_off_by_default_and_refused_on_grey_images() -> None:
    _, batch = _batches(1)
    assert MultiCropDeviceViews().normalize_red is False
    views = MultiCropDeviceViews(scale_intensity=False)(batch, "cpu", view_keys=KEYS[:1])
    assert views[0].shape == (6, 1, 24, 24)
    with pytest.raises(ValueError, match=r"normalize_red=True .* shape \(6, 1, 24, 24\) \(expected 3 channels\)"):
        MultiCropDeviceViews(normalize_red=True, scale_intensity=False)(batch, "cpu", view_keys=KEYS[:1])
