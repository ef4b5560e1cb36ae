"""PiCIENet: standard ResNet stages + FPN features at a quarter of the input, its centroids and outputs."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.networks import PiCIENet, centroid_logits, resnet18_encoder, resnet34_encoder


def test_features_are_normalised_quarter_resolution_maps():
    net = PiCIENet(in_channels=3, num_clusters=3, backbone="resnet18", feature_size=16).eval()
    with torch.no_grad():
        z = net.features(torch.rand(2, 3, 64, 48))
    assert z.shape == (2, 16, 16, 12)
    assert torch.allclose(z.norm(dim=1), torch.ones(2, 16, 12), atol=1e-5)
    assert net(torch.rand(1, 3, 64, 48), return_features=True).shape == (1, 16, 16, 12)


def test_forward_is_nearest_centroid_at_input_size():
    torch.manual_seed(0)
    net = PiCIENet(num_clusters=2, backbone="resnet18", feature_size=8).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        z = net.features(x)
        # centroids: one pixel's feature and its opposite; nearest centroid = sign of the projection
        c = torch.stack([z[0, :, 0, 0], -z[0, :, 0, 0]])
        net.centroids.copy_(c)
        logits = net(x)
    assert logits.shape == (1, 2, 32, 32)
    distances = ((z[0].permute(1, 2, 0)[..., None, :] - c) ** 2).sum(-1)  # (h, w, K)
    nearest = distances.argmin(-1)
    low_res = torch.nn.functional.interpolate(centroid_logits(z, c), size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.equal(low_res[0].argmax(0), nearest)
    assert nearest[0, 0] == 0


def test_centroid_logits_argmax_is_the_nearest_centroid_whatever_the_norms():
    f = torch.tensor([[1.0, 0.0]]).view(1, 2, 1, 1)
    c = torch.tensor([[3.0, 0.0], [0.6, 0.0]])  # the dot product prefers c0; the distance prefers c1 (|1-0.6| < |1-3|)
    assert centroid_logits(f, c)[0, :, 0, 0].argmax() == 1


def test_centroids_are_saved_with_the_weights():
    net = PiCIENet(num_clusters=4, backbone="resnet18", feature_size=8)
    net.centroids.fill_(0.5)
    other = PiCIENet(num_clusters=4, backbone="resnet18", feature_size=8)
    other.load_state_dict(net.state_dict())
    assert torch.equal(other.centroids, torch.full((4, 8), 0.5))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_clusters": 1}, "num_clusters"),
    ({"backbone": "resnet50"}, "backbone"),
    ({"spatial_dims": 3}, "spatial_dims"),
    ({"feature_size": 0}, "feature_size"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PiCIENet(**kwargs)


def test_resnet34_is_the_standard_network():
    net = resnet34_encoder(in_channels=3, pool=False)
    assert sum(p.numel() for p in net.parameters()) == 21_284_672
    maps = net.stage_maps(torch.rand(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    resnet = resnet18_encoder(in_channels=3, pool=True)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(resnet(x), torch.flatten(resnet.avgpool(resnet.stage_maps(x)[-1]), 1))
