"""The settings a model was trained with, beside its weights: written by the run, read and checked by evaluation."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine

from monai_ssl.handlers import ModelSettingsWriter
from monai_ssl.networks import check_model_settings, model_setting, publish_model, read_model_settings, write_model_settings
from monai_ssl.networks.model_settings import settings_file


def test_write_read_and_defaults(tmp_path, caplog):
    model = tmp_path / "model.pt"
    assert settings_file(model).name == "model.settings.json"
    assert read_model_settings(model) == {}  # a model saved without settings: the config's are used
    write_model_settings(model, {"working_size": 96, "normalize_red_channel": False})
    settings = read_model_settings(model)
    assert settings == {"working_size": 96, "normalize_red_channel": False}
    assert model_setting(settings, "working_size", 480) == 96 and model_setting(settings, "patch_size", 224) == 224
    settings_file(model).write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_model_settings(model)


def test_a_contradicting_value_is_refused_naming_both():
    check_model_settings({"working_size": 96}, "m.pt", working_size=96, patch_size=64)  # agreeing or unknown: fine
    with pytest.raises(ValueError, match=r"m\.pt: working_size=480 \(the model was trained with working_size=96\)"):
        check_model_settings({"working_size": 96}, "m.pt", working_size=480)


def test_writer_follows_the_selected_model(tmp_path):
    model = tmp_path / "model.pt"
    writer = ModelSettingsWriter(model, {"image_size": 32})
    engine = Engine(lambda e, b: None)
    writer.attach(engine)
    engine.run([0], max_epochs=1)
    assert not settings_file(model).exists()  # no model selected yet: nothing written
    torch.save({"w": torch.zeros(1)}, model)
    engine.run([0], max_epochs=2)
    assert json.loads(settings_file(model).read_text()) == {"image_size": 32}
    with pytest.raises(TypeError):
        ModelSettingsWriter(model, {"bad": object()})


def test_publishing_a_model_publishes_its_settings(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "best.pt")
    write_model_settings(tmp_path / "best.pt", {"image_size": 64})
    assert publish_model(tmp_path / "best.pt", tmp_path / "model.pt", enabled=False) is None
    assert not (tmp_path / "model.pt").exists()
    publish_model(tmp_path / "best.pt", tmp_path / "model.pt")
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["w"], torch.ones(1))
    assert read_model_settings(tmp_path / "model.pt") == {"image_size": 64}
