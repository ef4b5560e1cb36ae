from __future__ import annotations

import pytest
import torch

from monai_ssl.networks import ViTEncoder, vit_encoder

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
