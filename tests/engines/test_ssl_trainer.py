"""SelfSupervisedTrainer: BYOL on it equals BYOLTrainer; DINO's schedules and resume; CASS's two optimizers."""

from __future__ import annotations

import functools

import pytest
import torch
from helpers import TinyEncoder
from ignite.engine import Events

from monai_ssl.engines import BYOLTrainer, SelfSupervisedTrainer, method_scalars, prepare_view_list
from monai_ssl.methods import BYOLMethod, CASSMethod, DINOMethod, method_optimizers
from monai_ssl.networks import BYOL, CASS, DINO
from monai_ssl.utils.schedules import cosine_schedule


def _byol_data(n_batches=2, batch=4, size=16):
    g = torch.Generator().manual_seed(1)
    return [
        {"view1": torch.rand(batch, 1, size, size, generator=g), "view2": torch.rand(batch, 1, size, size, generator=g)}
        for _ in range(n_batches)
    ]


def _run_byol(trainer_factory, accumulation_steps):
    torch.manual_seed(0)
    network = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=8)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    trainer = trainer_factory(network, optimizer, accumulation_steps)
    seen = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: seen.append(
            (e.state.output["loss"].clone(), e.state.output["tau"], e.state.output["projection_std"])
        ),
    )
    trainer.run()
    return seen, {k: v.clone() for k, v in network.state_dict().items()}, trainer


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_byol_on_the_shared_trainer_equals_byol_trainer(accumulation_steps):
    data = _byol_data()
    reference, reference_weights, _ = _run_byol(
        lambda net, opt, acc: BYOLTrainer("cpu", 2, data, net, opt, tau_base=0.9, accumulation_steps=acc),
        accumulation_steps,
    )
    shared, shared_weights, trainer = _run_byol(
        lambda net, opt, acc: SelfSupervisedTrainer(
            "cpu", 2, data, BYOLMethod(tau_base=0.9), net, opt, accumulation_steps=acc
        ),
        accumulation_steps,
    )
    assert len(shared) == len(reference) == 4
    for (loss, tau, std), (ref_loss, ref_tau, ref_std) in zip(shared, reference):
        torch.testing.assert_close(loss, ref_loss)
        torch.testing.assert_close(std, ref_std)
        assert tau == ref_tau
    assert shared_weights.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        torch.testing.assert_close(shared_weights[key], value, msg=key)
    assert trainer.state.optimizer_steps == 4 // accumulation_steps
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
