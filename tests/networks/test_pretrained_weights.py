"""ImageNet checkpoints in the torchvision and timm key layouts, built on the fly from the project's networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_ssl.networks import (
    PretrainedLoadReport,
    convert_pretrained_state,
    interpolate_position_embeddings,
    load_imagenet_weights,
    read_checkpoint,
    resnet18_encoder,
    resnet50_encoder,
    vit_encoder,
)

HIDDEN, LAYERS = 32, 2


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """``net`` with every float parameter and buffer drawn at random (BN variances positive), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if value.is_floating_point():
                draw = torch.rand(value.shape, generator=generator)
                value.copy_(draw + 0.5 if name.endswith("running_var") else draw - 0.5)
    return net.eval()


def _small_vit(in_channels: int = 3, image_size: int = 32, pool: str = "cls") -> nn.Module:
    return vit_encoder(
        in_channels, image_size, patch_size=16, hidden_size=HIDDEN, num_layers=LAYERS, num_heads=4, pool=pool
    )


def _to_resnet_layout(net: nn.Module, classes: int = 5) -> dict[str, torch.Tensor]:
    """torchvision's (and timm's) ResNet layout: the project's names plus the classifier ``fc``."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["fc.weight"] = torch.randn(classes, net.out_features)
    state["fc.bias"] = torch.randn(classes)
    return state


def _class_position(dim: int) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, dim).reshape(1, 1, dim)


def _to_torchvision_vit(net: nn.Module, old_mlp_names: bool = False) -> dict[str, torch.Tensor]:
    """torchvision's ``VisionTransformer`` layout written from a project ViT (the inverse of the loader's mapping)."""
    sd = net.state_dict()
    class_position = _class_position(HIDDEN)
    mlp = ("mlp.linear_1", "mlp.linear_2") if old_mlp_names else ("mlp.0", "mlp.3")
    state = {
        "class_token": sd["vit.cls_token"] - class_position,
        "conv_proj.weight": sd["vit.patch_embedding.patch_embeddings.weight"],
        "conv_proj.bias": sd["vit.patch_embedding.patch_embeddings.bias"],
        "encoder.pos_embedding": torch.cat((class_position, sd["vit.patch_embedding.position_embeddings"]), 1),
        "encoder.ln.weight": sd["vit.norm.weight"],
        "encoder.ln.bias": sd["vit.norm.bias"],
        "heads.head.weight": torch.randn(10, HIDDEN),
        "heads.head.bias": torch.randn(10),
    }
    for i in range(LAYERS):
        src, dst = f"vit.blocks.{i}.", f"encoder.layers.encoder_layer_{i}."
        for ours, theirs in (
            ("norm1", "ln_1"),
            ("attn.out_proj", "self_attention.out_proj"),
            ("norm2", "ln_2"),
            ("mlp.linear1", mlp[0]),
            ("mlp.linear2", mlp[1]),
        ):
            for kind in ("weight", "bias"):
                state[f"{dst}{theirs}.{kind}"] = sd[f"{src}{ours}.{kind}"]
        state[f"{dst}self_attention.in_proj_weight"] = sd[f"{src}attn.qkv.weight"]
        state[f"{dst}self_attention.in_proj_bias"] = sd[f"{src}attn.qkv.bias"]
    return {k: v.clone() for k, v in state.items()}


def _to_timm_vit(net: nn.Module) -> dict[str, torch.Tensor]:
    """timm's ``VisionTransformer`` layout written from a project ViT."""
    sd = net.state_dict()
    class_position = _class_position(HIDDEN)
    state = {
        "cls_token": sd["vit.cls_token"] - class_position,
        "pos_embed": torch.cat((class_position, sd["vit.patch_embedding.position_embeddings"]), 1),
        "patch_embed.proj.weight": sd["vit.patch_embedding.patch_embeddings.weight"],
        "patch_embed.proj.bias": sd["vit.patch_embedding.patch_embeddings.bias"],
        "norm.weight": sd["vit.norm.weight"],
        "norm.bias": sd["vit.norm.bias"],
        "head.weight": torch.randn(10, HIDDEN),
        "head.bias": torch.randn(10),
    }
    for i in range(LAYERS):
        src, dst = f"vit.blocks.{i}.", f"blocks.{i}."
        for ours, theirs in (
            ("norm1", "norm1"),
            ("attn.qkv", "attn.qkv"),
            ("attn.out_proj", "attn.proj"),
            ("norm2", "norm2"),
            ("mlp.linear1", "mlp.fc1"),
            ("mlp.linear2", "mlp.fc2"),
        ):
            for kind in ("weight", "bias"):
                state[f"{dst}{theirs}.{kind}"] = sd[f"{src}{ours}.{kind}"]
    return {k: v.clone() for k, v in state.items()}


def _assert_same_weights(loaded: nn.Module, original: nn.Module, skip: str = "norm_cross_attn") -> None:
    theirs = original.state_dict()
    for name, value in loaded.state_dict().items():
        if skip not in name:
            torch.testing.assert_close(value, theirs[name], rtol=0, atol=1e-6, msg=name)


# ---------------------------------------------------------------- ResNet (torchvision and timm names)


@pytest.mark.parametrize("build", [resnet18_encoder, resnet50_encoder])
def test_resnet_layout_round_trip_gives_the_same_tensors_and_outputs(build):
    original = _randomised(build(in_channels=3), seed=1)
    fresh = build(in_channels=3)
    report = load_imagenet_weights(fresh, _to_resnet_layout(original))
    fresh.eval()
    _assert_same_weights(fresh, original)
    assert report.layout == "resnet"
    assert report.unexpected == ["fc.weight", "fc.bias"]
    assert report.missing == []
    assert len(report.mapped) == len(original.state_dict()) and report.mapped["conv1.weight"] == "conv1.weight"
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(image), original(image))


def test_resnet50_architecture_is_named_in_the_report():
    report = load_imagenet_weights(resnet50_encoder(), _to_resnet_layout(resnet50_encoder()))
    assert report.architecture.startswith("ResNet-50 (bottleneck blocks [3, 4, 6, 3]")
    assert "classifier head ['fc'] dropped." in report.notes
    assert report.summary().startswith("<state dict>: ResNet-50")


def test_resnet18_file_into_resnet50_is_one_error_naming_file_and_both(tmp_path):
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(_to_resnet_layout(resnet18_encoder(in_channels=3)), path)
    with pytest.raises(ValueError) as err:
        load_imagenet_weights(resnet50_encoder(), path)
    message = str(err.value)
    assert str(path) in message and "holds a ResNet-18" in message and "encoder is a ResNet-50" in message


def test_small_image_stem_refuses_the_standard_stem():
    expected = r"7x7 stem.*encoder is a ResNet-18 \(basic blocks \[2, 2, 2, 2\], 64-channel 3x3"
    with pytest.raises(ValueError, match=expected):
        load_imagenet_weights(resnet18_encoder(small_images=True), _to_resnet_layout(resnet18_encoder()))


def test_rgb_first_convolution_is_summed_into_a_gray_encoder():
    rgb = _randomised(resnet18_encoder(in_channels=3), seed=2)
    gray = resnet18_encoder(in_channels=1)
    report = load_imagenet_weights(gray, _to_resnet_layout(rgb))
    gray.eval()
    expected = rgb.conv1.weight[:, 0:1] + rgb.conv1.weight[:, 1:2] + rgb.conv1.weight[:, 2:3]
    torch.testing.assert_close(gray.conv1.weight, expected, rtol=0, atol=0)
    # a hand-checkable entry: the sum of the three RGB weights of output 0 at kernel position (0, 0)
    by_hand = sum(rgb.conv1.weight[0, c, 0, 0].item() for c in range(3))
    assert gray.conv1.weight[0, 0, 0, 0].item() == pytest.approx(by_hand)
    assert any("summed over its input channels" in note for note in report.notes)
    image = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray(image), rgb(image.repeat(1, 3, 1, 1)), rtol=1e-3, atol=1e-4)


def test_report_lists_a_deliberately_missing_key():
    state = _to_resnet_layout(resnet18_encoder(in_channels=3))
    del state["layer1.0.bn1.running_var"]
    del state["layer2.0.bn2.num_batches_tracked"]  # old torchvision files lack these: not reported
    report = load_imagenet_weights(resnet18_encoder(in_channels=3), state)
    assert report.missing == ["layer1.0.bn1.running_var"]
    assert "layer1.0.bn1.running_var" not in report.mapped
    assert "missing: layer1.0.bn1.running_var" in report.summary()


def test_another_channel_count_is_a_shape_error_or_skipped():
    state = _to_resnet_layout(resnet18_encoder(in_channels=3))
    expected = r"do not fit the encoder.*conv1\.weight \(64, 3, 7, 7\) \(encoder \(64, 2, 7, 7\)\)"
    with pytest.raises(ValueError, match=expected):
        load_imagenet_weights(resnet18_encoder(in_channels=2), state)
    report = load_imagenet_weights(resnet18_encoder(in_channels=2), state, strict_architecture=False)
    assert report.missing == ["conv1.weight"] and "conv1.weight" in report.unexpected


# ---------------------------------------------------------------- wrappers and files


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}, "epoch": 90},
        lambda s: {"model": s, "optimizer": {"lr": 0.1}},
        lambda s: {"model": {"state_dict": {f"module.backbone.{k}": v for k, v in s.items()}}},
    ],
    ids=["state_dict+module", "model", "nested+module.backbone"],
)
def test_wrapper_keys_and_prefixes_are_read_from_a_file(tmp_path, wrap):
    original = _randomised(resnet18_encoder(in_channels=3), seed=3)
    path = tmp_path / "weights.pth"
    torch.save(wrap(_to_resnet_layout(original)), path)
    state, source = read_checkpoint(path)
    assert source == str(path) and "conv1.weight" in state and "fc.weight" in state
    fresh = resnet18_encoder(in_channels=3)
    report = load_imagenet_weights(fresh, path)
    assert report.source == str(path) and report.missing == []
    _assert_same_weights(fresh, original)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth does not exist"):
        load_imagenet_weights(resnet18_encoder(), tmp_path / "nowhere.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"junk.pth cannot be read with torch.load\(weights_only=True\)"):
        load_imagenet_weights(resnet18_encoder(), junk)
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(ValueError, match="empty.pth holds no state dict"):
        load_imagenet_weights(resnet18_encoder(), empty)
    with pytest.raises(ValueError, match=r"holds keys of no known layout \(first keys: \['features.0.weight'\]\)"):
        load_imagenet_weights(resnet18_encoder(), {"features.0.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="must be a ResNetEncoder"):
        load_imagenet_weights(nn.Linear(2, 2), {"conv1.weight": torch.zeros(1)})


# ---------------------------------------------------------------- ViT (torchvision and timm)


@pytest.mark.parametrize(
    "to_layout, layout",
    [
        (_to_torchvision_vit, "torchvision_vit"),
        (lambda net: _to_torchvision_vit(net, old_mlp_names=True), "torchvision_vit"),
        (_to_timm_vit, "timm_vit"),
    ],
    ids=["torchvision", "torchvision-mlp-v1", "timm"],
)
def test_vit_layouts_round_trip_gives_the_same_tensors_and_outputs(to_layout, layout):
    original = _randomised(_small_vit(), seed=4)
    fresh = _small_vit()
    report = load_imagenet_weights(fresh, to_layout(original), match_layer_norm_eps=False)
    fresh.eval()
    _assert_same_weights(fresh, original)
    assert report.layout == layout and report.missing == []
    assert sorted(report.unexpected) == sorted(k for k in to_layout(original) if k.startswith("head"))
    assert report.architecture == f"ViT/16 (hidden {HIDDEN}, {LAYERS} blocks, MLP {4 * HIDDEN}, 16x16 patches)"
    assert any("added into vit.cls_token" in note for note in report.notes)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(image), original(image), rtol=1e-5, atol=1e-5)


def test_class_token_position_is_added_into_the_class_token():
    net = _small_vit()
    state = _to_timm_vit(net)
    state["cls_token"] = torch.zeros(1, 1, HIDDEN)
    state["pos_embed"][:, 0] = 2.0
    fresh = _small_vit()
    load_imagenet_weights(fresh, state)
    torch.testing.assert_close(fresh.vit.cls_token, torch.full((1, 1, HIDDEN), 2.0))


def test_layer_norm_eps_matches_the_published_networks_by_default():
    fresh = _small_vit()
    report = load_imagenet_weights(fresh, _to_timm_vit(_small_vit()))
    eps = {m.eps for m in fresh.modules() if isinstance(m, nn.LayerNorm)}
    assert eps == {1e-6} and any("eps set to 1e-6" in note for note in report.notes)


def test_vit_position_embeddings_are_resized_to_the_encoder_grid():
    original = _randomised(_small_vit(image_size=32), seed=5)
    larger = _small_vit(image_size=64)
    report = load_imagenet_weights(larger, _to_torchvision_vit(original))
    expected = interpolate_position_embeddings(original.vit.patch_embedding.position_embeddings, (2, 2), (4, 4))
    assert larger.vit.patch_embedding.position_embeddings.shape == (1, 16, HIDDEN)
    torch.testing.assert_close(larger.vit.patch_embedding.position_embeddings, expected)
    assert any("resized from a 2x2 to the encoder's 4x4 patch grid" in note for note in report.notes)


def test_vit_rgb_patch_projection_is_summed_into_a_gray_encoder():
    rgb = _randomised(_small_vit(in_channels=3), seed=6)
    gray = _small_vit(in_channels=1)
    load_imagenet_weights(gray, _to_timm_vit(rgb), match_layer_norm_eps=False)
    gray.eval()
    image = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gray(image), rgb(image.repeat(1, 3, 1, 1)), rtol=1e-3, atol=1e-4)


def test_mean_pooling_encoder_drops_the_class_token():
    net = _small_vit()
    fresh = _small_vit(pool="mean")
    report = load_imagenet_weights(fresh, _to_timm_vit(net))
    assert "cls_token" in report.unexpected and report.missing == []
    torch.testing.assert_close(
        fresh.vit.patch_embedding.position_embeddings, net.vit.patch_embedding.position_embeddings
    )


def test_vit_variant_keys_are_refused_or_listed():
    state = _to_timm_vit(_small_vit())
    state["blocks.0.ls1.gamma"] = torch.ones(HIDDEN)  # layer scale: a timm variant the encoder does not build
    with pytest.raises(ValueError, match=r"1 tensors the encoder .* has no place for \(e.g. \['blocks.0.ls1.gamma'\]\)"):
        load_imagenet_weights(_small_vit(), state)
    report = load_imagenet_weights(_small_vit(), state, strict_architecture=False)
    assert "blocks.0.ls1.gamma" in report.unexpected and report.missing == []


def test_wider_vit_and_resnet_into_vit_are_architecture_errors():
    wider = vit_encoder(3, 32, patch_size=16, hidden_size=48, num_layers=LAYERS, num_heads=4)
    with pytest.raises(ValueError, match=r"holds a ViT/16 \(hidden 48, .*encoder is a ViT/16 \(hidden 32"):
        load_imagenet_weights(_small_vit(), _to_timm_vit_like(wider))
    with pytest.raises(ValueError, match=r"holds a ResNet-18 .* in the resnet layout, but the encoder is a ViT/16"):
        load_imagenet_weights(_small_vit(), _to_resnet_layout(resnet18_encoder(in_channels=3)))
    with pytest.raises(ValueError, match=r"holds a ViT/16 .*timm_vit layout, but the encoder is a ResNet-18"):
        load_imagenet_weights(resnet18_encoder(in_channels=3), _to_timm_vit(_small_vit()))


def _to_timm_vit_like(net: nn.Module) -> dict[str, torch.Tensor]:
    """timm key names with ``net``'s shapes (any hidden size)."""
    width = net.out_features
    state = {"cls_token": torch.zeros(1, 1, width), "pos_embed": torch.zeros(1, 5, width)}
    state["patch_embed.proj.weight"] = net.vit.patch_embedding.patch_embeddings.weight.detach()
    for i in range(len(net.vit.blocks)):
        state[f"blocks.{i}.mlp.fc1.weight"] = net.vit.blocks[i].mlp.linear1.weight.detach()
    return state


# ---------------------------------------------------------------- full-size key names (meta tensors, no memory)


def _meta_timm_vit(hidden: int, layers: int = 12) -> dict[str, torch.Tensor]:
    def meta(*shape: int) -> torch.Tensor:
        return torch.empty(*shape, device="meta")

    state = {
        "cls_token": meta(1, 1, hidden),
        "pos_embed": meta(1, 197, hidden),
        "patch_embed.proj.weight": meta(hidden, 3, 16, 16),
        "patch_embed.proj.bias": meta(hidden),
        "norm.weight": meta(hidden),
        "norm.bias": meta(hidden),
        "head.weight": meta(1000, hidden),
        "head.bias": meta(1000),
    }
    for i in range(layers):
        for name, shape in (
            ("norm1", (hidden,)),
            ("attn.qkv", (3 * hidden, hidden)),
            ("attn.proj", (hidden, hidden)),
            ("norm2", (hidden,)),
            ("mlp.fc1", (4 * hidden, hidden)),
            ("mlp.fc2", (hidden, 4 * hidden)),
        ):
            state[f"blocks.{i}.{name}.weight"] = meta(*shape)
            state[f"blocks.{i}.{name}.bias"] = meta(shape[0])
    return state


def _meta_vit_b16() -> nn.Module:
    with torch.device("meta"):
        return vit_encoder(3, 224)


def test_full_size_vit_b16_timm_names_cover_every_encoder_key():
    encoder = _meta_vit_b16()
    converted, report = convert_pretrained_state(encoder, _meta_timm_vit(768))
    assert isinstance(report, PretrainedLoadReport)
    assert report.architecture == "ViT-B/16 (hidden 768, 12 blocks, MLP 3072, 16x16 patches)"
    assert report.missing == [] and report.unexpected == ["head.weight", "head.bias"]
    wanted = {k for k in encoder.state_dict() if "norm_cross_attn" not in k}
    assert set(converted) == wanted
    assert converted["vit.patch_embedding.position_embeddings"].shape == (1, 196, 768)
    assert report.mapped["blocks.11.attn.proj.weight"] == "vit.blocks.11.attn.out_proj.weight"
    assert report.mapped["pos_embed"] == "vit.patch_embedding.position_embeddings"


def test_full_size_vit_b16_torchvision_names_cover_every_encoder_key():
    encoder = _meta_vit_b16()
    timm = _meta_timm_vit(768)
    renames = {
        "norm1": "ln_1", "attn.proj": "self_attention.out_proj", "norm2": "ln_2", "mlp.fc1": "mlp.0", "mlp.fc2": "mlp.3"
    }
    state = {
        "class_token": timm["cls_token"],
        "encoder.pos_embedding": timm["pos_embed"],
        "conv_proj.weight": timm["patch_embed.proj.weight"],
        "conv_proj.bias": timm["patch_embed.proj.bias"],
        "encoder.ln.weight": timm["norm.weight"],
        "encoder.ln.bias": timm["norm.bias"],
        "heads.head.weight": timm["head.weight"],
        "heads.head.bias": timm["head.bias"],
    }
    for key, value in timm.items():
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            module, kind = rest.rsplit(".", 1)
            if module == "attn.qkv":
                name = f"self_attention.in_proj_{kind}"
            else:
                name = f"{renames[module]}.{kind}"
            state[f"encoder.layers.encoder_layer_{index}.{name}"] = value
    converted, report = convert_pretrained_state(encoder, state)
    assert report.layout == "torchvision_vit" and report.missing == []
    assert sorted(report.unexpected) == ["heads.head.bias", "heads.head.weight"]
    assert set(converted) == {k for k in encoder.state_dict() if "norm_cross_attn" not in k}
    assert report.mapped["encoder.layers.encoder_layer_0.self_attention.in_proj_weight"] == "vit.blocks.0.attn.qkv.weight"


def test_full_size_vit_s16_into_vit_b16_is_one_error():
    with pytest.raises(ValueError, match=r"holds a ViT-S/16 \(hidden 384.*but the encoder is a ViT-B/16 \(hidden 768"):
        convert_pretrained_state(_meta_vit_b16(), _meta_timm_vit(384))


# ---------------------------------------------------------------- the imagenet_transfer baseline's setting


def test_require_pretrained_weights_names_the_setting_or_the_file(tmp_path):
    from monai_ssl.networks import require_pretrained_weights

    for missing in (None, "none", "", " Null "):
        with pytest.raises(ValueError, match=r"imagenet_transfer needs `--pretrained_weights PATH`.*nothing is downloaded"):
            require_pretrained_weights(missing)
    with pytest.raises(FileNotFoundError, match=r"`pretrained_weights` file not found: .*resnet50-absent\.pth"):
        require_pretrained_weights(tmp_path / "resnet50-absent.pth")
    weights = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, weights)
    assert require_pretrained_weights(str(weights)) == weights
