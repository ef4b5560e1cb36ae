"""SelfSupervisedTrainer: BYOL on it equals a bare PyTorch BYOL loop; DINO's schedules and resume; CASS's two optimizers."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from helpers import TinyEncoder
from ignite.engine import Events

from monai_ssl.engines import SelfSupervisedTrainer, method_scalars, prepare_view_list
from monai_ssl.methods import BYOLMethod, CASSMethod, DINOMethod, method_optimizers
from monai_ssl.networks import BYOL, CASS, DINO
from monai_ssl.utils.schedules import cosine_schedule


def _byol_data(n_batches=2, batch=4, size=16):
    g = torch.Generator().manual_seed(1)
    return [
        {"view1": torch.rand(batch, 1, size, size, generator=g), "view2": torch.rand(batch, 1, size, size, generator=g)}
        for _ in range(n_batches)
    ]


def _byol_network_and_optimizer():
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=8)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    return network, optimizer


def _bare_byol_loop(data, epochs, accumulation_steps, tau_base):
    """BYOL by hand in plain PyTorch (Grill et al. 2020, Algorithm 1), the reference the trainer must equal.

    Per iteration: zero the gradients at the start of an accumulation window, forward both views,
    eq. 2 written out (``2 - 2 cos`` of each online prediction against the other view's target projection,
    mean over the batch, summed over the two terms), backward of ``loss / accumulation_steps``; at the end of
    a window (or of the epoch) the optimizer steps and the target moves, ``xi <- tau xi + (1 - tau) theta``
    (eq. 1), with ``tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2`` at optimizer step ``k`` of ``K`` (Sec. 3.2).
    """
    network, optimizer = _byol_network_and_optimizer()
    network.train()
    steps_per_epoch = -(-len(data) // accumulation_steps)
    total = steps_per_epoch * epochs
    step, seen = 0, []
    for _ in range(epochs):
        for index, batch in enumerate(data):
            if index % accumulation_steps == 0:
                optimizer.zero_grad()
            out = network(batch["view1"], batch["view2"])
            cos = torch.nn.functional.cosine_similarity
            loss = (2 - 2 * cos(out["online_pred1"], out["target_proj2"], dim=-1)).mean() + (
                2 - 2 * cos(out["online_pred2"], out["target_proj1"], dim=-1)
            ).mean()
            (loss / accumulation_steps).backward()
            tau = 1 - (1 - tau_base) * (math.cos(math.pi * step / total) + 1) / 2
            if (index + 1) % accumulation_steps == 0 or index + 1 == len(data):
                optimizer.step()
                with torch.no_grad():
                    for xi, theta in zip(network.target_parameters(), network.online_parameters()):
                        xi.mul_(tau).add_(theta, alpha=1 - tau)
                step += 1
            seen.append((loss.detach(), tau))
    return seen, {k: v.clone() for k, v in network.state_dict().items()}, step


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_byol_on_the_shared_trainer_equals_a_bare_pytorch_byol_loop(accumulation_steps):
    """Issue 22: BYOL moves onto the one trainer with its loss curve unchanged for a fixed seed."""
    data = _byol_data(3)
    reference, reference_weights, reference_steps = _bare_byol_loop(data, 2, accumulation_steps, tau_base=0.9)
    network, optimizer = _byol_network_and_optimizer()
    trainer = SelfSupervisedTrainer(
        "cpu", 2, data, BYOLMethod(tau_base=0.9), network, optimizer, accumulation_steps=accumulation_steps
    )
    seen = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.output["loss"].clone(), e.state.output["tau"]))
    )
    trainer.run()
    assert len(seen) == len(reference) == 6
    assert reference_steps == trainer.state.optimizer_steps == {1: 6, 2: 4}[accumulation_steps]
    for iteration, ((loss, tau), (ref_loss, ref_tau)) in enumerate(zip(seen, reference), start=1):
        torch.testing.assert_close(loss, ref_loss, msg=f"loss at iteration {iteration}")
        assert tau == pytest.approx(ref_tau, abs=1e-12), iteration
    assert len({float(loss) for loss, _ in reference}) == 6  # the curve moves: equal losses are not trivially equal
    weights = {k: v for k, v in network.state_dict().items()}
    assert weights.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        torch.testing.assert_close(weights[key], value, msg=key)
    untrained, _ = _byol_network_and_optimizer()
    assert not torch.equal(untrained.target_encoder[0].weight, weights["target_encoder.0.weight"])  # the target moved
    assert set(method_scalars(trainer.state.output)) == {"byol/loss", "byol/lr", "byol/tau", "byol/projection_std"}


def _dino_data(n_batches=2, batch=4):
    g = torch.Generator().manual_seed(2)
    return [
        {
            **{f"view{i}": torch.rand(batch, 1, 16, 16, generator=g) for i in (1, 2)},
            **{f"view{i}": torch.rand(batch, 1, 8, 8, generator=g) for i in (3, 4)},
        }
        for _ in range(n_batches)
    ]


def _dino(max_epochs=2, data=None):
    torch.manual_seed(0)
    network = DINO(TinyEncoder(), out_features=32, hidden_features=16, bottleneck_features=8)
    method = DINOMethod(
        out_features=32,
        global_views=2,
        local_views=2,
        teacher_momentum=0.9,
        loss_kwargs={"teacher_temperature": 0.07, "warmup_teacher_temperature_epochs": 2},
    )
    optimizer = torch.optim.SGD(network.student_parameters(), lr=0.1, momentum=0.9)
    trainer = SelfSupervisedTrainer("cpu", max_epochs, data or _dino_data(), method, network, optimizer)
    return trainer, network, method, optimizer


def test_dino_schedules_last_layer_and_temperature():
    trainer, network, method, _ = _dino()
    epochs_seen = []
    terms = method.loss_function.terms
    method.loss_function.terms = lambda s, t, epoch: (epochs_seen.append(epoch), terms(s, t, epoch))[1]

    def last_layer():
        return [p.detach().clone() for p in network.student_head.last_layer.parameters()]

    start, snapshots, outputs, teacher_checks = last_layer(), {}, [], []
    before = {}

    @trainer.on(Events.ITERATION_STARTED)
    def _keep_teacher(engine):
        before["teacher"] = [p.detach().clone() for p in network.teacher_parameters()]

    @trainer.on(Events.ITERATION_COMPLETED)
    def _check(engine):
        out = engine.state.output
        outputs.append(out)
        step = engine.state.optimizer_steps - 1
        assert out["teacher_momentum"] == pytest.approx(cosine_schedule(0.9, 1.0, 4, step=step))
        m = out["teacher_momentum"]
        for teacher, old, student in zip(network.teacher_parameters(), before["teacher"], network.student_parameters()):
            torch.testing.assert_close(teacher, m * old + (1 - m) * student)
        teacher_checks.append(m)

    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: snapshots.__setitem__(e.state.epoch, last_layer()))
    trainer.run()
    assert teacher_checks == pytest.approx([cosine_schedule(0.9, 1.0, 4, step=k) for k in range(4)])
    assert teacher_checks[0] == pytest.approx(0.9) and teacher_checks[-1] > teacher_checks[1]
    assert all(torch.isfinite(o["loss"]) for o in outputs)
    assert all(torch.equal(a, b) for a, b in zip(start, snapshots[1]))  # frozen in Ignite's epoch 1
    assert any(not torch.equal(a, b) for a, b in zip(start, snapshots[2]))
    assert epochs_seen == [0, 0, 1, 1]
    assert [o["teacher_temperature"] for o in outputs] == pytest.approx([0.04, 0.04, 0.07, 0.07])
    assert {"dino/teacher_entropy", "dino/kl", "dino/teacher_momentum"} <= set(method_scalars(trainer.state.output))
    assert trainer.state.output["view3"].shape == (4, 1, 8, 8)


def test_dino_resume_continues_the_schedules(tmp_path):
    data = _dino_data()
    full, full_network, _, _ = _dino(data=data)
    full_momenta = []
    full.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: full_momenta.append(e.state.output["teacher_momentum"])
    )
    full.run()

    first, network, method, optimizer = _dino(data=data)
    first.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda e: e.terminate())
    first.run()
    assert first.state.optimizer_steps == 2
    path = tmp_path / "checkpoint.pt"
    torch.save(
        {
            "trainer": first.state_dict(),
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "dino_loss": method.loss_function.state_dict(),
        },
        path,
    )
    saved = torch.load(path, weights_only=True)
    resumed, network, method, optimizer = _dino(data=data)
    resumed.load_state_dict(saved["trainer"])
    network.load_state_dict(saved["network"])
    optimizer.load_state_dict(saved["optimizer"])
    method.state_modules()["dino_loss"].load_state_dict(saved["dino_loss"])
    momenta = []
    resumed.add_event_handler(Events.ITERATION_COMPLETED, lambda e: momenta.append(e.state.output["teacher_momentum"]))
    resumed.run()
    assert resumed.state.optimizer_steps == 4 and resumed.state.epoch == 2
    assert momenta == pytest.approx(full_momenta[2:])
    for key, value in full_network.state_dict().items():
        torch.testing.assert_close(network.state_dict()[key], value, msg=key)


def test_cass_trains_both_members_with_their_own_optimizers_and_no_target():
    torch.manual_seed(0)
    network = CASS(TinyEncoder(), TinyEncoder(out_features=6), out_features=5)
    method = CASSMethod()
    optimizers = method_optimizers(method, network, functools.partial(torch.optim.SGD, lr=0.1))
    assert len(optimizers) == 2
    steps = [0, 0]
    for index, optimizer in enumerate(optimizers):
        optimizer.register_step_post_hook(lambda *_, i=index: steps.__setitem__(i, steps[i] + 1))
    start = {name: [p.detach().clone() for p in member.parameters()] for name, member in network.members.items()}
    data = [{"view1": torch.rand(4, 1, 16, 16)} for _ in range(2)]
    trainer = SelfSupervisedTrainer("cpu", 2, data, method, network, optimizers)
    trainer.run()
    assert steps == [4, 4] and trainer.state.optimizer_steps == 4
    for name, member in network.members.items():
        assert any(not torch.equal(a, b) for a, b in zip(start[name], member.parameters())), name
    assert method.momentum(0, 4) is None and method.after_optimizer_step(network, 0, 4) is None
    out = trainer.state.output
    assert torch.isfinite(out["loss"]) and out["cosine"] == pytest.approx(1 - float(out["loss"]) / 2, abs=1e-5)
    exported = method.export_backbone(network)
    assert isinstance(exported, TinyEncoder) and exported is not network.members["cnn"].encoder


def test_missing_view_and_wrong_method():
    with pytest.raises(KeyError, match="view4"):
        prepare_view_list({"view1": torch.zeros(1)}, view_keys=("view1", "view4"))
    with pytest.raises(TypeError, match="SelfSupervisedMethod"):
        linear = torch.nn.Linear(2, 2)
        SelfSupervisedTrainer("cpu", 1, [], "byol", linear, torch.optim.SGD(linear.parameters(), 0.1))


def test_nan_loss_names_the_method():
    data = _byol_data(2)
    data[1]["view1"][:] = float("nan")
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=8)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    trainer = SelfSupervisedTrainer("cpu", 1, data, BYOLMethod(), network, optimizer)
    with pytest.raises(FloatingPointError, match="byol loss .* iteration 2"):
        trainer.run()


@pytest.mark.parametrize("per_parameter", [False, True])
def test_gradient_clipping_reaches_the_shared_trainer(per_parameter):
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=8)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    norms = []

    def _seen(opt, *_):  # the gradients the optimizer steps with
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        total = [float(torch.nn.utils.get_total_norm(grads))]
        norms.append([float(g.norm()) for g in grads] if per_parameter else total)

    optimizer.register_step_pre_hook(_seen)
    max_norm = 1e-3  # far below the gradients of a fresh network
    trainer = SelfSupervisedTrainer(
        "cpu", 1, _byol_data(), BYOLMethod(), network, optimizer, max_grad_norm=max_norm,
        grad_norm_per_parameter=per_parameter,
    )
    assert trainer.max_grad_norm == max_norm and trainer.grad_norm_per_parameter is per_parameter
    trainer.run()
    assert len(norms) == 2
    assert all(n <= max_norm * (1 + 1e-4) for step in norms for n in step)
    assert max(n for step in norms for n in step) == pytest.approx(max_norm, rel=1e-3)  # clipped, not zeroed
