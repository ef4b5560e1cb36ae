"""Tests of PiCIE's views: deterministic draws and photometric views (the geometric transform: test_geometric_transform.py)."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.transforms import (
    VIEW_PARAM_FIELDS,
    PiCIEAugmentation,
    PiCIEViewParams,
    photometric_views,
    picie_view_params,
)
from monai_ssl.transforms.picie_views import image_seed

FIELD = {name: i for i, name in enumerate(VIEW_PARAM_FIELDS)}


def _rows(params: PiCIEViewParams) -> torch.Tensor:
    return torch.cat([params.photometric[0], params.photometric[1], params.geometric], 1)


# ---- the draws -------------------------------------------------------------------------------------------------


def test_draws_depend_only_on_seed_epoch_index() -> None:
    first = _rows(picie_view_params([5, 2, 9, 0], epoch=3, seed=11))
    shuffled = _rows(picie_view_params(torch.tensor([0, 9, 5, 2]), epoch=3, seed=11))
    order = {5: 0, 2: 1, 9: 2, 0: 3}
    for row, index in zip(shuffled, [0, 9, 5, 2]):
        assert torch.equal(row, first[order[index]])
    assert torch.equal(_rows(picie_view_params([9], epoch=3, seed=11))[0], first[2])  # batch size does not matter
    other_epoch = _rows(picie_view_params([5, 2, 9, 0], epoch=4, seed=11))
    other_seed = _rows(picie_view_params([5, 2, 9, 0], epoch=3, seed=12))
    for other in (other_epoch, other_seed):
        assert not torch.equal(other[:, -6:-2], first[:, -6:-2])  # other boxes for every image
        assert (other[:, -6:-4] != first[:, -6:-4]).all()


def test_image_seed_is_a_63_bit_mix() -> None:
    seeds = {image_seed(0, epoch, index) for epoch in range(4) for index in range(50)}
    assert len(seeds) == 200
    assert all(0 <= s < 2**63 for s in seeds)
    assert image_seed(1, 0, 0) != image_seed(0, 1, 0) != image_seed(0, 0, 1)


def test_parameter_ranges_and_frequencies() -> None:
    aug = PiCIEAugmentation()
    params = picie_view_params(range(400), epoch=0, seed=0, augmentation=aug)
    g = params.geometric
    assert g.shape == (400, 6) and g.dtype == torch.float64 and g.device.type == "cpu"
    top, left, height, width = g[:, :4].unbind(1)
    # The fractions are exact (no pixel rounding), so no tolerance is needed on the box.
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 1).all() and (left + width <= 1).all()
    assert torch.equal(height, width)  # square share of the image, as the reference's RandomResizedCrop
    assert (height >= aug.min_scale).all() and (height <= 1).all()
    assert (height * width >= aug.min_scale**2).all()  # area share: the reference's scale is on the side
    assert set(g[:, 4:].unique().tolist()) <= {0.0, 1.0}
    for column in (4, 5):  # 400 coins of p = 0.5: mean within 4.5 standard deviations (0.025)
        assert abs(g[:, column].mean().item() - 0.5) < 0.11
    for rows in params.photometric:
        assert rows.shape == (400, len(VIEW_PARAM_FIELDS)) and rows.dtype == torch.float64
        for name in ("brightness", "contrast", "saturation"):
            f = rows[:, FIELD[name]]
            assert (f >= 0.7 - 1e-12).all() and (f <= 1.3 + 1e-12).all()
            assert abs((f != 1.0).double().mean().item() - 0.8) < 0.1  # p = 0.8 per operation
        hue = rows[:, FIELD["hue"]]
        assert (hue.abs() <= 0.1).all() and abs((hue != 0).double().mean().item() - 0.8) < 0.1
        assert abs(rows[:, FIELD["grayscale"]].mean().item() - 0.2) < 0.1
        blur = rows[:, FIELD["blur_on"]] > 0
        assert abs(blur.double().mean().item() - 0.5) < 0.11
        sigma = rows[blur, FIELD["blur_sigma"]]
        assert (sigma >= 0.1).all() and (sigma <= 2.0).all()
        assert torch.equal(rows[:, FIELD["jitter_op0"] : FIELD["jitter_op3"] + 1], torch.arange(4.0).expand(400, 4))
        assert (rows[:, FIELD["solarize"]] == 0).all() and (rows[:, FIELD["cutout_on"]] == 0).all()
    assert not torch.equal(params.photometric[0], params.photometric[1])


def test_one_channel_keeps_only_intensity_jitter() -> None:
    rgb = picie_view_params(range(50), epoch=1, seed=2)
    gray = picie_view_params(range(50), epoch=1, seed=2, channels=1)
    for r, g in zip(rgb.photometric, gray.photometric):
        assert (g[:, FIELD["saturation"]] == 1).all() and (g[:, FIELD["hue"]] == 0).all()
        assert (g[:, FIELD["grayscale"]] == 0).all()
        for name in ("brightness", "contrast", "blur_on", "blur_sigma"):  # the same draws
            assert torch.equal(g[:, FIELD[name]], r[:, FIELD[name]])
    assert torch.equal(gray.geometric, rgb.geometric)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"brightness": -0.1}, "brightness"),
        ({"hue": 0.6}, "hue"),
        ({"jitter_prob": 1.5}, "jitter_prob"),
        ({"vflip_prob": -0.1}, "vflip_prob"),
        ({"blur_sigma": (0.0, 1.0)}, "blur_sigma"),
        ({"blur_sigma": (2.0, 1.0)}, "blur_sigma"),
        ({"min_scale": 0.0}, "min_scale"),
        ({"min_scale": 1.2}, "min_scale"),
    ],
)
def test_augmentation_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"PiCIEAugmentation.{field}"):
        PiCIEAugmentation(**kwargs)


def test_view_params_errors() -> None:
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        picie_view_params([0], 0, 0, channels=2)
    with pytest.raises(ValueError, match="1-D"):
        picie_view_params(torch.zeros(2, 2, dtype=torch.long), 0, 0)


# ---- the photometric views -------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 1])
def test_photometric_views(channels: int) -> None:
    torch.manual_seed(0)
    images = torch.rand(6, channels, 16, 20)
    params = picie_view_params(range(6), epoch=0, seed=0, channels=channels)
    view1, view2 = photometric_views(images, params)
    for view in (view1, view2):
        assert view.shape == images.shape and view.dtype == torch.float32 and view.device == images.device
        assert view.min() >= 0 and view.max() <= 1
    assert (view1 - view2).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every image's two views differ
    again = photometric_views(images.flip(0), picie_view_params([5, 4, 3, 2, 1, 0], epoch=0, seed=0, channels=channels))
    assert torch.allclose(again[0].flip(0), view1, atol=1e-6)


def test_photometric_identity_row_keeps_the_image() -> None:
    images = torch.rand(2, 3, 8, 8)
    aug = PiCIEAugmentation(jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0)
    view1, view2 = photometric_views(images, picie_view_params([0, 1], 0, 0, aug))
    assert torch.equal(view1, images) and torch.equal(view2, images)  # crop = whole image is exact
    gray = PiCIEAugmentation(jitter_prob=0.0, grayscale_prob=1.0, blur_prob=0.0)
    view1, _ = photometric_views(images, picie_view_params([0, 1], 0, 0, gray))
    luma = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    assert torch.allclose(view1, luma[:, None].expand_as(images), atol=1e-6)


def test_photometric_errors() -> None:
    params = picie_view_params([0, 1], 0, 0)
    with pytest.raises(ValueError, match="C in"):
        photometric_views(torch.rand(2, 2, 8, 8), params)
    with pytest.raises(ValueError, match="for a batch of 3"):
        photometric_views(torch.rand(3, 3, 8, 8), params)
