from __future__ import annotations

import pytest
import torch

from monai_ssl.networks import resnet18_encoder, resnet50_encoder


def test_standard_resnet18_parameter_count():
    # torchvision's ResNet-18 has 11,689,512 parameters; without its 512x1000 fc layer: 11,176,512
    encoder = resnet18_encoder(spatial_dims=2, in_channels=3)
    assert sum(p.numel() for p in encoder.parameters()) == 11_176_512
    assert encoder.out_features == 512


def test_stride_two_stem_downsamples_by_32():
    encoder = resnet18_encoder(in_channels=1, pool=False).eval()
    assert encoder.conv1.stride == (2, 2) and encoder.conv1.kernel_size == (7, 7)
    with torch.no_grad():
        assert encoder(torch.randn(1, 1, 224, 224)).shape == (1, 512, 7, 7)
        assert resnet18_encoder(in_channels=1).eval()(torch.randn(2, 1, 64, 64)).shape == (2, 512)


def _parameter_count(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def _max_pool_calls(network: torch.nn.Module, image: torch.Tensor) -> int:
    """How many times a max-pooling module runs in one forward pass."""
    calls = []
    hooks = [
        m.register_forward_hook(lambda *_: calls.append(1))
        for m in network.modules()
        if isinstance(m, (torch.nn.MaxPool2d, torch.nn.MaxPool3d))
    ]
    with torch.no_grad():
        network(image)
    for hook in hooks:
        hook.remove()
    return len(calls)


def test_resnet18_defaults_keep_the_standard_stem():
    encoder = resnet18_encoder(in_channels=1).eval()
    assert not encoder.no_max_pool
    assert _max_pool_calls(encoder, torch.randn(1, 1, 64, 64)) == 1


@pytest.mark.parametrize("factory, features", [(resnet18_encoder, 512), (resnet50_encoder, 2048)])
def test_small_image_stem_keeps_4x4_maps_at_32_pixels(factory, features):
    encoder = factory(in_channels=3, pool=False, small_images=True).eval()
    assert encoder.conv1.kernel_size == (3, 3) and encoder.conv1.stride == (1, 1)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert encoder(image).shape == (2, features, 4, 4)
    assert _max_pool_calls(encoder, image) == 0
    pooled = factory(in_channels=3, small_images=True).eval()
    with torch.no_grad():
        assert pooled(torch.randn(2, 3, 28, 28)).shape == (2, features)


def test_standard_stem_would_leave_1x1_maps_at_32_pixels():
    encoder = resnet18_encoder(in_channels=3, pool=False).eval()
    with torch.no_grad():
        assert encoder(torch.randn(1, 3, 32, 32)).shape == (1, 512, 1, 1)


def test_small_image_stem_parameter_counts():
    # the 3x3x3x64 first convolution replaces the 7x7x3x64 one: 9,408 - 1,728 = 7,680 fewer weights
    assert _parameter_count(resnet18_encoder(in_channels=3, small_images=True)) == 11_176_512 - 7_680
    assert _parameter_count(resnet50_encoder(in_channels=3, small_images=True)) == 23_508_032 - 7_680


def test_standard_resnet50_parameter_count_and_layout():
    # torchvision's ResNet-50 has 25,557,032 parameters; without its 2048x1000 fc layer (2,049,000): 23,508,032
    encoder = resnet50_encoder()
    assert _parameter_count(encoder) == 23_508_032
    assert encoder.out_features == 2048
    assert [len(stage) for stage in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4)] == [3, 4, 6, 3]
    assert encoder.conv1.kernel_size == (7, 7) and encoder.conv1.stride == (2, 2)
    # type-B shortcut: a bias-free 1x1 convolution and batch norm on the first block of each stage
    shortcut = encoder.layer2[0].downsample
    assert isinstance(shortcut[0], torch.nn.Conv2d) and shortcut[0].kernel_size == (1, 1) and shortcut[0].bias is None
    assert isinstance(shortcut[1], torch.nn.BatchNorm2d)


def test_resnet50_downsamples_by_32_at_224_pixels():
    encoder = resnet50_encoder(pool=False).eval()
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert encoder(image).shape == (1, 2048, 7, 7)
    assert _max_pool_calls(encoder, image) == 1
    assert resnet50_encoder(in_channels=1).eval()(torch.randn(2, 1, 64, 64)).shape == (2, 2048)


def test_resnet50_for_volumes():
    encoder = resnet50_encoder(spatial_dims=3, in_channels=1, pool=False, small_images=True).eval()
    with torch.no_grad():
        assert encoder(torch.randn(1, 1, 16, 16, 16)).shape == (1, 2048, 2, 2, 2)
