from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_ssl.losses import CASSLoss
from monai_ssl.networks import CASS, resnet18_encoder, vit_encoder


def _cass(out_features: int = 8) -> CASS:
    torch.manual_seed(0)
    cnn = resnet18_encoder(in_channels=1, small_images=True)
    transformer = vit_encoder(in_channels=1, image_size=16, patch_size=8, hidden_size=32, num_layers=2, num_heads=2)
    return CASS(cnn, transformer, out_features=out_features)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def test_both_outputs_for_the_same_image():
    model, image = _cass(), torch.rand(4, 1, 16, 16)
    outputs = model(image)
    assert set(outputs) == {"cnn", "transformer"}
    assert outputs["cnn"].shape == outputs["transformer"].shape == (4, 8)
    model.eval()
    outputs = model(image)
    for name in ("cnn", "transformer"):
        member = model.members[name]
        torch.testing.assert_close(outputs[name], member.head(member.encoder(image)))
    assert model.members["cnn"].head.in_features == 512
    assert model.members["transformer"].head.in_features == 32


def test_default_output_size_is_the_reference_head_size():
    model = CASS(nn.Linear(3, 5), nn.Linear(3, 7))  # feature sizes read from `out_features`
    assert model.out_features == 1000
    assert model(torch.rand(2, 3))["transformer"].shape == (2, 1000)


def test_one_checkpoint_holds_both_members():
    keys = set(_cass().state_dict())
    assert "members.cnn.encoder.conv1.weight" in keys
    assert "members.cnn.head.weight" in keys
    assert "members.transformer.encoder.vit.cls_token" in keys
    assert "members.transformer.head.bias" in keys
    assert all(key.startswith(("members.cnn.", "members.transformer.")) for key in keys)


def test_a_step_with_one_adam_per_member_moves_both_networks():
    model, loss_fn = _cass(), CASSLoss()
    optimizers = {name: torch.optim.Adam(member.parameters(), lr=1e-3) for name, member in model.members.items()}
    before = _snapshot(model)
    image = torch.rand(4, 1, 16, 16)
    outputs = model(image)
    loss = loss_fn(outputs["cnn"], outputs["transformer"])
    for optimizer in optimizers.values():
        optimizer.zero_grad()
    loss.backward()
    for name in ("cnn", "transformer"):  # no stop-gradient: each network receives gradients
        for part in ("encoder", "head"):
            grads = [p.grad for p in getattr(model.members[name], part).parameters() if p.grad is not None]
            assert grads and sum(g.abs().sum() for g in grads) > 0, (name, part)
    for optimizer in optimizers.values():
        optimizer.step()
    after = _snapshot(model)
    parts = ("cnn.encoder", "cnn.head", "transformer.encoder", "transformer.head")
    for prefix in (f"members.{part}." for part in parts):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix


def test_the_optimisers_only_hold_their_own_member():
    model = _cass()
    cnn_ids = {id(p) for p in model.members["cnn"].parameters()}
    transformer_ids = {id(p) for p in model.members["transformer"].parameters()}
    assert not cnn_ids & transformer_ids
    assert cnn_ids | transformer_ids == {id(p) for p in model.parameters()}


def test_training_brings_the_outputs_together():
    model, loss_fn = _cass(), CASSLoss()
    optimizers = [torch.optim.Adam(member.parameters(), lr=1e-3) for member in model.members.values()]
    image = torch.rand(4, 1, 16, 16)
    losses = []
    for _ in range(5):
        outputs = model(image)
        loss = loss_fn(outputs["cnn"], outputs["transformer"])
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_export_each_encoder_as_an_independent_copy(name):
    model, image = _cass().eval(), torch.rand(2, 1, 16, 16)
    encoder = model.export_backbone(name)
    assert encoder is not model.members[name].encoder
    assert not isinstance(encoder, nn.Sequential)  # the head is left out
    torch.testing.assert_close(encoder(image), model.members[name].encoder(image))
    assert encoder.out_features == (512 if name == "cnn" else 32)
    next(encoder.parameters()).data.add_(1.0)
    assert not torch.equal(next(encoder.parameters()), next(model.members[name].encoder.parameters()))


def test_export_defaults_to_the_cnn_and_refuses_other_names():
    model = _cass()
    assert set(model.export_backbone().state_dict()) == set(model.members["cnn"].encoder.state_dict())
    with pytest.raises(ValueError, match=r"must be one of \['cnn', 'transformer'\], got 'vit'"):
        model.export_backbone("vit")


def test_feature_size_needed_when_a_network_does_not_say_it():
    with pytest.raises(ValueError, match="`transformer_features`"):
        CASS(resnet18_encoder(), nn.Flatten())
    with pytest.raises(ValueError, match="`cnn_features`"):
        CASS(nn.Flatten(), nn.Flatten(), transformer_features=5)
    model = CASS(nn.Flatten(), nn.Flatten(), out_features=2, cnn_features=3, transformer_features=3)
    assert model(torch.rand(2, 3))["cnn"].shape == (2, 2)
