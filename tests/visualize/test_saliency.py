"""Tests of monai_ssl.visualize.saliency: shapes, a trained detector's maps, MONAI equality, errors, PNGs."""

from __future__ import annotations

import copy

import matplotlib.image
import numpy as np
import pytest
import torch
from monai.visualize import GradCAM
from torch import nn

from monai_ssl.networks import EncoderClassifier, resnet18_encoder, vit_encoder
from monai_ssl.visualize import (
    confidence_extremes,
    gradcam_target_layer,
    saliency_figure,
    saliency_maps,
    save_saliency_png,
)

SIDE = 6  # side of the planted square


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return EncoderClassifier(resnet18_encoder(in_channels=1, small_images=True), out_channels=3)


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    encoder = vit_encoder(1, 32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2)
    return EncoderClassifier(encoder, out_channels=3)


class TinyCNN(nn.Sequential):
    """Three convolutions (the last at half resolution) and global average pooling; ``out_features`` 16."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.out_features = 16


def _squares(n: int, g: torch.Generator, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise in [0, 0.5]; odd images hold a bright SIDE x SIDE square at a random place (label 1), even ones
    the same number of bright pixels scattered (label 0), so only the square's shape tells the classes apart."""
    x = torch.rand(n, 1, size, size, generator=g) * 0.5
    y = torch.arange(n) % 2
    masks = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in range(n):
        r, c = torch.randint(0, size - SIDE + 1, (2,), generator=g).tolist()
        masks[i, 0, r : r + SIDE, c : c + SIDE] = True
        if y[i] == 1:
            x[i, 0, r : r + SIDE, c : c + SIDE] = 1.0
        else:
            x[i, 0].view(-1)[torch.randperm(size * size, generator=g)[: SIDE * SIDE]] = 1.0
    return x, y, masks


@pytest.fixture(scope="module")
def square_detector():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = EncoderClassifier(TinyCNN(), out_channels=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        x, y, _ = _squares(32, g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y, masks = _squares(32, g)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.9, f"the detector did not learn (accuracy {accuracy})"
    return model, x[y == 1], masks[y == 1]


@pytest.mark.parametrize("method", ["gradient", "gradcam"])
def test_resnet_maps_shape_range(resnet, method):
    x = torch.randn(3, 1, 32, 32)
    maps = saliency_maps(resnet, x, method)
    assert maps.shape == (3, 1, 32, 32)
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert (maps.amax(dim=(1, 2, 3)) == 1).all()  # each map min-max scaled on its own
    assert not maps.requires_grad


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("method", ["gradient", "vit_gradcam"])
def test_vit_maps_shape_range(method, pool):
    torch.manual_seed(0)
    model = EncoderClassifier(vit_encoder(1, 32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2, pool=pool), 3)
    maps = saliency_maps(model, torch.randn(2, 1, 32, 32), method)
    assert maps.shape == (2, 1, 32, 32)
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert (maps.amax(dim=(1, 2, 3)) > 0).all()  # non-zero: the tokens used reach the pooled output


def test_vit_gradcam_lives_on_the_patch_grid(vit):
    maps = saliency_maps(vit, torch.randn(1, 1, 32, 32), "vit_gradcam")
    assert torch.isfinite(maps).all()
    # a 4 x 4 patch grid upsampled bilinearly: rows 0-3 (the first half patch) repeat the first grid row
    assert torch.allclose(maps[0, 0, 0], maps[0, 0, 3])


def test_square_detector_looks_at_the_square(square_detector):
    model, x, masks = square_detector
    for method, layer, least in (("gradient", None, 1.5), ("gradcam", "encoder.4", 5.0)):
        maps = saliency_maps(model, x, method, target_layer=layer)
        ratios = [(m[k].mean() / m[~k].mean()).item() for m, k in zip(maps, masks)]
        assert np.mean(ratios) > least, (method, ratios)
        assert np.median(ratios) > 1.0, (method, ratios)


def test_gradcam_equals_monai(resnet):
    x = torch.randn(2, 1, 32, 32)
    ours = saliency_maps(resnet, x, "gradcam", class_index=[2, 0])
    theirs = []  # MONAI leaves hooks on the model: run it on copies
    for i, c in enumerate([2, 0]):
        cam = GradCAM(copy.deepcopy(resnet), target_layers="encoder.layer4", postprocessing=lambda t: t)
        raw = cam(x[i : i + 1], class_idx=c)
        theirs.append((raw - raw.min()) / (raw.max() - raw.min()))
    torch.testing.assert_close(ours, torch.cat(theirs), atol=1e-5, rtol=1e-4)


def test_gradient_is_the_input_gradient_of_the_chosen_logit(resnet):
    x = torch.randn(2, 1, 32, 32)
    maps = saliency_maps(resnet, x, "gradient", class_index=1)
    resnet.eval()
    x1 = x[:1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(resnet(x1)[0, 1], x1)
    g = g.abs()
    torch.testing.assert_close(maps[:1], (g - g.min()) / (g.max() - g.min()), atol=1e-5, rtol=1e-4)


def test_predicted_class_is_the_default(resnet):
    x = torch.randn(2, 1, 32, 32)
    resnet.eval()
    with torch.no_grad():
        predicted = resnet(x).argmax(1)
    torch.testing.assert_close(saliency_maps(resnet, x), saliency_maps(resnet, x, class_index=predicted))


def test_single_logit_explains_the_predicted_side():
    torch.manual_seed(0)
    model = EncoderClassifier(TinyCNN(), out_channels=1)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        positive = (model(x)[:, 0] > 0).long()
    cam = saliency_maps(model, x, "gradcam", target_layer="encoder.4")
    torch.testing.assert_close(cam, saliency_maps(model, x, "gradcam", target_layer="encoder.4", class_index=positive))
    # class 0 of a single logit is minus the logit: its Grad-CAM differs from class 1's
    assert not torch.allclose(
        saliency_maps(model, x, "gradcam", target_layer="encoder.4", class_index=0),
        saliency_maps(model, x, "gradcam", target_layer="encoder.4", class_index=1),
    )


def test_model_state_is_left_alone(resnet):
    resnet.train()
    resnet.zero_grad(set_to_none=True)
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    with torch.no_grad():  # as inside an Ignite evaluator
        saliency_maps(resnet, torch.randn(2, 1, 32, 32), "gradcam")
    assert resnet.training
    assert all(p.grad is None for p in resnet.parameters())
    assert all(torch.equal(before[k], v) for k, v in resnet.state_dict().items())  # BN statistics untouched
    assert not any(m._forward_hooks or m._backward_hooks for m in resnet.modules())
    resnet.eval()


def test_default_target_layer(resnet):
    assert gradcam_target_layer(resnet) == "encoder.layer4"
    assert gradcam_target_layer(resnet.encoder) == "layer4"
    with pytest.raises(ValueError, match="holds no ResNet.*target_layer"):
        gradcam_target_layer(EncoderClassifier(TinyCNN(), 2))


def test_method_that_does_not_fit_the_network(resnet, vit):
    x = torch.randn(1, 1, 32, 32)
    with pytest.raises(ValueError, match="method='gradcam' needs a CNN, but EncoderClassifier is a Vision Transformer"):
        saliency_maps(vit, x, "gradcam")
    with pytest.raises(ValueError, match="method='vit_gradcam' needs a Vision Transformer, but EncoderClassifier"):
        saliency_maps(resnet, x, "vit_gradcam")
    with pytest.raises(ValueError, match="`method` must be one of"):
        saliency_maps(resnet, x, "rollout")


def test_bad_arguments(resnet):
    x = torch.randn(2, 1, 32, 32)
    with pytest.raises(ValueError, match="no layer named 'encoder.layer9'"):
        saliency_maps(resnet, x, "gradcam", target_layer="encoder.layer9")
    with pytest.raises(ValueError, match=r"feature maps \(B, C, h, w\) at `target_layer` 'head'"):
        saliency_maps(resnet, x, "gradcam", target_layer="head")
    with pytest.raises(ValueError, match="out of range for a model with 3 classes"):
        saliency_maps(resnet, x, class_index=3)
    with pytest.raises(ValueError, match="3 entries for a batch of 2"):
        saliency_maps(resnet, x, class_index=[0, 1, 2])
    with pytest.raises(ValueError, match=r"tensor \(B, C, H, W\)"):
        saliency_maps(resnet, x[0])


def test_confidence_extremes():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    most, least = confidence_extremes(probs, 2)
    assert most.tolist() == [4, 1] and least.tolist() == [0, 3]
    most, least = confidence_extremes(torch.tensor([0.5, 0.99, 0.3, 0.02]), 3)  # binary: max(p, 1 - p)
    assert most.tolist() == [1, 3, 2] and least.tolist() == [0, 2, 3]
    assert confidence_extremes(probs, 10)[0].shape == (5,)
    with pytest.raises(ValueError, match="`count` must be an integer >= 1"):
        confidence_extremes(probs, 0)
    with pytest.raises(ValueError, match="NaN or inf"):
        confidence_extremes(np.array([0.2, np.nan]), 1)


def test_png_is_written_with_the_expected_size(tmp_path):
    image = torch.rand(3, 40, 50)
    saliency = torch.rand(1, 1, 20, 25)  # resized to the image
    mask = torch.zeros(40, 50, dtype=torch.bool)
    mask[10:30, 10:30] = True
    path = save_saliency_png(tmp_path / "sub" / "s.png", image, saliency, title="melanoma (p=0.91)", mask=mask)
    assert path.is_file()
    assert matplotlib.image.imread(path).shape[:2] == (480, 960)
    fig = saliency_figure(image[:1], saliency[0, 0])
    assert len(fig.axes) == 3  # image, overlay, colour bar
    with pytest.raises(ValueError, match="one map"):
        saliency_figure(image, torch.rand(2, 1, 4, 4))


def test_gradient_saliency_of_volumes_and_volume_figure():
    from monai_ssl.visualize.saliency import figure_rgb, volume_saliency_figure

    class Sum(nn.Module):  # logit 1 = 2 * voxel (0, 1, 2, 3) of the volume; logit 0 = 0
        def forward(self, x):
            return torch.stack([torch.zeros(x.shape[0]), 2 * x[:, 0, 1, 2, 3]], dim=1)

    volumes = torch.rand(2, 1, 10, 6, 6)
    maps = saliency_maps(Sum(), volumes, "gradient", class_index=1)
    assert maps.shape == (2, 1, 10, 6, 6)
    expected = torch.zeros(2, 1, 10, 6, 6)
    expected[:, 0, 1, 2, 3] = 1.0
    assert torch.equal(maps, expected)
    with pytest.raises(ValueError, match=r"volumes \(B, C, S, H, W\) with method='gradient'"):
        saliency_maps(Sum(), volumes, "gradcam")
    fig = volume_saliency_figure(volumes[0], maps[0], title="v", mask=maps[0] > 0)
    pixels = figure_rgb(fig)
    assert pixels.dtype == np.uint8 and pixels.shape == (int(4.4 * 100), 8 * 2 * 100, 3)  # 8 of 10 slices, 100 dpi
    with pytest.raises(ValueError, match="same S, H, W"):
        volume_saliency_figure(volumes[0], maps[0, :, :5])
