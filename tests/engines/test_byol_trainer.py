"""BYOLTrainer: BYOL on the one self-supervised trainer, with its own constructor, attributes, output and messages."""

from __future__ import annotations

import pytest
import torch

from ignite.engine import Events

from monai_ssl.engines import BYOLTrainer, SelfSupervisedTrainer, byol_scalars, prepare_views
from monai_ssl.losses import BYOLLoss
from monai_ssl.methods import BYOLMethod
from monai_ssl.networks import BYOL, cosine_momentum


def _data(n_batches=3, batch=4):
    g = torch.Generator().manual_seed(0)
    return [{"view1": torch.rand(batch, 1, 8, 8, generator=g), "view2": torch.rand(batch, 1, 8, 8, generator=g)}
            for _ in range(n_batches)]


def _trainer(encoder, data, fused=None, **kwargs):
    net = BYOL(encoder, hidden_dim=16, projection_dim=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, fused=fused)
    return BYOLTrainer("cpu", kwargs.pop("max_epochs", 2), data, net, opt, **kwargs)


def _clone(params):
    return [p.detach().clone() for p in params]


def test_counts_optimizer_steps_and_tau_with_accumulation(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(3), accumulation_steps=2, max_epochs=2)
    taus, steps, stepped = [], [], []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: (taus.append(e.state.output["tau"]),
                                                                steps.append(e.state.optimizer_steps),
                                                                stepped.append(e.state.output["optimizer_stepped"])))
    trainer.run()
    # 3 iterations per epoch, accumulate 2 -> steps after iterations 2 and 3 (end-of-epoch flush)
    assert trainer.total_optimizer_steps == 4
    assert steps == [0, 1, 2, 2, 3, 4]
    assert stepped == [False, True, True, False, True, True]
    assert taus[0] == pytest.approx(0.99)
    assert taus[-1] == pytest.approx(cosine_momentum(3, 4, 0.99))
    assert trainer.state.optimizer_steps == 4


def test_target_moves_only_on_optimizer_steps(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(2), accumulation_steps=2, max_epochs=1)
    net = trainer.network
    start = [p.clone() for p in net.target_parameters()]
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED,
                              lambda e: seen.append(all(torch.equal(a, b) for a, b in zip(start, net.target_parameters()))))
    trainer.run()
    assert seen == [True, False]


def test_target_batch_norm_trains_on_its_own_batch_statistics_during_training(tiny_encoder):
    """BYOL's target runs in train mode (Grill et al. 2020): its batch norm sees every batch, once per view."""
    trainer = _trainer(tiny_encoder, _data(3), max_epochs=1)
    target_bns = [m for m in [*trainer.network.target_encoder.modules(), *trainer.network.target_projector.modules()]
                  if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    start = [bn.running_mean.clone() for bn in target_bns]
    trainer.run()
    assert target_bns and all(int(bn.num_batches_tracked) == 2 * 3 for bn in target_bns)
    assert all(not torch.equal(bn.running_mean, m) for bn, m in zip(target_bns, start))


def test_output_and_loss_decreases(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(2, batch=8), max_epochs=15)
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"])))
    trainer.run()
    out = trainer.state.output
    assert {"loss", "tau", "lr", "projection_std", "projection_dim", "optimizer_stepped", "view1", "view2"} <= set(out)
    assert out["lr"] == pytest.approx(0.05) and out["projection_dim"] == 4
    assert 0.0 <= losses[-1] <= 8.0
    assert sum(losses[-4:]) < sum(losses[:4])


def test_nan_loss_stops_with_message(tiny_encoder):
    data = _data(2)
    data[1]["view1"][:] = float("nan")
    trainer = _trainer(tiny_encoder, data, max_epochs=1)
    with pytest.raises(FloatingPointError, match=r"^BYOL pre-training: BYOL loss is nan at epoch 1, iteration 2;"):
        trainer.run()


def test_batch_of_one_and_missing_key(tiny_encoder):
    with pytest.raises(ValueError, match="at least 2 samples"):
        _trainer(tiny_encoder, _data(1, batch=1), max_epochs=1).run()
    with pytest.raises(KeyError, match="view2"):
        _trainer(tiny_encoder, [{"view1": torch.rand(2, 1, 8, 8)}], max_epochs=1).run()
    with pytest.raises(TypeError, match="update_target"):
        BYOLTrainer("cpu", 1, [], torch.nn.Linear(2, 2), torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), 0.1))
    with pytest.raises(ValueError, match="tau_base=0.9, tau_final=0.5"):
        _trainer(tiny_encoder, [], tau_base=0.9, tau_final=0.5)
    with pytest.raises(ValueError, match="exactly 2 views"):
        _trainer(tiny_encoder, [], view_keys=("view1", "view2", "view3"))


def test_is_the_shared_trainer_with_the_byol_method_it_builds(tiny_encoder):
    loss = BYOLLoss(reduction="sum")
    trainer = _trainer(tiny_encoder, [], tau_base=0.5, tau_final=0.8, view_keys=("a", "b"), loss_function=loss)
    assert isinstance(trainer, SelfSupervisedTrainer) and isinstance(trainer.method, BYOLMethod)
    assert (trainer.method.tau_base, trainer.method.tau_final, trainer.method.view_keys) == (0.5, 0.8, ("a", "b"))
    assert trainer.method.loss_function is loss and trainer.loss_function is loss
    assert (trainer.tau_base, trainer.tau_final, trainer.view_keys) == (0.5, 0.8, ("a", "b"))
    assert trainer.optimizer is trainer.optimizers[0] and trainer.run_name == "BYOL pre-training"
    assert trainer.prepare_batch is prepare_views
    assert "_iteration" not in vars(BYOLTrainer)  # no second copy of the step


def test_runs_value_for_value_as_the_shared_trainer_with_its_settings():
    """The wrapper hands every BYOL setting to the method: custom keys, tau range and loss give the same run."""
    from helpers import TinyEncoder

    g = torch.Generator().manual_seed(3)
    data = [{"a": torch.rand(4, 1, 8, 8, generator=g), "b": torch.rand(4, 1, 8, 8, generator=g)} for _ in range(3)]

    def run(make):
        torch.manual_seed(0)
        net = BYOL(TinyEncoder(), hidden_dim=16, projection_dim=4)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        trainer = make(net, opt)
        seen = []
        trainer.add_event_handler(Events.ITERATION_COMPLETED,
                                  lambda e: seen.append((float(e.state.output["loss"]), e.state.output["tau"])))
        trainer.run()
        return seen, net.state_dict()

    settings = {"tau_base": 0.5, "tau_final": 0.8, "view_keys": ("a", "b")}
    wrapped, wrapped_weights = run(lambda net, opt: BYOLTrainer(
        "cpu", 2, data, net, opt, loss_function=BYOLLoss(reduction="sum"), accumulation_steps=2, **settings))
    shared, shared_weights = run(lambda net, opt: SelfSupervisedTrainer(
        "cpu", 2, data, BYOLMethod(loss_function=BYOLLoss(reduction="sum"), **settings), net, opt,
        accumulation_steps=2))
    assert wrapped == shared and len(wrapped) == 6
    assert [tau for _, tau in wrapped] == pytest.approx([cosine_momentum(k, 4, 0.5, 0.8) for k in (0, 0, 1, 2, 2, 3)])
    assert max(loss for loss, _ in wrapped) > 8.0  # summed over the batch of 4, not averaged
    for key, value in shared_weights.items():
        torch.testing.assert_close(wrapped_weights[key], value, msg=key)


def test_current_tau_and_byol_scalars(tiny_encoder):
    trainer = _trainer(tiny_encoder, _data(2), max_epochs=2, tau_base=0.9)
    taus = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda e: taus.append(e.current_tau()))
    trainer.run()
    assert taus == pytest.approx([cosine_momentum(k, 4, 0.9) for k in range(4)])
    assert trainer.current_tau() == pytest.approx(1.0)  # after the last step: the end of the schedule
    scalars = byol_scalars(trainer.state.output)
    assert set(scalars) == {"byol/loss", "byol/lr", "byol/tau", "byol/projection_std"}
    assert scalars["byol/lr"] == pytest.approx(0.05) and scalars["byol/tau"] == pytest.approx(taus[-1])
    assert byol_scalars({"loss": torch.tensor(2.5)}) == {"byol/loss": 2.5}


def test_prepare_views_gives_two_views_and_names_what_is_missing():
    batch = {"view1": torch.zeros(2, 1, 4, 4), "view2": torch.ones(2, 1, 4, 4), "label": torch.zeros(2)}
    views = prepare_views(batch, "cpu", dtype=torch.float64)
    assert isinstance(views, tuple) and len(views) == 2
    assert views[0].dtype == torch.float64 and torch.equal(views[1], torch.ones(2, 1, 4, 4, dtype=torch.float64))
    with pytest.raises(KeyError, match=r"BYOL batch has no \['view2'\].*BYOLViewsd"):
        prepare_views({"view1": torch.zeros(2)}, "cpu")
    with pytest.raises(ValueError, match="exactly 2 views"):
        prepare_views(batch, "cpu", view_keys=("view1",))


def test_target_update_follows_the_optimizer_step(tiny_encoder):
    """Algorithm 1: the optimizer updates theta, then xi <- tau xi + (1 - tau) theta with the *new* theta (eq. 1)."""
    trainer = _trainer(tiny_encoder, _data(1), max_epochs=1, tau_base=0.5, tau_final=0.5)
    net = trainer.network
    online_before, target_before = _clone(net.online_parameters()), _clone(net.target_parameters())
    trainer.run()
    online_after = _clone(net.online_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(online_before, online_after))
    for target, xi, theta in zip(net.target_parameters(), target_before, online_after):
        torch.testing.assert_close(target, 0.5 * xi + 0.5 * theta)


def _inf_gradients_at(trainer, iterations):
    """Make the gradient of the first conv weight inf at the given iterations (loss stays finite)."""
    weight = trainer.network.online_encoder[0].weight
    weight.register_hook(lambda g: torch.full_like(g, float("inf")) if trainer.state.iteration in iterations else g)


@pytest.mark.filterwarnings("ignore:.*GradScaler.*")  # MONAI's own CUDA scaler, replaced below
@pytest.mark.parametrize("fused", [None, True], ids=["step-hook", "fused-scale-check"])
def test_scaler_skipped_step_moves_neither_target_nor_schedule(tiny_encoder, fused):
    trainer = _trainer(tiny_encoder, _data(2), max_epochs=1, amp=True, fused=fused)
    net = trainer.network
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    # MONAI's Trainer.run() makes its own scaler (CUDA only); put a CPU one in its place once the run started
    trainer.add_event_handler(Events.STARTED, lambda e: setattr(e, "scaler", scaler))
    _inf_gradients_at(trainer, {1})
    online0, target0 = _clone(net.online_parameters()), _clone(net.target_parameters())
    seen = []

    def record(engine):
        seen.append({
            "stepped": engine.state.output["optimizer_stepped"],
            "steps": engine.state.optimizer_steps,
            "tau": engine.state.output["tau"],
            "online_moved": any(not torch.equal(a, b) for a, b in zip(online0, net.online_parameters())),
            "target_moved": any(not torch.equal(a, b) for a, b in zip(target0, net.target_parameters())),
            "scale": scaler.get_scale(),
        })

    trainer.add_event_handler(Events.ITERATION_COMPLETED, record)
    trainer.run()
    skipped, normal = seen
    assert skipped == {"stepped": False, "steps": 0, "tau": pytest.approx(0.99), "online_moved": False,
                       "target_moved": False, "scale": 2.0**7}
    # the skipped step is not counted: the next real step still uses tau at step 0 of the schedule
    assert normal == {"stepped": True, "steps": 1, "tau": pytest.approx(0.99), "online_moved": True,
                      "target_moved": True, "scale": 2.0**7}
    assert trainer.state.optimizer_steps == 1
