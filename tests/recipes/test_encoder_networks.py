"""The BYOL bundles' networks from their settings: the same layout as the hand-built modules, and errors by name."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.networks import BYOL, EncoderClassifier, SliceEncoder, resnet18_encoder
from monai_ssl.recipes import byol_network, classifier_network, encoder_features


def _layout(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_the_two_encoders():
    slices = encoder_features("slice_resnet18", in_channels=1)
    assert isinstance(slices, SliceEncoder) and slices.backbone.pool is False
    assert slices(torch.rand(2, 1, 3, 32, 32)).shape == (2, 512)
    image = encoder_features("resnet18", in_channels=3)
    assert image.pool is True and image(torch.rand(2, 3, 32, 32)).shape == (2, 512)
    assert _layout(image) == _layout(resnet18_encoder(spatial_dims=2, in_channels=3, pool=True))


def test_byol_network_is_byol_over_the_encoder():
    network = byol_network("slice_resnet18", in_channels=1, hidden_dim=32, projection_dim=8)
    expected = BYOL(SliceEncoder(resnet18_encoder(2, 1, pool=False)), hidden_dim=32, projection_dim=8)
    assert isinstance(network, BYOL) and _layout(network) == _layout(expected)
    assert network(torch.rand(2, 1, 3, 32, 32), torch.rand(2, 1, 3, 32, 32))["online_pred1"].shape == (2, 8)


def test_classifier_network_matches_its_pretrained_parts():
    knee = classifier_network("slice_resnet18", in_channels=1, out_channels=1)
    assert isinstance(knee, EncoderClassifier) and knee.projector is None
    assert knee(torch.rand(2, 1, 3, 32, 32)).shape == (2, 1)
    encoder_keys = {f"encoder.{k}" for k in encoder_features("slice_resnet18", 1).state_dict()}
    assert set(knee.state_dict()) == encoder_keys | {"head.weight", "head.bias"}

    oct_ = classifier_network("resnet18", 1, 4, head_input="projector", hidden_dim=32, projection_dim=8, freeze_encoder=True)
    expected = EncoderClassifier(resnet18_encoder(2, 1, pool=True), out_channels=4, head_input="projector", hidden_dim=32,
                                 projection_dim=8)
    assert _layout(oct_) == _layout(expected) and oct_.head.weight.shape == (4, 8)
    assert not any(p.requires_grad for p in oct_.backbone_parameters()) and oct_.head.weight.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder": "resnet34", "in_channels": 1, "out_channels": 2}, "`encoder` must be one of"),
        ({"encoder": "resnet18", "in_channels": 0, "out_channels": 2}, "`in_channels` must be at least 1"),
        ({"encoder": "resnet18", "in_channels": 1, "out_channels": 0}, "`out_channels` must be at least 1"),
        ({"encoder": "resnet18", "in_channels": 1, "out_channels": 2, "head_input": "predictor"}, "`head_input` must be one of"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classifier_network(**kwargs)


@pytest.mark.parametrize(
    ("encoder", "in_channels", "size", "features"),
    [("resnet50", 1, 32, 2048), ("vit_s16", 1, 32, 384), ("vit_b16", 3, 32, 768), ("resnet18", 3, 28, 512)],
)
def test_every_encoder_gives_its_feature_size(encoder, in_channels, size, features):
    network = encoder_features(encoder, in_channels, image_size=size, small_images=encoder == "resnet18")
    assert network.out_features == features
    assert network(torch.rand(2, in_channels, size, size)).shape == (2, features)


def test_small_image_stem_keeps_resolution():
    standard = encoder_features("resnet18", 1)
    small = encoder_features("resnet18", 1, small_images=True)
    assert standard.conv1.stride == (2, 2) and small.conv1.stride == (1, 1)
    assert small.conv1.kernel_size == (3, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"encoder": "vit_s16", "in_channels": 1, "image_size": 40}, "`image_size` must be a multiple of 16"),
     ({"encoder": "vit_b16", "in_channels": 1, "small_images": True}, "`small_images` is a ResNet stem setting")],
)
def test_vit_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        encoder_features(**kwargs)
