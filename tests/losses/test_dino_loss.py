from __future__ import annotations

import math

import ignite.distributed as idist
import pytest
import torch
import torch.nn.functional as F

from monai_ssl.losses import DINOLoss, teacher_entropy_and_kl

LOG3 = math.log(3.0)


def _loss(**kwargs) -> DINOLoss:
    settings = {"out_features": 2, "num_views": 2, "student_temperature": 1.0, "teacher_temperature": 1.0,
                "warmup_teacher_temperature": 1.0}
    return DINOLoss(**{**settings, **kwargs})


def test_hand_computed_value_two_global_views():
    # teacher: q0 = (1/2, 1/2), q1 = (3/4, 1/4); student: p0 = (1/2, 1/2), p1 = (3/4, 1/4); pairs (t0, s1), (t1, s0)
    teacher = torch.tensor([[0.0, 0.0], [LOG3, 0.0]])
    student = torch.tensor([[0.0, 0.0], [LOG3, 0.0]])
    expected = (-(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) + math.log(2.0)) / 2
    assert _loss()(student, teacher, epoch=0).item() == pytest.approx(expected)
    # the same-view pairs would give the entropies instead: not compared
    assert expected != pytest.approx((math.log(2.0) + -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / 2)


def test_temperatures_divide_the_logits():
    teacher = torch.tensor([[0.0, 0.0], [LOG3, 0.0]])
    student = torch.tensor([[0.0, 0.0], [LOG3, 0.0]])
    reference = _loss()(student, teacher, epoch=0)
    scaled = _loss(student_temperature=0.5, teacher_temperature=0.25, warmup_teacher_temperature=0.25)
    torch.testing.assert_close(scaled(student * 0.5, teacher * 0.25, epoch=0), reference)


def test_pairs_skip_the_same_view():
    loss = DINOLoss(out_features=3, num_views=4, num_global_views=2)
    assert loss.pairs == [(0, 1), (0, 2), (0, 3), (1, 0), (1, 2), (1, 3)]
    assert len(DINOLoss(out_features=3, num_views=8).pairs) == 2 * 7
    assert DINOLoss(out_features=3, num_views=3, num_global_views=1).pairs == [(0, 1), (0, 2)]


def test_student_gradients_come_from_the_other_global_views_only():
    torch.manual_seed(0)
    batch, tau_s, tau_t = 3, 0.1, 0.04
    loss = DINOLoss(out_features=5, num_views=4, student_temperature=tau_s, teacher_temperature=tau_t,
                    warmup_teacher_temperature=tau_t)
    loss.center.copy_(torch.randn(1, 5))
    students = [torch.randn(batch, 5, requires_grad=True) for _ in range(4)]
    teachers = [torch.randn(batch, 5) for _ in range(2)]
    q = [F.softmax((t - loss.center) / tau_t, dim=-1) for t in teachers]
    loss(students, teachers, epoch=0).backward()
    p = [F.softmax(s.detach() / tau_s, dim=-1) for s in students]
    scale = 1.0 / (6 * batch * tau_s)  # 6 pairs, batch mean, d/ds of -q . log_softmax(s / tau) = (p - q) / tau
    torch.testing.assert_close(students[0].grad, (p[0] - q[1]) * scale)  # global view 0: teacher view 1 only
    torch.testing.assert_close(students[1].grad, (p[1] - q[0]) * scale)
    torch.testing.assert_close(students[2].grad, (2 * p[2] - q[0] - q[1]) * scale)  # local: both teacher views


def test_concatenated_and_per_view_inputs_agree_and_teacher_gets_no_gradient():
    torch.manual_seed(1)
    student = torch.randn(4 * 2, 6, requires_grad=True)
    teacher = torch.randn(2 * 2, 6, requires_grad=True)
    concatenated = DINOLoss(out_features=6, num_views=4)(student, teacher, epoch=0)
    per_view = DINOLoss(out_features=6, num_views=4)(list(student.chunk(4)), list(teacher.chunk(2)), epoch=0)
    torch.testing.assert_close(concatenated, per_view)
    concatenated.backward()
    assert student.grad is not None and teacher.grad is None


def test_center_follows_the_ema_of_the_teacher_batch_mean():
    loss = DINOLoss(out_features=2, num_views=3, center_momentum=0.9)
    assert "center" in loss.state_dict()
    teacher = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])  # 2 global views of 2 images
    loss(torch.zeros(6, 2), teacher, epoch=0)
    first = 0.1 * torch.tensor([[4.0, 5.0]])
    torch.testing.assert_close(loss.center, first)
    loss(torch.zeros(6, 2), -teacher, epoch=0)
    torch.testing.assert_close(loss.center, 0.9 * first + 0.1 * torch.tensor([[-4.0, -5.0]]))


def test_loss_uses_the_center_before_the_update():
    loss = _loss(out_features=3)
    center = torch.tensor([[2.0, -1.0, 0.5]])
    loss.center.copy_(center)
    uniform_after_centering = loss.terms(torch.zeros(2, 3), center.repeat(2, 1), epoch=0)
    assert uniform_after_centering.teacher_entropy.item() == pytest.approx(math.log(3))
    loss.center.copy_(center)
    q = F.softmax(-center, dim=-1)  # teacher outputs 0 minus the old center (the new one would be 0.9 c)
    terms = loss.terms(torch.zeros(2, 3), torch.zeros(2, 3), epoch=0)
    assert terms.teacher_entropy.item() == pytest.approx(-(q * q.log()).sum().item())
    torch.testing.assert_close(loss.center, 0.9 * center)


def test_center_mean_over_processes(monkeypatch):
    other_rank_sum = torch.tensor([[10.0, 20.0]])

    def all_reduce(tensor: torch.Tensor) -> torch.Tensor:  # two processes: this one and another
        return tensor + other_rank_sum

    monkeypatch.setattr(idist, "get_world_size", lambda: 2)
    monkeypatch.setattr(idist, "all_reduce", all_reduce)
    loss = DINOLoss(out_features=2, num_views=2, center_momentum=0.5)
    loss(torch.zeros(2, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), epoch=0)
    # (local sum (4, 6) + other (10, 20)) / (2 rows x 2 processes), half of it
    torch.testing.assert_close(loss.center, 0.5 * torch.tensor([[3.5, 6.5]]))


def test_teacher_temperature_schedule():
    loss = DINOLoss(out_features=2, num_views=2, warmup_teacher_temperature=0.04, teacher_temperature=0.07,
                    warmup_teacher_temperature_epochs=30, num_epochs=100)
    assert loss.teacher_temperature(0) == pytest.approx(0.04)
    assert loss.teacher_temperature(15) == pytest.approx(0.04 + 0.03 * 15 / 29)
    assert loss.teacher_temperature(29) == pytest.approx(0.07)
    assert loss.teacher_temperature(30) == pytest.approx(0.07)
    assert loss.teacher_temperature(200) == pytest.approx(0.07)
    assert DINOLoss(out_features=2, num_views=2).teacher_temperature(0) == pytest.approx(0.04)  # reference defaults
    # forward uses the epoch's temperature
    torch.manual_seed(2)
    student, teacher = torch.randn(4, 2), torch.randn(4, 2)
    fixed = DINOLoss(out_features=2, num_views=2, teacher_temperature=0.04 + 0.03 * 15 / 29,
                     warmup_teacher_temperature=0.04 + 0.03 * 15 / 29)
    torch.testing.assert_close(loss(student, teacher, epoch=15), fixed(student, teacher, epoch=0))


def test_collapse_signals():
    uniform = torch.full((2, 4), 0.25)
    entropy, kl = teacher_entropy_and_kl(uniform, torch.log(uniform))
    torch.testing.assert_close(entropy, torch.full((2,), math.log(4)))
    torch.testing.assert_close(kl, torch.zeros(2))
    one_hot = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    student = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    entropy, kl = teacher_entropy_and_kl(one_hot, student)
    torch.testing.assert_close(entropy, torch.zeros(1))
    torch.testing.assert_close(kl, torch.tensor([math.log(2)]))
    # in the loss: cross-entropy = entropy + KL; a constant teacher is uniform, entropy log K
    torch.manual_seed(3)
    terms = DINOLoss(out_features=4, num_views=3).terms(torch.randn(6, 4), torch.ones(4, 4), epoch=0)
    assert terms.teacher_entropy.item() == pytest.approx(math.log(4))
    assert terms.kl.item() > 0
    torch.testing.assert_close(terms.loss, terms.teacher_entropy + terms.kl)
    assert not terms.teacher_entropy.requires_grad and not terms.kl.requires_grad


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_views": 1}, "num_views"),
        ({"num_views": 2, "num_global_views": 3}, "num_global_views"),
        ({"num_views": 2, "student_temperature": 0.0}, "temperatures"),
        ({"num_views": 2, "warmup_teacher_temperature_epochs": 5, "num_epochs": 3}, "warmup"),
        ({"num_views": 2, "center_momentum": 1.5}, "center_momentum"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINOLoss(out_features=2, **kwargs)


def test_bad_inputs_name_the_side():
    loss = DINOLoss(out_features=3, num_views=3)
    with pytest.raises(ValueError, match="student"):
        loss(torch.zeros(4, 3), torch.zeros(4, 3), epoch=0)  # 4 rows are not 3 views
    with pytest.raises(ValueError, match="teacher views"):
        loss([torch.zeros(2, 3)] * 3, [torch.zeros(2, 3)], epoch=0)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        loss([torch.zeros(2, 3)] * 3, [torch.zeros(2, 3), torch.zeros(2, 4)], epoch=0)
