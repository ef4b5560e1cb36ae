"""Tests of PiCIE's geometric transform: exact identity and flips, crops, equivariance on feature maps, errors."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

from monai_ssl.transforms import geometric_transform, photometric_views, picie_view_params


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
