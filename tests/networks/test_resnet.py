from __future__ import annotations

import torch

from monai_ssl.networks import resnet18_encoder


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
