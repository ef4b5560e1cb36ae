"""FinalModelWriter: the model and its settings written atomically when the run completes, never a diverged one."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine, Events

from monai_ssl.handlers import FinalModelWriter
from monai_ssl.networks import read_model_settings


def test_writes_state_dict_and_settings_on_completion(tmp_path):
    net = torch.nn.Linear(2, 2)
    model_file = tmp_path / "models" / "picie_model.pt"
    engine = Engine(lambda e, b: None)
    FinalModelWriter(net, model_file, {"architecture": "picie", "num_clusters": 2}).attach(engine)
    seen = []
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen.append(model_file.exists()))
    engine.run([0, 1], max_epochs=2)
    assert seen == [False, False]  # nothing before the end
    state = torch.load(model_file, weights_only=True)
    assert torch.equal(state["weight"], net.weight)
    assert read_model_settings(model_file) == {"architecture": "picie", "num_clusters": 2}
    assert not list(model_file.parent.glob("*.tmp"))


def test_refuses_nonfinite_weights_and_keeps_the_old_file(tmp_path):
    net = torch.nn.Linear(2, 2)
    model_file = tmp_path / "m.pt"
    model_file.write_bytes(b"old")
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    engine = Engine(lambda e, b: None)
    FinalModelWriter(net, model_file).attach(engine)
    with pytest.raises(FloatingPointError, match="NaN"):
        engine.run([0], max_epochs=1)
    assert model_file.read_bytes() == b"old"
    json.dumps({})  # settings are optional: none written
