"""The GPU path of the BYOL views: parameters drawn in the workers, the views made for a whole batch.

The batched code runs on any device, so these run on the CPU: for one seed the batched views equal
``BYOLViewsd``'s image by image, and the parameters follow the BYOL table (Grill et al. 2020, Table 6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.transforms import PadListDataCollate, ScaleIntensity

from monai_ssl.transforms import (
    VIEW_PARAM_FIELDS,
    BYOLViewParamsd,
    BYOLViewsd,
    apply_view_params,
    resize_matrices,
    scale_intensity_batch,
)

FIELD = {name: i for i, name in enumerate(VIEW_PARAM_FIELDS)}
TOLERANCE = 5e-5  # float32 rounding of two orders of the same sums; an operation gone wrong is >= 1e-2


def _images(batch: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed))


def _both_paths(images: torch.Tensor, seed: int, **kwargs) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """``BYOLViewsd`` image by image, and the batched views of ``BYOLViewParamsd``'s parameters, from one seed."""
    cpu = BYOLViewsd(keys="image", **kwargs).set_random_state(seed)
    params = BYOLViewParamsd(keys="image", **kwargs).set_random_state(seed)
    reference = [cpu({"image": img}) for img in images]
    drawn = [params({"image": img}) for img in images]
    batched = []
    for view_key, param_key in (("view1", "view1_params"), ("view2", "view2_params")):
        expected = torch.stack([r[view_key] for r in reference])
        p = torch.stack([d[param_key] for d in drawn])
        batched.append((expected, apply_view_params(images, p), p))
    return [b[0] for b in batched], [b[1] for b in batched], torch.stack([b[2] for b in batched])


@pytest.mark.parametrize("byol_plus", [False, True])
@pytest.mark.parametrize(
    "shape",
    [(1, 40, 56), (3, 40, 56), (1, 3, 40, 56), (3, 2, 30, 64), (1, 20, 20)],
    ids=["gray", "rgb", "gray-volume", "rgb-volume", "enlarged"],
)
def test_batched_views_equal_byolviewsd_for_the_same_seed(shape, byol_plus) -> None:
    images = _images(24, shape)
    expected, got, params = _both_paths(images, seed=5, spatial_size=24, byol_plus=byol_plus)
    for e, g in zip(expected, got):
        assert g.shape == e.shape == (24, shape[0], *shape[1:-2], 24, 24)
        assert g.dtype == torch.float32 and g.min() >= 0.0 and g.max() <= 1.0
        assert (g - e).abs().max() < TOLERANCE
    # the batch exercised the operations being compared: T blurs, T' solarizes some, flips and jitter both ways
    assert params[0, :, FIELD["blur_on"]].all() and params[1, :, FIELD["solarize"]].any()
    assert 0 < params[:, :, FIELD["flip"]].mean() < 1 and 0 < params[:, :, FIELD["jitter_on"]].mean() < 1


def test_rectangular_output_and_uint8_free_inputs() -> None:
    images = _images(6, (3, 50, 40), seed=2)
    expected, got, _ = _both_paths(images, seed=1, spatial_size=(20, 28))
    assert got[0].shape == (6, 3, 20, 28)
    assert (got[0] - expected[0]).abs().max() < TOLERANCE


def test_images_of_mixed_sizes_padded_at_the_end_give_the_cpu_views() -> None:
    """The bundles' collate pads each image at its bottom/right edge; crops drawn for its own size never reach it."""
    g = torch.Generator().manual_seed(6)
    sizes = [(30, 40), (44, 36), (28, 60), (44, 60)]
    images = [(torch.rand(1, h, w, generator=g) * 200 + 30).round().to(torch.uint8) for h, w in sizes]
    cpu = BYOLViewsd(keys="image", spatial_size=16).set_random_state(2)
    params = BYOLViewParamsd(keys="image", spatial_size=16).set_random_state(2)
    expected = [cpu({"image": ScaleIntensity(minv=0.0, maxv=1.0)(img.float())})["view2"] for img in images]
    batch = PadListDataCollate(method="end", mode="edge")([params({"image": img}) for img in images])
    assert batch["image"].shape == (4, 1, 44, 60)
    got = apply_view_params(scale_intensity_batch(batch["image"].as_tensor()), batch["view2_params"])
    assert (got - torch.stack(expected)).abs().max() < TOLERANCE


@pytest.mark.parametrize("start, length, in_size, out_size", [(3, 30, 48, 16), (0, 48, 48, 48), (5, 7, 20, 24), (2, 9, 9 + 2, 5)])
def test_resize_matrices_match_interpolate(start, length, in_size, out_size) -> None:
    """Each row is F.interpolate's bilinear weights for the crop (antialiased when shrinking)."""
    line = torch.rand(1, 1, 1, in_size)
    crop = line[..., start : start + length]
    shrink = length > out_size
    expected = F.interpolate(crop.expand(1, 1, 2, length), size=(2, out_size), mode="bilinear", align_corners=False, antialias=shrink)[0, 0, 0]
    matrix = resize_matrices(torch.tensor([float(start)]), torch.tensor([float(length)]), in_size, out_size)
    assert matrix.shape == (1, out_size, in_size)
    assert torch.allclose(matrix[0] @ line[0, 0, 0], expected, atol=1e-6)
    assert torch.allclose(matrix.sum(-1), torch.ones(1, out_size))  # rows are convex weights
    outside = torch.ones(in_size, dtype=torch.bool)
    outside[start : start + length] = False
    assert (matrix[0][:, outside] == 0).all()  # nothing from outside the crop
    flipped = resize_matrices(torch.tensor([float(start)]), torch.tensor([float(length)]), in_size, out_size, flip=torch.tensor([True]))
    assert torch.equal(flipped[0], matrix[0].flip(0))


def test_every_slice_of_a_volume_gets_the_same_parameters() -> None:
    """Identical slices stay identical; distinct slices equal the 2D views made with the volume's parameters."""
    slice_ = _images(1, (1, 36, 36), seed=3)[0]
    volume = torch.stack([slice_[0]] * 4)[None]  # (1, 4, 36, 36)
    params = BYOLViewParamsd(keys="image", spatial_size=16, byol_plus=True).set_random_state(0)
    vectors = torch.stack([params({"image": volume})["view2_params"] for _ in range(8)])
    views = apply_view_params(volume.expand(8, -1, -1, -1, -1).contiguous(), vectors)
    assert views.shape == (8, 1, 4, 16, 16)
    assert torch.equal(views, views[:, :, :1].expand_as(views))

    # distinct slices: each slice of the volume's view is the 2D view of that slice with the same parameters
    # (contrast blends with the mean over all slices, so it is switched off for this comparison)
    distinct = _images(8, (1, 4, 36, 36), seed=4)
    slice_wise = vectors.clone()
    slice_wise[:, FIELD["jitter_on"]] = 0
    slice_wise[:, FIELD["extra_contrast_on"]] = 0
    views = apply_view_params(distinct, slice_wise)
    for s in range(4):
        assert (views[:, :, s] - apply_view_params(distinct[:, :, s], slice_wise)).abs().max() < TOLERANCE


def test_parameter_rates_follow_the_byol_table() -> None:
    """Over many draws: blur 1.0 / 0.1 and solarize 0 / 0.2 in T / T'; flip 0.5, jitter 0.8, grayscale 0.2; crop area in [0.08, 1]."""
    draws = 4000
    params = BYOLViewParamsd(keys="image", spatial_size=224).set_random_state(0)
    image = torch.zeros(3, 300, 400)
    rows = [params({"image": image}) for _ in range(draws)]
    t, t_prime = (torch.stack([r[k] for r in rows]) for k in ("view1_params", "view2_params"))
    tol = 4 * np.sqrt(0.25 / draws)  # 4 standard errors of a rate

    def rate(p: torch.Tensor, name: str) -> float:
        return float(p[:, FIELD[name]].mean())

    assert rate(t, "blur_on") == 1.0 and abs(rate(t_prime, "blur_on") - 0.1) < tol
    assert rate(t, "solarize") == 0.0 and abs(rate(t_prime, "solarize") - 0.2) < tol
    for p in (t, t_prime):
        assert abs(rate(p, "flip") - 0.5) < tol
        assert abs(rate(p, "jitter_on") - 0.8) < tol
        assert abs(rate(p, "grayscale") - 0.2) < tol
        assert rate(p, "cutout_on") == rate(p, "extra_brightness_on") == rate(p, "extra_contrast_on") == 0.0
        area = p[:, FIELD["crop_height"]] * p[:, FIELD["crop_width"]] / (300 * 400)
        assert area.min() >= 0.08 * 0.97 and area.max() <= 1.0
        assert area.min() < 0.1 and area.max() > 0.9  # the whole range is used
        ratio = p[:, FIELD["crop_width"]] / p[:, FIELD["crop_height"]]
        assert ratio.min() >= 0.75 * 0.95 and ratio.max() <= 4 / 3 * 1.05
        sigma = p[p[:, FIELD["blur_on"]] > 0, FIELD["blur_sigma"]]
        assert sigma.min() >= 0.1 and sigma.max() <= 2.0
        assert (p[:, FIELD["out_height"]] == 224).all() and (p[:, FIELD["out_width"]] == 224).all()
    plus = BYOLViewParamsd(keys="image", spatial_size=224, byol_plus=True).set_random_state(0)
    extras = torch.stack([plus({"image": image})["view1_params"] for _ in range(draws)])
    for name in ("cutout_on", "extra_brightness_on", "extra_contrast_on"):
        assert abs(rate(extras, name) - 0.5) < tol


def test_scale_intensity_batch_matches_scale_intensity_per_image() -> None:
    images = torch.stack([_images(1, (1, 8, 8), seed=s)[0] * (s + 1) * 50 for s in range(3)] + [torch.full((1, 8, 8), 7.0)])
    got = scale_intensity_batch(images.to(torch.uint8))
    for img, out in zip(images.to(torch.uint8), got):
        assert torch.allclose(out, torch.as_tensor(ScaleIntensity(minv=0.0, maxv=1.0)(img.float())), atol=1e-6)
    assert (got[-1] == 0).all()  # a constant image becomes zeros, as MONAI does


def test_bad_inputs_are_named() -> None:
    params = BYOLViewParamsd(keys="image", spatial_size=8).set_random_state(0)
    vec = params({"image": torch.rand(1, 10, 10)})["view1_params"]
    with pytest.raises(ValueError, match="C in"):
        apply_view_params(torch.rand(2, 2, 10, 10), torch.stack([vec, vec]))
    with pytest.raises(ValueError, match="BYOLViewParamsd"):
        apply_view_params(torch.rand(2, 1, 10, 10), vec[None])
    other = BYOLViewParamsd(keys="image", spatial_size=6).set_random_state(0)({"image": torch.rand(1, 10, 10)})["view1_params"]
    with pytest.raises(ValueError, match="one output size"):
        apply_view_params(torch.rand(2, 1, 10, 10), torch.stack([vec, other]))
    with pytest.raises(ValueError, match=r"'image' must be \(C, H, W\)"):
        params({"image": torch.rand(2, 10, 10)})


def test_params_transform_keeps_the_image_and_adds_two_vectors() -> None:
    image = torch.rand(1, 12, 12)
    out = BYOLViewParamsd(keys="image", spatial_size=8).set_random_state(0)({"image": image, "id": "a"})
    assert out["image"] is image and out["id"] == "a"
    assert out["view1_params"].shape == out["view2_params"].shape == (len(VIEW_PARAM_FIELDS),)
    assert out["view1_params"].dtype == torch.float64
    assert not torch.equal(out["view1_params"], out["view2_params"])
