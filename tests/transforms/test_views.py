"""Tests for the BYOL views ``T`` / ``T'`` (monai_ssl.transforms.views)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_ssl.transforms import BYOLViewsd, ViewAugmentation, byol_view_pair
from monai_ssl.transforms.views import _adjust_hue, _blur_kernel_size, _gaussian_blur

SIZE = 32


def _plain(**kwargs: object) -> ViewAugmentation:
    """A view with every random operation off unless switched on in ``kwargs``."""
    settings: dict[str, object] = {
        "spatial_size": SIZE,
        "crop_scale": (1.0, 1.0),
        "crop_ratio": (1.0, 1.0),
        "flip_prob": 0.0,
        "jitter_prob": 0.0,
        "grayscale_prob": 0.0,
        "blur_prob": 0.0,
        "solarize_prob": 0.0,
    }
    settings.update(kwargs)
    return ViewAugmentation(**settings)  # type: ignore[arg-type]


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((1, 40, 48), (1, SIZE, SIZE)),
        ((3, 40, 48), (3, SIZE, SIZE)),
        ((1, 5, 40, 48), (1, 5, SIZE, SIZE)),
        ((3, 4, 40, 48), (3, 4, SIZE, SIZE)),
    ],
)
def test_shapes_dtype_and_range(shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    for byol_plus in (False, True):
        for view in byol_view_pair(SIZE, byol_plus=byol_plus):
            view.set_random_state(3)
            for _ in range(10):
                out = view(_rand(*shape))
                assert type(out) is torch.Tensor
                assert out.dtype == torch.float32
                assert tuple(out.shape) == expected
                assert out.min() >= 0.0 and out.max() <= 1.0


def test_rectangular_output_and_input_types() -> None:
    view = ViewAugmentation(spatial_size=(24, 16)).set_random_state(0)
    img = _rand(1, 30, 30).numpy().astype(np.float64)
    assert tuple(view(img).shape) == (1, 24, 16)
    meta = MetaTensor(_rand(1, 3, 30, 30), meta={"filename_or_obj": "x.nii"})
    out = view(meta)
    assert type(out) is torch.Tensor and tuple(out.shape) == (1, 3, 24, 16)


def test_rejects_bad_channel_count() -> None:
    with pytest.raises(ValueError, match="C in"):
        ViewAugmentation(SIZE)(_rand(2, 20, 20))


def test_input_is_not_modified() -> None:
    view = _plain(jitter_prob=1.0, cutout_prob=1.0, extra_brightness_prob=1.0).set_random_state(0)
    img = _rand(1, SIZE, SIZE)
    before = img.clone()
    view(img)
    assert torch.equal(img, before)
    arr = img.numpy().copy()
    view(arr)
    assert np.array_equal(arr, before.numpy())


def test_same_seed_same_views_different_seed_different() -> None:
    img = _rand(3, 2, 40, 40)

    def run(seed: int) -> list[torch.Tensor]:
        view = ViewAugmentation(SIZE, cutout_prob=0.5, extra_contrast_prob=0.5).set_random_state(seed)
        return [view(img) for _ in range(4)]

    first, again, other = run(7), run(7), run(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_blur_asymmetry_t_always_blurs_t_prime_rarely() -> None:
    t, t_prime = byol_view_pair(SIZE)
    assert (t.blur_prob, t_prime.blur_prob) == (1.0, 0.1)
    img = _rand(1, SIZE, SIZE)
    # sigma near 0.1 px leaves a 3x3 kernel numerically equal to the identity; use a visible range.
    blurred = {}
    for name, source in (("t", t), ("t_prime", t_prime)):
        view = _plain(blur_prob=source.blur_prob, blur_sigma=(0.5, 2.0)).set_random_state(11)
        assert torch.equal(_plain()(img), img)  # the pipeline without blur is the identity here
        blurred[name] = sum(not torch.equal(view(img), img) for _ in range(200)) / 200
    assert blurred["t"] == 1.0
    assert 0.03 <= blurred["t_prime"] <= 0.2  # expected 0.1, so about 90% of T' views are unblurred


def test_solarize_asymmetry_rates() -> None:
    t, t_prime = byol_view_pair(SIZE)
    img = torch.full((1, 40, 40), 0.9)  # crop, flip and blur keep a constant image constant
    rates = {}
    for name, view in (("t", t), ("t_prime", t_prime)):
        view.jitter_prob = 0.0  # brightness/contrast would move the constant around the threshold
        view.set_random_state(5)
        solarized = 0
        for _ in range(200):
            out = view(img)
            if torch.allclose(out, torch.full_like(out, 0.1), atol=1e-5):
                solarized += 1
            else:
                assert torch.allclose(out, torch.full_like(out, 0.9), atol=1e-5)
        rates[name] = solarized / 200
    assert rates["t"] == 0.0
    assert 0.1 <= rates["t_prime"] <= 0.3


def test_volume_slices_share_parameters() -> None:
    image = _rand(3, 40, 44)
    volume = image.unsqueeze(1).repeat(1, 5, 1, 1)
    kwargs = {"cutout_prob": 0.5, "extra_contrast_prob": 0.5, "extra_brightness_prob": 0.5, "solarize_prob": 0.5}
    vol_view = ViewAugmentation(SIZE, **kwargs).set_random_state(21)
    img_view = ViewAugmentation(SIZE, **kwargs).set_random_state(21)
    for _ in range(20):
        out = vol_view(volume)
        ref = img_view(image)
        for s in range(1, 5):
            assert torch.equal(out[:, s], out[:, 0])
        torch.testing.assert_close(out[:, 0], ref, atol=1e-5, rtol=0)


def test_one_channel_skips_saturation_hue_and_grayscale() -> None:
    kwargs = {"jitter_prob": 1.0, "brightness": 0.0, "contrast": 0.0, "saturation": 1.0, "hue": 0.5}
    view = _plain(grayscale_prob=1.0, **kwargs).set_random_state(0)
    gray = _rand(1, SIZE, SIZE)
    for _ in range(5):
        assert torch.equal(view(gray), gray)
    color = _rand(3, SIZE, SIZE)
    assert not torch.equal(_plain(**kwargs).set_random_state(0)(color), color)


def test_grayscale_makes_channels_equal_with_luma() -> None:
    img = _rand(3, 2, SIZE, SIZE)
    out = _plain(grayscale_prob=1.0)(img)
    luma = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    for c in range(3):
        torch.testing.assert_close(out[c], luma)
    full = ViewAugmentation(SIZE, grayscale_prob=1.0).set_random_state(1)
    for _ in range(5):
        out = full(img)
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_cutout_zeroes_one_rectangle_on_every_slice() -> None:
    view = _plain(cutout_prob=1.0).set_random_state(4)
    img = torch.full((1, 3, SIZE, SIZE), 0.7)
    for _ in range(20):
        out = view(img)
        zero = out[0, 0] == 0
        rows, cols = zero.any(1), zero.any(0)
        assert torch.equal(zero, rows[:, None] & cols[None, :])  # a rectangle
        assert 0.01 <= zero.float().mean().item() <= 0.25
        assert torch.all(out[0, 0][~zero] == 0.7)
        assert torch.equal(out[0, 1], out[0, 0]) and torch.equal(out[0, 2], out[0, 0])


def test_flip_is_horizontal() -> None:
    img = _rand(1, 2, SIZE, SIZE)
    torch.testing.assert_close(_plain(flip_prob=1.0)(img), img.flip(-1))


def test_crop_falls_back_to_central_crop() -> None:
    view = ViewAugmentation(SIZE, crop_scale=(0.9, 1.0)).set_random_state(0)
    view.randomize(np.zeros((1, 10, 100)))  # every 10-try box is too tall for a 10x100 image
    assert view._params is not None
    assert view._params.crop == (0, 43, 10, 13)  # width clipped to the 4/3 ratio, centred


def test_blur_matches_reflect_padded_convolution() -> None:
    assert _blur_kernel_size(224) == 23 and _blur_kernel_size(32) == 3
    x = _rand(2, 3, 30, 50)
    sigma = 1.3
    out = _gaussian_blur(x, sigma)
    kh, kw = _blur_kernel_size(30), _blur_kernel_size(50)

    def kernel(size: int) -> torch.Tensor:
        t = torch.arange(size, dtype=torch.float32) - size // 2
        g = torch.exp(-(t**2) / (2 * sigma**2))
        return g / g.sum()

    ref = F.pad(x.reshape(6, 1, 30, 50), (kw // 2, kw // 2, kh // 2, kh // 2), mode="reflect")
    ref = F.conv2d(F.conv2d(ref, kernel(kw).view(1, 1, 1, kw)), kernel(kh).view(1, 1, kh, 1))
    torch.testing.assert_close(out, ref.reshape(2, 3, 30, 50), atol=1e-5, rtol=0)


def test_hue_rotation() -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(_adjust_hue(red, 1 / 3), torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1))
    x = _rand(2, 3, 8, 8)
    torch.testing.assert_close(_adjust_hue(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(_adjust_hue(_adjust_hue(x, 0.1), -0.1), x, atol=1e-5, rtol=0)


def test_byol_plus_pair_enables_extras() -> None:
    for view in byol_view_pair(SIZE, byol_plus=True):
        assert view.cutout_prob > 0 and view.extra_contrast_prob > 0 and view.extra_brightness_prob > 0
    for view in byol_view_pair(SIZE):
        assert view.cutout_prob == view.extra_contrast_prob == view.extra_brightness_prob == 0.0


def test_byol_viewsd_keys_and_source() -> None:
    data = {"image": _rand(1, 3, 40, 40), "id": "case0"}
    out = BYOLViewsd(spatial_size=SIZE).set_random_state(0)(data)
    assert set(out) == {"view1", "view2", "id"}
    assert "image" in data  # the input dict is not changed
    assert tuple(out["view1"].shape) == tuple(out["view2"].shape) == (1, 3, SIZE, SIZE)
    assert not torch.equal(out["view1"], out["view2"])
    kept = BYOLViewsd(view_keys=("a", "b"), spatial_size=SIZE, keep_source=True)(data)
    assert set(kept) == {"image", "a", "b", "id"}
    with pytest.raises(ValueError, match="exactly one"):
        BYOLViewsd(keys=("image", "label"))


def test_byol_viewsd_custom_views() -> None:
    custom = _plain(flip_prob=1.0)
    img = _rand(1, SIZE, SIZE)
    out = BYOLViewsd(view1=custom, view2=_plain(), spatial_size=SIZE)({"image": img})
    torch.testing.assert_close(out["view1"], img.flip(-1))
    torch.testing.assert_close(out["view2"], img)


def test_byol_viewsd_determinism_through_compose() -> None:
    img = _rand(1, 2, 40, 40)

    def run(seed: int) -> list[torch.Tensor]:
        pipeline = Compose([BYOLViewsd(spatial_size=SIZE, byol_plus=True)]).set_random_state(seed)
        outs = [pipeline({"image": img}) for _ in range(3)]
        return [o[k] for o in outs for k in ("view1", "view2")]

    first, again, other = run(1), run(1), run(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
