"""The BYOL bundles' networks from their settings: the same layout as the hand-built modules, and errors by name."""

from __future__ import annotations

import logging

import pytest
import torch

from monai_ssl.networks import BYOL, EncoderClassifier, SliceEncoder, resnet18_encoder, resnet50_encoder
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


# ---------------------------------------------------------------- imagenet_transfer: `pretrained_weights`


def _randomised(net, seed):
    """``net`` with every float tensor drawn at random (batch-norm variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if value.is_floating_point():
                draw = torch.rand(value.shape, generator=generator)
                value.copy_(draw + 0.5 if name.endswith("running_var") else draw - 0.5)
    return net


def _torchvision_resnet_file(net, path, classes=7):
    """A checkpoint in torchvision's ResNet layout (the project's names plus the ImageNet ``fc``)."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(classes, net.out_features), torch.randn(classes)
    torch.save(state, path)
    return path


def _timm_vit_state(vit):
    """A ViT state dict in timm's layout written from a project ViT (class-token position embedding zero)."""
    sd = vit.state_dict()
    width = sd["vit.cls_token"].shape[-1]
    state = {
        "cls_token": sd["vit.cls_token"],
        "pos_embed": torch.cat((torch.zeros(1, 1, width), sd["vit.patch_embedding.position_embeddings"]), 1),
        "patch_embed.proj.weight": sd["vit.patch_embedding.patch_embeddings.weight"],
        "patch_embed.proj.bias": sd["vit.patch_embedding.patch_embeddings.bias"],
        "norm.weight": sd["vit.norm.weight"],
        "norm.bias": sd["vit.norm.bias"],
        "head.weight": torch.randn(10, width),
        "head.bias": torch.randn(10),
    }
    names = {"norm1": "norm1", "attn.qkv": "attn.qkv", "attn.out_proj": "attn.proj", "norm2": "norm2",
             "mlp.linear1": "mlp.fc1", "mlp.linear2": "mlp.fc2"}
    for i in range(len(vit.vit.blocks)):
        for ours, theirs in names.items():
            for kind in ("weight", "bias"):
                key = f"vit.blocks.{i}.{ours}.{kind}"
                if key in sd:
                    state[f"blocks.{i}.{theirs}.{kind}"] = sd[key]
    return {k: v.clone() for k, v in state.items()}


def _assert_same(module, source):
    theirs = source.state_dict()
    for name, value in module.state_dict().items():
        if "norm_cross_attn" not in name:
            torch.testing.assert_close(value, theirs[name], rtol=0, atol=0, msg=name)


def test_imagenet_weights_fill_the_classifier_encoder(tmp_path, caplog):
    source = _randomised(resnet18_encoder(in_channels=3), seed=1)
    path = _torchvision_resnet_file(source, tmp_path / "resnet18-imagenet.pth")
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        network = classifier_network("resnet18", 3, 4, pretrained_weights=str(path))
    _assert_same(network.encoder, source)
    assert network.head.weight.shape == (4, 512)  # the task head is new, the ImageNet fc is dropped
    log = caplog.text
    assert "imagenet_transfer" in log and str(path) in log
    n = len(source.state_dict())
    assert f"{n} tensors loaded, 0 missing, 2 unexpected" in log and "unexpected: fc.weight, fc.bias" in log


@pytest.mark.parametrize("no_weights", [None, "none", "", "None", "null"])
def test_no_pretrained_weights_leave_the_encoder_random(no_weights):
    torch.manual_seed(0)
    random = classifier_network("resnet18", 3, 2)
    torch.manual_seed(0)
    network = classifier_network("resnet18", 3, 2, pretrained_weights=no_weights)
    _assert_same(network, random)  # the same draws as without the setting: nothing was loaded


def test_imagenet_weights_summed_into_a_gray_classifier(tmp_path):
    source = _randomised(resnet18_encoder(in_channels=3), seed=2)
    path = _torchvision_resnet_file(source, tmp_path / "rgb.pth")
    network = classifier_network("resnet18", 1, 2, pretrained_weights=path)
    torch.testing.assert_close(network.encoder.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))


def test_imagenet_weights_fill_the_2d_resnet_of_a_slice_encoder(tmp_path):
    source = _randomised(resnet18_encoder(in_channels=3), seed=3)
    path = _torchvision_resnet_file(source, tmp_path / "resnet18.pth")
    network = classifier_network("slice_resnet18", 3, 1, pretrained_weights=path)
    _assert_same(network.encoder.backbone, source)


def test_imagenet_vit_weights_in_the_timm_layout(tmp_path):
    source = _randomised(encoder_features("vit_s16", 3, image_size=32), seed=4)
    path = tmp_path / "vit_small_patch16.pth"
    torch.save(_timm_vit_state(source), path)
    network = classifier_network("vit_s16", 3, 3, image_size=32, pretrained_weights=path)
    _assert_same(network.encoder, source)
    assert {m.eps for m in network.encoder.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-6}


def test_a_resnet18_file_into_a_resnet50_classifier_is_one_error_naming_both(tmp_path):
    path = _torchvision_resnet_file(resnet18_encoder(in_channels=3), tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(ValueError) as err:
        classifier_network("resnet50", 3, 3, pretrained_weights=path)
    message = str(err.value)
    assert message.startswith("`pretrained_weights` for encoder='resnet50': ")
    assert str(path) in message and "holds a ResNet-18" in message and "the encoder is a ResNet-50" in message
    with pytest.raises(ValueError, match=r"holds a ResNet-50 .*the encoder is a ViT-S/16"):
        classifier_network("vit_s16", 3, 3, image_size=32,
                           pretrained_weights=_torchvision_resnet_file(resnet50_encoder(), tmp_path / "r50.pth"))


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth does not exist"):
        classifier_network("resnet18", 3, 2, pretrained_weights=tmp_path / "nowhere.pth")
