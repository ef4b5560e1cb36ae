from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_ssl.networks import ViTEncoder, interpolate_position_embeddings, vit_encoder

TINY = {"in_channels": 1, "image_size": 16, "patch_size": 8, "hidden_size": 32, "num_layers": 2, "num_heads": 2}


def _tiny(**overrides) -> ViTEncoder:
    torch.manual_seed(0)
    return vit_encoder(**{**TINY, **overrides})


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_features_per_image(pool):
    encoder = _tiny(pool=pool)
    features = encoder(torch.rand(3, 1, 16, 16))
    assert encoder.out_features == 32
    assert features.shape == (3, 32)
    assert torch.isfinite(features).all()
    assert not any("classification_head" in name for name, _ in encoder.named_parameters())


def test_cls_pooling_is_the_normalised_class_token_and_mean_pooling_has_none():
    encoder, x = _tiny(pool="cls"), torch.rand(2, 1, 16, 16)
    tokens, _ = encoder.vit(x)
    assert tokens.shape == (2, 1 + 4, 32)  # class token and (16 / 8) ** 2 patches
    torch.testing.assert_close(encoder(x), tokens[:, 0])
    mean = _tiny(pool="mean")
    assert not hasattr(mean.vit, "cls_token")
    tokens, _ = mean.vit(x)
    assert tokens.shape == (2, 4, 32)
    torch.testing.assert_close(mean(x), tokens.mean(dim=1))


def test_features_depend_on_the_image_and_carry_gradients():
    encoder = _tiny()
    x = torch.rand(2, 1, 16, 16)
    features = encoder(x)
    assert not torch.allclose(features[0], features[1])
    (features * torch.randn_like(features)).sum().backward()  # a plain sum after LayerNorm has no gradient
    assert encoder.vit.patch_embedding.patch_embeddings.weight.grad.abs().sum() > 0


def test_default_is_vit_b16_and_vit_s16_by_arguments():
    base = vit_encoder(in_channels=3, image_size=224)
    assert base.out_features == 768
    assert len(base.vit.blocks) == 12
    assert base.vit.blocks[0].mlp.linear1.out_features == 3072
    assert base.vit.blocks[0].attn.num_heads == 12
    assert sum(p.numel() for p in base.parameters()) == pytest.approx(85.8e6, rel=1e-3)
    small = vit_encoder(in_channels=3, image_size=224, hidden_size=384, num_heads=6)
    assert small.out_features == 384
    assert small.vit.blocks[0].attn.num_heads == 6
    assert small.vit.blocks[0].mlp.linear1.out_features == 1536
    assert sum(p.numel() for p in small.parameters()) == pytest.approx(21.7e6, rel=1e-2)


def test_patch_size_that_does_not_divide_the_image_is_refused():
    with pytest.raises(ValueError, match=r"patch_size \(6, 6\) must divide image_size \(16, 16\)"):
        _tiny(patch_size=6)
    with pytest.raises(ValueError, match=r"patch_size \(8, 6\) must divide image_size \(16, 16\)"):
        _tiny(patch_size=(8, 6))


def test_other_settings_refused_with_one_line():
    with pytest.raises(ValueError, match="num_heads 3 must divide hidden_size 32"):
        _tiny(num_heads=3)
    with pytest.raises(ValueError, match="pool must be one of"):
        _tiny(pool="max")


def test_channel_or_size_mismatch_names_the_settings():
    encoder = _tiny()
    with pytest.raises(ValueError, match=r"in_channels=1 .* got an image of 3 channels") as error:
        encoder(torch.rand(2, 3, 16, 16))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"image_size=\(16, 16\), got an image of 1 channels and size \(24, 24\)"):
        encoder(torch.rand(2, 1, 24, 24))


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_interpolation_is_exactly_monai_forward_at_the_trained_size(pool):
    encoder = _tiny(pool=pool, interpolate_position=True)
    x = torch.rand(2, 1, 16, 16)
    tokens, _ = encoder.vit(x)
    expected = tokens[:, 0] if pool == "cls" else tokens.mean(dim=1)
    torch.testing.assert_close(encoder(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(encoder.tokens(x), tokens, rtol=0, atol=0)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_half_size_input_gives_features_and_gradients(pool):
    encoder = _tiny(pool=pool, patch_size=4, interpolate_position=True)
    x = torch.rand(3, 1, 8, 8)
    tokens = encoder.tokens(x)
    assert tokens.shape == (3, (1 if pool == "cls" else 0) + 4, 32)  # (8 / 4) ** 2 patches
    features = encoder(x)
    assert features.shape == (3, 32)
    assert not torch.allclose(features[0], features[1])
    (features * torch.randn_like(features)).sum().backward()
    position = encoder.vit.patch_embedding.position_embeddings
    assert position.grad is not None and position.grad.abs().sum() > 0
    assert encoder.vit.patch_embedding.patch_embeddings.weight.grad.abs().sum() > 0


def test_half_size_uses_the_bicubically_resized_positions():
    encoder = _tiny(patch_size=4, interpolate_position=True).eval()
    x = torch.rand(2, 1, 8, 8)
    # the same ViT rebuilt at 8 px and given the resized embeddings computes the same features
    small = _tiny(patch_size=4, image_size=8).eval()
    state = encoder.state_dict()
    state["vit.patch_embedding.position_embeddings"] = interpolate_position_embeddings(
        state["vit.patch_embedding.position_embeddings"], (4, 4), (2, 2)
    )
    small.load_state_dict(state)
    torch.testing.assert_close(encoder(x), small(x))
    assert not torch.allclose(encoder(torch.rand(2, 1, 12, 12)), encoder(torch.rand(2, 1, 12, 12)))


def test_position_grid_interpolation_is_bicubic_on_the_reshaped_grid():
    torch.manual_seed(0)
    trained, dim = (3, 4), 5
    embeddings = torch.randn(1, 12, dim)
    # hand-made grid: embeddings[0, row * 4 + col] sits at (row, col)
    grid = torch.stack([embeddings[0, row * 4 : row * 4 + 4] for row in range(3)])  # (3, 4, dim)
    expected = F.interpolate(grid.permute(2, 0, 1)[None], size=(5, 2), mode="bicubic", align_corners=False)
    resized = interpolate_position_embeddings(embeddings, trained, (5, 2))
    assert resized.shape == (1, 10, dim)
    torch.testing.assert_close(resized, expected[0].permute(1, 2, 0).reshape(1, 10, dim))
    assert interpolate_position_embeddings(embeddings, trained, trained) is embeddings
    constant = torch.ones(1, 12, dim)
    torch.testing.assert_close(interpolate_position_embeddings(constant, trained, (6, 8)), torch.ones(1, 48, dim))
    with pytest.raises(ValueError, match=r"12 embeddings do not fill the trained grid \(4, 4\)"):
        interpolate_position_embeddings(embeddings, (4, 4), (2, 2))


def test_volume_positions_resize_trilinearly():
    encoder = _tiny(spatial_dims=3, image_size=8, patch_size=4, interpolate_position=True)
    assert encoder(torch.rand(2, 1, 12, 8, 4)).shape == (2, 32)


def test_interpolation_refuses_a_size_that_is_not_a_multiple_of_the_patch():
    encoder = _tiny(patch_size=4, interpolate_position=True)
    with pytest.raises(ValueError, match=r"multiples of patch_size=\(4, 4\), got an image of size \(8, 10\)") as error:
        encoder(torch.rand(2, 1, 8, 10))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"in_channels=1 .* got an image of 3 channels"):
        encoder(torch.rand(2, 3, 8, 8))


def test_default_still_refuses_other_sizes():
    encoder = _tiny(patch_size=4)
    assert encoder.interpolate_position is False
    with pytest.raises(ValueError, match=r"image_size=\(16, 16\), got an image of 1 channels and size \(8, 8\)"):
        encoder(torch.rand(2, 1, 8, 8))
