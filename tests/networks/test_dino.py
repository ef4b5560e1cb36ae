from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from helpers import TinyEncoder
from monai_ssl.losses import DINOLoss
from monai_ssl.networks import DINO, cancel_last_layer_gradients, group_views_by_shape, resnet18_encoder, vit_encoder

K = 32


def make_views(batch: int = 3, global_views: int = 2, local_views: int = 4, channels: int = 1) -> list[torch.Tensor]:
    """Multi-crop-like views: global 16 px crops first, then local 8 px crops."""
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(batch, channels, 16, 16, generator=generator) for _ in range(global_views)] + [
        torch.rand(batch, channels, 8, 8, generator=generator) for _ in range(local_views)
    ]


@pytest.fixture
def dino(tiny_encoder):
    torch.manual_seed(0)
    return DINO(tiny_encoder, out_features=K, hidden_features=16, bottleneck_features=4)


def count_calls(module: nn.Module) -> list[int]:
    """A list whose first element counts the forward calls of ``module``."""
    calls = [0]

    def hook(*_) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


def test_outputs_shapes_and_stop_gradient(dino):
    out = dino(make_views(), num_global_views=2)
    assert set(out) == {"student", "teacher"}
    assert [tuple(v.shape) for v in out["student"]] == [(3, K)] * 6
    assert [tuple(v.shape) for v in out["teacher"]] == [(3, K)] * 2
    assert all(v.requires_grad for v in out["student"])
    assert not any(v.requires_grad for v in out["teacher"])
    assert not any(p.requires_grad for p in dino.teacher_parameters())
    assert len(dino.teacher_parameters()) == len(dino.student_parameters())


def test_teacher_sees_only_the_global_views(dino):
    dino.eval()
    views = make_views()
    out = dino(views, num_global_views=2)
    with torch.no_grad():
        expected = [dino.teacher_head(dino.teacher_encoder(v)) for v in views[:2]]
    for got, want in zip(out["teacher"], expected):
        torch.testing.assert_close(got, want)
    assert len(dino(views, num_global_views=1)["teacher"]) == 1


def test_group_views_by_shape():
    views = make_views(global_views=2, local_views=3)
    assert group_views_by_shape(views) == [(0, 2), (2, 5)]
    assert group_views_by_shape(views[:1]) == [(0, 1)]
    assert group_views_by_shape([views[0], views[2], views[1]]) == [(0, 1), (1, 2), (2, 3)]
    assert group_views_by_shape([]) == []


def test_grouped_backbone_calls_match_per_view_calls(dino):
    dino.eval()  # running statistics: per-view and grouped calls compute the same function
    views = make_views()
    student_calls, teacher_calls = count_calls(dino.student_encoder), count_calls(dino.teacher_encoder)
    head_calls = count_calls(dino.student_head)
    out = dino(views, num_global_views=2)
    assert student_calls[0] == 2 and teacher_calls[0] == 1 and head_calls[0] == 1  # one call per resolution
    with torch.no_grad():
        per_view = [dino.student_head(dino.student_encoder(v)) for v in views]
    for got, want in zip(out["student"], per_view):
        torch.testing.assert_close(got, want)


def test_grouping_shares_batch_statistics_in_training(dino):
    views = make_views()
    out = dino(views, num_global_views=2)
    with torch.no_grad():
        features = torch.cat([dino.student_encoder(torch.cat(views[:2])), dino.student_encoder(torch.cat(views[2:]))])
        expected = dino.student_head(features).chunk(6)
        alone = dino.student_head(dino.student_encoder(views[0]))
    for got, want in zip(out["student"], expected):
        torch.testing.assert_close(got, want)
    assert not torch.allclose(out["student"][0], alone)  # per-view batch statistics would differ


def test_bad_inputs(dino, tiny_encoder):
    views = make_views()
    with pytest.raises(ValueError, match="num_global_views"):
        dino(views, num_global_views=0)
    with pytest.raises(ValueError, match="num_global_views"):
        dino(views, num_global_views=7)
    with pytest.raises(ValueError, match="same batch size"):
        dino([views[0], views[1][:2]], num_global_views=1)
    with pytest.raises(ValueError, match="feature_dim"):
        DINO(nn.Flatten(), out_features=K)
    with pytest.raises(ValueError, match="export"):
        DINO(tiny_encoder, out_features=K, export="online")


def test_teacher_starts_as_copy_and_follows_student_by_ema(dino):
    for t, s in zip(dino.teacher_parameters(), dino.student_parameters()):
        torch.testing.assert_close(t, s)
        assert t.data_ptr() != s.data_ptr()
    with torch.no_grad():
        for p in dino.student_parameters():
            p.add_(1.0)
    before = [t.clone() for t in dino.teacher_parameters()]
    dino.update_teacher(1.0)
    for t, b in zip(dino.teacher_parameters(), before):
        torch.testing.assert_close(t, b)
    dino.update_teacher(0.75)
    for t, b in zip(dino.teacher_parameters(), before):
        torch.testing.assert_close(t, b + 0.25)


def test_teacher_keeps_its_own_batchnorm_statistics(dino):
    dino(make_views(), num_global_views=2)
    student_bn = next(m for m in dino.student_encoder.modules() if isinstance(m, nn.BatchNorm2d))
    teacher_bn = next(m for m in dino.teacher_encoder.modules() if isinstance(m, nn.BatchNorm2d))
    assert student_bn.num_batches_tracked.item() == 2 and teacher_bn.num_batches_tracked.item() == 1
    teacher_mean = teacher_bn.running_mean.clone()
    assert not torch.allclose(teacher_mean, student_bn.running_mean)
    dino.update_teacher(0.5)
    torch.testing.assert_close(teacher_bn.running_mean, teacher_mean)  # buffers are not averaged


def test_export_backbone_teacher_by_default_and_student_on_request(tiny_encoder):
    torch.manual_seed(0)
    dino = DINO(tiny_encoder, out_features=K, hidden_features=16, bottleneck_features=4)
    with torch.no_grad():
        for p in dino.student_parameters():
            p.add_(1.0)
    exported = dino.export_backbone()
    for e, t in zip(exported.parameters(), dino.teacher_encoder.parameters()):
        torch.testing.assert_close(e, t)
        assert e.data_ptr() != t.data_ptr() and e.requires_grad  # a trainable copy for fine-tuning
    dino.export = "student"
    for e, s in zip(dino.export_backbone().parameters(), dino.student_encoder.parameters()):
        torch.testing.assert_close(e, s)
        assert e.data_ptr() != s.data_ptr()


def test_state_dict_round_trip_with_weights_only(dino):
    with torch.no_grad():
        for p in dino.student_parameters():
            p.add_(0.1)
    dino.update_teacher(0.5)
    buffer = io.BytesIO()
    torch.save(dino.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    restored = DINO(TinyEncoder(), out_features=K, hidden_features=16, bottleneck_features=4)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    dino.eval()
    restored.eval()
    views = make_views()
    got, want = restored(views, 2), dino(views, 2)
    for side in ("student", "teacher"):
        for a, b in zip(got[side], want[side]):
            torch.testing.assert_close(a, b)


def test_one_training_step_end_to_end():
    """2 global 16 px + 4 local 8 px views, DINOLoss, frozen last layer in epoch 0, AdamW, EMA teacher."""
    torch.manual_seed(0)
    dino = DINO(resnet18_encoder(small_images=True), out_features=64, hidden_features=32, bottleneck_features=8)
    loss_fn = DINOLoss(out_features=64, num_views=6, num_global_views=2)
    optimizer = torch.optim.AdamW([p for p in dino.student_parameters() if p.requires_grad], lr=1e-3)
    student_before = [p.detach().clone() for p in dino.student_parameters()]
    teacher_before = [p.detach().clone() for p in dino.teacher_parameters()]
    last_layer = list(dino.student_head.last_layer.parameters())

    out = dino(make_views(batch=4), num_global_views=2)
    loss = loss_fn(out["student"], out["teacher"], epoch=0)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in dino.teacher_parameters())
    assert any(p.grad is not None for p in last_layer)
    assert cancel_last_layer_gradients(dino, epoch=0)
    assert all(p.grad is None for p in last_layer)
    optimizer.step()
    dino.update_teacher(0.996)

    changed = [not torch.equal(p, b) for p, b in zip(dino.student_parameters(), student_before)]
    assert sum(changed) > len(changed) // 2
    for p, b in zip(dino.student_parameters(), student_before):
        if any(p is q for q in last_layer):
            torch.testing.assert_close(p, b, rtol=0, atol=0)  # frozen in the first epoch
    for t, b, s in zip(dino.teacher_parameters(), teacher_before, dino.student_parameters()):
        torch.testing.assert_close(t, 0.996 * b + 0.004 * s)
        assert t.grad is None
    assert not torch.allclose(loss_fn.center, torch.zeros_like(loss_fn.center))


def test_vit_with_interpolated_positions_takes_global_and_local_crops():
    """DINO on a tiny ViT: 2 global 16 px + 2 local 8 px views (patch 4), one loss step reaches the positions."""
    torch.manual_seed(0)
    encoder = vit_encoder(1, 16, patch_size=4, hidden_size=16, num_layers=1, num_heads=2, interpolate_position=True)
    dino = DINO(encoder, out_features=K, hidden_features=16, bottleneck_features=4)
    views = make_views(batch=3, global_views=2, local_views=2)
    out = dino(views, num_global_views=2)
    assert [tuple(v.shape) for v in out["student"]] == [(3, K)] * 4
    assert [tuple(v.shape) for v in out["teacher"]] == [(3, K)] * 2
    loss = DINOLoss(out_features=K, num_views=4, num_global_views=2)(out["student"], out["teacher"], epoch=0)
    assert torch.isfinite(loss)
    loss.backward()
    position = dino.student_encoder.vit.patch_embedding.position_embeddings
    assert position.grad is not None and position.grad.abs().sum() > 0
    assert dino.teacher_encoder.vit.patch_embedding.position_embeddings.grad is None
    dino.eval()
    with torch.no_grad():  # the local views went through the interpolated 2 x 2 grid, not a refusal
        local = dino.student_head(dino.student_encoder(views[2]))
    torch.testing.assert_close(dino(views, num_global_views=2)["student"][2], local)
