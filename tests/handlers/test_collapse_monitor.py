from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine, Events

from monai_ssl.handlers.collapse_monitor import CollapseMonitor


def _run(std, caplog):
    engine = Engine(lambda e, b: {"projection_std": std, "projection_dim": 256})
    monitor = CollapseMonitor(threshold=0.1)
    monitor.attach(engine)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        engine.run([0, 1], max_epochs=2)
    return monitor, engine


def test_warns_when_collapsed(caplog):
    monitor, engine = _run(1e-4, caplog)
    assert monitor.warnings == 2
    assert "collapsing" in caplog.text
    assert engine.state.metrics["projection_std"] == 1e-4


def test_silent_when_spread(caplog):
    monitor, _ = _run(1 / 16, caplog)  # 1/sqrt(256)
    assert monitor.warnings == 0 and "collapsing" not in caplog.text


def test_tensor_values_are_summed_on_their_device_and_read_once_per_epoch(caplog):
    """The per-iteration values stay tensors (no host read) until the epoch ends."""
    values = iter([0.02, 0.04, 0.06, 0.08])
    engine = Engine(lambda e, b: {"projection_std": torch.tensor(next(values)), "projection_dim": 256})
    monitor = CollapseMonitor(threshold=0.1)
    monitor.attach(engine)
    sums = []
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: sums.append(type(monitor._sum)))
    engine.run([0, 1], max_epochs=2)
    assert sums == [torch.Tensor] * 4
    assert engine.state.metrics["projection_std"] == pytest.approx(0.07)
    assert monitor.warnings == 0


@pytest.mark.parametrize(("ratio", "warned"), [(0.999, True), (0.6, False)])
def test_warns_when_the_outputs_go_uniform(caplog, ratio, warned):
    """DINO's other collapse: the spread is above the threshold, but the teacher entropy is almost log K."""
    engine = Engine(lambda e, b: {"projection_std": 0.15 / 64, "projection_dim": 4096, "entropy_ratio": torch.tensor(ratio)})
    monitor = CollapseMonitor(threshold=0.1)
    monitor.attach(engine)
    with caplog.at_level(logging.WARNING, logger="monai_ssl"):
        engine.run([0, 1], max_epochs=1)
    assert engine.state.metrics["entropy_ratio"] == pytest.approx(ratio)
    assert monitor.warnings == int(warned)
    assert ("collapsing to the uniform distribution" in caplog.text) == warned
    assert "one vector for every image" not in caplog.text  # 0.15 of the spread reference: no spread warning
