"""Tests for DINO's multi-crop views (monai_ssl.transforms.multi_crop)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from monai.data import DataLoader, Dataset, list_data_collate
from monai.transforms import Compose

from monai_ssl.transforms import MultiCropViewsd, multi_crop_view_keys

GLOBAL, LOCAL = 24, 12
NO_COLOUR = {"flip_prob": 0.0, "jitter_prob": 0.0, "grayscale_prob": 0.0}


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _small(**kwargs: Any) -> MultiCropViewsd:
    """DINO's defaults at small sizes (global 24 px, local 12 px)."""
    kwargs.setdefault("global_size", GLOBAL)
    kwargs.setdefault("local_size", LOCAL)
    return MultiCropViewsd(**kwargs)


def _ramp_image(size: int) -> torch.Tensor:
    """RGB image whose red channel is the row and green channel the column, both scaled to [0, 1]."""
    ramp = torch.arange(size, dtype=torch.float32) / (size - 1)
    rows, cols = ramp[:, None].expand(size, size), ramp[None, :].expand(size, size)
    return torch.stack([rows, cols, torch.full((size, size), 0.5)])


def test_view_keys_helper() -> None:
    assert multi_crop_view_keys(2, 3) == ("view1", "view2", "view3", "view4", "view5")
    assert multi_crop_view_keys(1, 0, prefix="crop") == ("crop1",)


def test_dino_defaults_match_the_paper() -> None:
    t = MultiCropViewsd()
    assert (t.global_views, t.local_views) == (2, 6)
    assert (t.global_size, t.local_size) == ((224, 224), (96, 96))
    assert (t.global_scale, t.local_scale) == ((0.4, 1.0), (0.05, 0.4))
    assert [(v.blur_prob, v.solarize_prob) for v in t.views] == [(1.0, 0.0), (0.1, 0.2)] + [(0.5, 0.0)] * 6
    assert [v.crop_scale for v in t.views] == [(0.4, 1.0)] * 2 + [(0.05, 0.4)] * 6
    for v in t.views:  # BYOL's flip and colour jitter
        assert (v.flip_prob, v.jitter_prob, v.grayscale_prob) == (0.5, 0.8, 0.2)
        assert (v.brightness, v.contrast, v.hue) == ((0.6, 1.4), (0.6, 1.4), (-0.1, 0.1))
    assert len({id(v) for v in t.views}) == 8  # independent views


@pytest.mark.parametrize("channels", [1, 3])
def test_number_and_sizes_of_the_views(channels: int) -> None:
    data = {"image": _rand(channels, 50, 60), "id": "case0"}
    out = _small(local_views=5, local_size=(12, 8)).set_random_state(0)(data)
    assert set(out) == {"id", "num_global_views", *(f"view{i}" for i in range(1, 8))}
    assert out["num_global_views"] == 2
    assert "image" in data  # the input dict is not changed
    for i in (1, 2):
        assert tuple(out[f"view{i}"].shape) == (channels, GLOBAL, GLOBAL)
    for i in range(3, 8):
        assert tuple(out[f"view{i}"].shape) == (channels, 12, 8)
    for i in range(1, 8):
        view = out[f"view{i}"]
        assert type(view) is torch.Tensor and view.dtype == torch.float32
        assert view.min() >= 0.0 and view.max() <= 1.0
    kept = _small(global_views=3, local_views=0, view_keys_prefix="crop", keep_source=True)(data)
    assert set(kept) == {"image", "id", "num_global_views", "crop1", "crop2", "crop3"}
    assert kept["num_global_views"] == 3


def test_volume_slices_share_one_crop_per_view() -> None:
    slice_ = _rand(1, 40, 40)
    volume = slice_.unsqueeze(1).repeat(1, 4, 1, 1)  # (C, S, H, W), four equal slices
    out = _small(augmentation_kwargs={"jitter_prob": 0.0}).set_random_state(3)({"image": volume})
    for i in range(1, 9):
        view = out[f"view{i}"]
        assert tuple(view.shape) == (1, 4, *((GLOBAL,) * 2 if i <= 2 else (LOCAL,) * 2))
        for s in range(1, 4):
            torch.testing.assert_close(view[:, s], view[:, 0])


def test_crop_area_fraction_within_each_kinds_range() -> None:
    """Measure the crop area on a row/column ramp: its value range in a view spans the crop box."""
    size = 120
    img = _ramp_image(size)
    t = _small(global_blur_probs=0.0, global_solarize_probs=0.0, local_blur_prob=0.0, augmentation_kwargs=NO_COLOUR)
    t.set_random_state(0)
    fractions: dict[str, list[float]] = {"global": [], "local": []}
    for _ in range(100):
        out = t({"image": img})
        for i, (key, view) in enumerate(zip(t.view_keys, t.views)):
            pixels = out[key]
            out_h, out_w = pixels.shape[-2:]
            # a ramp resized to n pixels spans (n - 1) / n of its crop side
            h = float(pixels[0].max() - pixels[0].min()) * (size - 1) * out_h / (out_h - 1)
            w = float(pixels[1].max() - pixels[1].min()) * (size - 1) * out_w / (out_w - 1)
            measured = h * w / size**2
            _, _, box_h, box_w = view.sampled_params.crop
            assert measured == pytest.approx(box_h * box_w / size**2, rel=0.08)
            fractions["global" if i < t.global_views else "local"].append(measured)
    g, loc = fractions["global"], fractions["local"]
    assert 0.4 * 0.95 <= min(g) < 0.5 and 0.85 < max(g) <= 1.0
    assert 0.05 * 0.9 <= min(loc) < 0.1 and 0.3 < max(loc) <= 0.4 * 1.05


def test_blur_and_solarize_rates_per_view_kind() -> None:
    """DINO's asymmetry: global 1 always blurs, global 2 blurs 10% and solarizes 20%, locals blur 50%."""
    img = torch.full((1, 40, 40), 0.9)  # crop, flip and blur keep it constant; solarization makes it 0.1
    t = _small(local_views=6, augmentation_kwargs={"jitter_prob": 0.0}).set_random_state(1)
    draws = 400
    blurred = torch.zeros(len(t.views))
    solarized = torch.zeros(len(t.views))
    for _ in range(draws):
        out = t({"image": img})
        for i, (key, view) in enumerate(zip(t.view_keys, t.views)):
            pixels = out[key]
            is_solarized = torch.allclose(pixels, torch.full_like(pixels, 0.1), atol=1e-5)
            assert is_solarized or torch.allclose(pixels, torch.full_like(pixels, 0.9), atol=1e-5)
            assert is_solarized == view.sampled_params.solarize
            solarized[i] += is_solarized
            blurred[i] += view.sampled_params.blur_sigma is not None
    blur_rate, solarize_rate = blurred / draws, solarized / draws
    assert blur_rate[0] == 1.0 and solarize_rate[0] == 0.0
    assert 0.05 <= blur_rate[1] <= 0.15 and 0.15 <= solarize_rate[1] <= 0.25
    assert 0.45 <= blur_rate[2:].mean() <= 0.55 and solarize_rate[2:].sum() == 0.0
    assert ((blur_rate[2:] > 0.4) & (blur_rate[2:] < 0.6)).all()  # each local view, not just their mean


def test_more_global_views_cycle_dinos_pair() -> None:
    t = _small(global_views=4, local_views=1)
    assert [(v.blur_prob, v.solarize_prob) for v in t.views] == [(1.0, 0.0), (0.1, 0.2)] * 2 + [(0.5, 0.0)]
    one = _small(global_blur_probs=0.3, global_solarize_probs=(0.1,), local_views=0)
    assert [(v.blur_prob, v.solarize_prob) for v in one.views] == [(0.3, 0.1)] * 2


def test_same_seed_same_views_different_seed_different() -> None:
    img = _rand(3, 48, 48)

    def run(seed: int) -> list[torch.Tensor]:
        pipeline = Compose([_small(local_views=3)]).set_random_state(seed)
        outs = [pipeline({"image": img}) for _ in range(3)]
        return [o[f"view{i}"] for o in outs for i in range(1, 6)]

    first, again, other = run(4), run(4), run(5)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    # the views of one item are drawn independently of each other
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[2], first[3])


def test_collates_into_batches_with_list_data_collate() -> None:
    items = [{"image": _rand(1, 40, 36, seed=i)} for i in range(3)]
    loader = DataLoader(Dataset(items, transform=_small(local_views=2)), batch_size=3, collate_fn=list_data_collate)
    batch = next(iter(loader))
    assert tuple(batch["view1"].shape) == tuple(batch["view2"].shape) == (3, 1, GLOBAL, GLOBAL)
    assert tuple(batch["view3"].shape) == tuple(batch["view4"].shape) == (3, 1, LOCAL, LOCAL)
    assert batch["num_global_views"].tolist() == [2, 2, 2]


def test_rejects_bad_input_image() -> None:
    with pytest.raises(ValueError, match="C in"):
        _small()({"image": _rand(2, 20, 20)})


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"global_size": 0}, "global_size"),
        ({"local_size": (12, -1)}, "local_size"),
        ({"local_size": 9.5}, "local_size"),
        ({"global_scale": (0.6, 0.4)}, "global_scale"),
        ({"global_scale": (0.4, 1.5)}, "global_scale"),
        ({"local_scale": (0.0, 0.4)}, "local_scale"),
        ({"local_scale": 0.3}, "local_scale"),
        ({"global_views": 0}, "global_views"),
        ({"local_views": -1}, "local_views"),
        ({"global_blur_probs": (1.0, 1.2)}, "global_blur_probs"),
        ({"global_solarize_probs": ()}, "global_solarize_probs"),
        ({"local_blur_prob": -0.1}, "local_blur_prob"),
        ({"augmentation_kwargs": {"blur_prob": 0.2}}, "augmentation_kwargs"),
        ({"keys": "view1"}, "view_keys_prefix"),
        ({"keys": ("image", "label")}, "exactly one source key"),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(ValueError, match=setting):
        _small(**kwargs)
