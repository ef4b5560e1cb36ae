"""Tests of PiCIE's views: deterministic draws, photometric views, the geometric transform and its equivariance."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

from monai_ssl.transforms import (
    VIEW_PARAM_FIELDS,
    PiCIEAugmentation,
    PiCIEViewParams,
    geometric_transform,
    photometric_views,
    picie_view_params,
)
from monai_ssl.transforms.picie_views import image_seed

FIELD = {name: i for i, name in enumerate(VIEW_PARAM_FIELDS)}


def _extract(x: torch.Tensor) -> torch.Tensor:
    """A stand-in for a stride-4 feature extractor."""
    return F.avg_pool2d(x, 4)


def _smooth_image(batch: int = 4, side: int = 64) -> torch.Tensor:
    """Low-frequency sines in [0, 1]: wavelengths 64 px (channels 0, 2) and 64 * 1.5 / sqrt(5) ~ 43 px (channel 1)."""
    yy, xx = torch.meshgrid(torch.arange(side) + 0.5, torch.arange(side) + 0.5, indexing="ij")
    k = 2 * math.pi / side
    channels = [
        torch.sin(k * xx) * torch.cos(k * yy),
        torch.sin(k * (xx + 2 * yy) / 1.5),
        torch.cos(k * yy),
    ]
    return (0.5 + 0.5 * torch.stack(channels))[None].repeat(batch, 1, 1, 1)


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


# ---- the geometric transform -----------------------------------------------------------------------------------


def test_identity_is_exact_and_flips_equal_torch_flip() -> None:
    x = torch.rand(4, 3, 12, 20)
    g = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 0, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.float64)
    y = geometric_transform(x, g)
    assert torch.equal(y[0], x[0])
    assert torch.equal(y[1], x[1].flip(-1))
    assert torch.equal(y[2], x[2].flip(-2))
    assert torch.equal(y[3], x[3].flip(-1).flip(-2))
    mixed = g.clone()
    mixed[0, :4] = torch.tensor([0.25, 0.25, 0.5, 0.5])  # a cropped image does not disturb the others
    y = geometric_transform(x, mixed)
    assert torch.equal(y[1], x[1].flip(-1)) and torch.equal(y[3], x[3].flip(-1).flip(-2))


def test_crop_is_the_resized_box() -> None:
    x = torch.rand(1, 2, 16, 16)
    g = torch.tensor([[0.25, 0.125, 0.5, 0.5, 0, 0]], dtype=torch.float64)  # rows 4:12, columns 2:10
    expected = x[:, :, 4:12, 2:10]
    assert torch.allclose(geometric_transform(x, g, size=(8, 8)), expected, atol=1e-6)
    down = F.interpolate(expected, size=(4, 4), mode="bilinear", align_corners=False)
    assert torch.allclose(geometric_transform(x, g, size=(4, 4)), down, atol=1e-6)
    # Upsampling: equal to F.interpolate of the crop away from its border (there grid_sample reads the
    # pixels just outside the box where F.interpolate repeats the box's edge).
    up = F.interpolate(expected, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(geometric_transform(x, g)[..., 1:-1, 1:-1], up[..., 1:-1, 1:-1], atol=1e-5)
    flipped = g.clone()
    flipped[0, 4:] = 1
    assert torch.allclose(geometric_transform(x, flipped, size=(8, 8)), expected.flip(-1).flip(-2), atol=1e-6)


def test_equivariance_of_flips_is_exact() -> None:
    # Multiples of 1/16: the 4 x 4 means are exact in float32 whatever the summation order, so any
    # difference would come from the transform itself.
    x = torch.randint(0, 17, (4, 3, 32, 32)).float() / 16
    g = picie_view_params(range(4), 0, 0).geometric.clone()
    g[:, :4] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    g[:, 4:] = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.float64)
    assert torch.equal(geometric_transform(_extract(x), g), _extract(geometric_transform(x, g)))


def test_equivariance_of_crops() -> None:
    """``G(E(x))`` against ``E(G(x))`` for the drawn crops (and flips) on a smooth image.

    Both sides estimate the crop of the same smooth field on the 16 x 16 feature grid; they differ by
    bilinear interpolation on the stride-4 grid (error <= spacing^2 / 8 * max|f''| = 16 / 8 * 0.5 *
    (2 pi / 43)^2 ~ 0.021 for the shortest wavelength, 43 px, amplitude 0.5) and by the 4 x 4 means over
    differently placed pixels (of the same order). Tolerance 0.05 is about twice that bound; a wrong
    box (the boxes of other images) is off by more than 0.2, so the test can fail.
    """
    x = _smooth_image()
    g = picie_view_params(range(4), epoch=1, seed=0).geometric
    assert (g[:, 2] < 0.95).all()  # real crops
    transformed_features = geometric_transform(_extract(x), g)
    features_of_transformed = _extract(geometric_transform(x, g))
    assert transformed_features.shape == features_of_transformed.shape == (4, 3, 16, 16)
    assert (transformed_features - features_of_transformed).abs().max() < 0.05
    wrong = g.clone()
    wrong[:, :2] = g[:, :2].flip(0)
    wrong[:, 2:4] = g[:, 2:4].flip(0)
    assert (geometric_transform(_extract(x), wrong) - features_of_transformed).abs().max() > 0.2
    # Other sizes: a 2x image into the crop at the feature size, as the reference's view 1 (res2 -> res1).
    big = F.interpolate(x, size=(128, 128), mode="bilinear", align_corners=False)
    assert (_extract(geometric_transform(big, g, size=(64, 64))) - transformed_features).abs().max() < 0.05


def test_geometric_dtypes() -> None:
    x = _smooth_image(2, 32)
    g = picie_view_params([0, 1], 0, 0).geometric
    reference = geometric_transform(x, g)
    for dtype in (torch.float64, torch.bfloat16):
        y = geometric_transform(x.to(dtype), g)
        assert y.dtype == dtype
        assert torch.allclose(y.float(), reference, atol=2e-2)


def test_geometric_errors() -> None:
    x = torch.rand(2, 3, 8, 8)
    good = torch.tensor([[0, 0, 1, 1, 0, 0]] * 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        geometric_transform(x[0], good)
    with pytest.raises(ValueError, match=r"must be \(2, 6\)"):
        geometric_transform(x, good[:1])
    outside = good.clone()
    outside[0, :4] = torch.tensor([0.6, 0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="inside"):
        geometric_transform(x, outside)
    with pytest.raises(ValueError, match="size"):
        geometric_transform(x, good, size=(0, 4))


@pytest.mark.gpu
def test_views_on_cuda() -> None:
    """Both functions on ``cuda`` (``MONAI_SSL_TEST_DEVICE=cpu`` dry-runs on the CPU), under autocast too."""
    device = torch.device("cpu" if os.environ.get("MONAI_SSL_TEST_DEVICE", "cuda") == "cpu" else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA")
    images = _smooth_image(4, 32)
    params = picie_view_params(range(4), epoch=0, seed=3)
    cpu_views = photometric_views(images, params)
    views = photometric_views(images.to(device), params)
    for view, cpu_view in zip(views, cpu_views):
        assert view.device.type == device.type
        assert torch.allclose(view.cpu(), cpu_view, atol=1e-4)
    y = geometric_transform(views[0], params.geometric)
    assert y.device.type == device.type
    assert torch.allclose(y.cpu(), geometric_transform(cpu_views[0], params.geometric), atol=1e-4)
    features = _extract(views[1])
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16):
        half = geometric_transform(features.to(torch.bfloat16 if device.type == "cpu" else torch.float16), params.geometric)
    assert half.device.type == device.type and half.shape == features.shape
    assert torch.allclose(half.float(), geometric_transform(features, params.geometric), atol=2e-2)
