"""The step core both trainers share (``OptimizerStepTrainer``), checked once for each of them:
``SelfSupervisedTrainer`` (with BYOL; ``BYOLTrainer`` is that trainer) and ``CrossTeachingTrainer``."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.networks.nets import UNet
from torch.utils.data import DataLoader

from monai_ssl.engines import CrossTeachingTrainer, SelfSupervisedTrainer
from monai_ssl.methods import BYOLMethod
from monai_ssl.networks import BYOL, SegmentationPair


def _byol():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    net = BYOL(encoder, feature_dim=4, hidden_dim=8, projection_dim=4)
    g = torch.Generator().manual_seed(0)
    data = [{"view1": torch.rand(4, 1, 8, 8, generator=g), "view2": torch.rand(4, 1, 8, 8, generator=g)} for _ in range(2)]
    trainer = SelfSupervisedTrainer(
        "cpu", 1, data, BYOLMethod(), net, torch.optim.SGD(net.parameters(), lr=0.1), amp=True
    )
    watched = list(net.parameters()) + list(net.target_parameters())
    first = net.online_encoder[0].weight
    return trainer, watched, first, lambda out: out["tau"]


def _cross_teaching():
    torch.manual_seed(0)
    unet = lambda: UNet(2, 1, 2, channels=(4, 8), strides=(2,), num_res_units=0)  # noqa: E731
    pair = SegmentationPair(unet(), unet())
    g = torch.Generator().manual_seed(0)
    labeled = [{"image": torch.rand(1, 8, 8, generator=g), "label": torch.randint(0, 2, (1, 8, 8), generator=g)} for _ in range(4)]
    unlabeled = [{"image": torch.rand(1, 8, 8, generator=g)} for _ in range(4)]
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in pair.members.values()]
    trainer = CrossTeachingTrainer("cpu", 1, DataLoader(labeled, batch_size=2), DataLoader(unlabeled, batch_size=2),
                                   pair.members, optimizers, amp=True)
    first = next(pair.members["cnn"].parameters())
    return trainer, list(pair.parameters()), first, lambda out: out["cross_weight"]


@pytest.mark.filterwarnings("ignore:.*GradScaler.*")
@pytest.mark.parametrize("make", [_byol, _cross_teaching], ids=["byol", "cross_teaching"])
def test_a_skipped_scaler_step_moves_nothing(make):
    trainer, watched, first, schedule_value = make()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    trainer.add_event_handler(Events.STARTED, lambda e: setattr(e, "scaler", scaler))
    first.register_hook(lambda g: torch.full_like(g, float("inf")) if trainer.state.iteration == 1 else g)
    start = [p.detach().clone() for p in watched]
    seen = []

    def record(engine):
        seen.append({
            "stepped": engine.state.output["optimizer_stepped"],
            "steps": engine.state.optimizer_steps,
            "schedule": schedule_value(engine.state.output),
            "moved": any(not torch.equal(a, b) for a, b in zip(start, watched)),
        })

    trainer.add_event_handler(Events.ITERATION_COMPLETED, record)
    trainer.run()
    skipped, normal = seen
    assert skipped == {"stepped": False, "steps": 0, "schedule": skipped["schedule"], "moved": False}
    # the skipped iteration did not advance the schedule (momentum tau / ramp weight): same value at the next step
    assert normal["stepped"] and normal["steps"] == 1 and normal["moved"]
    assert normal["schedule"] == pytest.approx(skipped["schedule"])
    assert scaler.get_scale() == 2.0**7
