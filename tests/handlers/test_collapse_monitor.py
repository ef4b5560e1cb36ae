from __future__ import annotations

import logging

from ignite.engine import Engine

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
