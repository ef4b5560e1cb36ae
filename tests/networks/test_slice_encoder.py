from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_ssl.networks import EncoderClassifier, SliceEncoder, resnet18_encoder


class FeatureMapIdentity(nn.Module):
    out_features = 2

    def forward(self, x):
        return x


def test_max_over_slices_then_average_pool():
    x = torch.rand(3, 2, 5, 4, 4)  # (B, C, S, H, W)
    out = SliceEncoder(FeatureMapIdentity())(x)
    expected = x.amax(dim=2).mean(dim=(2, 3))
    assert out.shape == (3, 2)
    torch.testing.assert_close(out, expected)


def test_pooled_backbone_takes_max_of_vectors():
    class Pooled(nn.Module):
        out_features = 2

        def forward(self, x):
            return x.mean(dim=(2, 3))

    x = torch.rand(2, 2, 3, 4, 4)
    torch.testing.assert_close(SliceEncoder(Pooled())(x), x.mean(dim=(3, 4)).amax(dim=2))


def test_slices_are_independent_of_batch_folding():
    encoder = SliceEncoder(resnet18_encoder(pool=False)).eval()
    x = torch.randn(2, 1, 3, 32, 32)
    with torch.no_grad():
        both = encoder(x)
        first = encoder(x[:1])
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-4)
    assert both.shape == (2, 512)


def test_errors_and_torchscript():
    with pytest.raises(ValueError, match="out_features"):
        SliceEncoder(nn.Identity())
    encoder = SliceEncoder(FeatureMapIdentity())
    with pytest.raises(ValueError, match="slices"):
        encoder(torch.rand(2, 1, 8, 8))
    model = EncoderClassifier(SliceEncoder(resnet18_encoder(pool=False))).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, 1, 2, 32, 32)
    torch.testing.assert_close(scripted(x), model(x))
