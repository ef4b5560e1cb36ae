"""Multi-label thresholds chosen on validation after fine-tuning, saved with the model and read back."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from monai_ssl.networks.model_settings import read_model_settings, write_model_settings
from monai_ssl.recipes.model_thresholds import model_thresholds, record_validation_thresholds

# hand-made validation probabilities (4 images, 3 labels) and labels
PROBS = torch.tensor([[0.9, 0.1, 0.2], [0.7, 0.6, 0.3], [0.4, 0.3, 0.4], [0.2, 0.8, 0.1]])
LABELS = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
# label 0: t = 0.7 predicts exactly the two positives (F1 1); t = 0.9 gives F1 2/3, t = 0.4 4/5, t = 0.2 2/3
# label 1: t = 0.3 predicts {0.6, 0.3, 0.8}: TP 2, FP 1 -> F1 0.8; t = 0.6 -> 0.5, t = 0.8 -> 2/3, t = 0.1 -> 2/3
# label 2: no positive -> the default 0.5
EXPECTED = [0.7, 0.3, 0.5]


class Scale(nn.Module):
    """logits = inputs * w: with w = 1 the inputs are the logits."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x * self.w


def _loader():
    return [{"image": torch.logit(PROBS[:2]), "label": LABELS[:2]}, {"image": torch.logit(PROBS[2:]), "label": LABELS[2:]}]


def _model_file(tmp_path, settings=None):
    model_file = tmp_path / "finetune_model.pt"
    torch.save({"model": Scale(1.0).state_dict()}, model_file)  # the selected checkpoint: w = 1
    write_model_settings(model_file, settings or {"multi_label": True, "class_names": ["a", "b", "c"]})
    return model_file


def test_record_validation_thresholds_picks_the_f1_best_per_label_and_saves_them(tmp_path):
    model_file = _model_file(tmp_path)
    network = Scale(5.0)  # the last epoch's weights: replaced by the selected model's before choosing
    chosen = record_validation_thresholds(model_file, network, _loader(), "cpu", True, 3)
    assert chosen == pytest.approx(EXPECTED, abs=1e-6)
    assert network.w.item() == 1.0
    settings = read_model_settings(model_file)
    assert settings["thresholds"] == pytest.approx(EXPECTED, abs=1e-6)
    assert "validation" in settings["thresholds_source"] and settings["class_names"] == ["a", "b", "c"]
    # read back by evaluation / inference with thresholds "model"
    resolved = model_thresholds("model", settings, True, 3)
    assert resolved["thresholds"] == pytest.approx(EXPECTED, abs=1e-6) and "validation" in resolved["source"]


def test_record_validation_thresholds_does_nothing_single_label_or_without_a_model(tmp_path):
    model_file = _model_file(tmp_path, {"multi_label": False})
    assert record_validation_thresholds(model_file, Scale(1.0), _loader(), "cpu", False, 3) is None
    assert "thresholds" not in read_model_settings(model_file)
    assert record_validation_thresholds(tmp_path / "absent.pt", Scale(1.0), _loader(), "cpu", True, 3) is None
    assert not (tmp_path / "absent.settings.json").exists()


def test_model_thresholds_single_label_takes_none():
    assert model_thresholds("model", {"thresholds": [0.2]}, False, 3) == {"thresholds": None, "source": None}
    assert model_thresholds(0.3, {}, False, 3) == {"thresholds": None, "source": None}


def test_model_thresholds_model_without_saved_ones_is_the_default():
    resolved = model_thresholds("model", {}, True, 4)
    assert resolved["thresholds"] == [0.5, 0.5, 0.5, 0.5] and "default 0.5" in resolved["source"]


def test_model_thresholds_saved_without_source_and_numbers():
    resolved = model_thresholds("model", {"thresholds": [0.1, 0.2]}, True, 2)
    assert resolved == {"thresholds": [0.1, 0.2], "source": "saved with the model"}
    assert model_thresholds(0.25, {}, True, 3)["thresholds"] == [0.25, 0.25, 0.25]
    fixed = model_thresholds([0.1, 0.6, 0.9], {"thresholds": [0.5] * 3}, True, 3)
    assert fixed["thresholds"] == pytest.approx([0.1, 0.6, 0.9]) and "setting" in fixed["source"]
    with pytest.raises(ValueError, match="one number in \\[0, 1\\] or 3 of them"):
        model_thresholds([0.1, 0.2], {}, True, 3)
    with pytest.raises(ValueError, match="`thresholds` must be one number in \\[0, 1\\].*got 1.5"):
        model_thresholds(1.5, {}, True, 3)


def test_model_thresholds_validation_needs_a_loader_and_chooses_with_one():
    with pytest.raises(ValueError, match="`thresholds: validation` needs the labeled validation split"):
        model_thresholds("validation", {}, True, 3)
    with pytest.raises(ValueError, match="`thresholds: validation` needs the labeled validation split"):
        model_thresholds("validation", {}, True, 3, network=Scale(1.0))
    chosen = model_thresholds("validation", {"thresholds": [0.9] * 3}, True, 3, network=Scale(1.0), dataloader=_loader())
    assert chosen["thresholds"] == pytest.approx(EXPECTED, abs=1e-6) and "validation" in chosen["source"]
    json.dumps(chosen)  # goes into metrics.json as is
