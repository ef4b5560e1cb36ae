"""A fine-tune builds the architecture its pre-trained encoder was exported with, and names a contradiction."""

from __future__ import annotations

import pytest

from monai_ssl.networks import write_model_settings
from monai_ssl.recipes import fine_tuning_architecture, pretrained_encoder_settings


@pytest.fixture
def dino_resnet50(tmp_path):
    path = tmp_path / "encoder.pt"
    path.write_bytes(b"")
    write_model_settings(path, {"method": "dino", "encoder": "resnet50", "in_channels": 1, "image_size": 64,
                                "small_images": True, "projector": False})
    return path


def test_auto_takes_the_pretrained_encoders_architecture(dino_resnet50):
    assert fine_tuning_architecture(dino_resnet50) == {"encoder": "resnet50", "small_images": True,
                                                       "head_input": "encoder", "method": "dino"}


def test_without_settings_the_defaults_are_todays(tmp_path):
    assert pretrained_encoder_settings("none") == {} and pretrained_encoder_settings(tmp_path / "encoder.pt") == {}
    assert fine_tuning_architecture("none") == {"encoder": "resnet18", "small_images": False, "head_input": "projector",
                                                "method": None}
    assert fine_tuning_architecture(tmp_path / "encoder.pt", head_input="encoder")["head_input"] == "encoder"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"encoder": "resnet18"}, "it holds a resnet50 encoder and this config builds encoder='resnet18'"),
     ({"in_channels": 3}, "it takes in_channels=1 and this config gives in_channels=3"),
     ({"small_images": False}, "it was built with small_images=True and this config asks small_images=False"),
     ({"head_input": "projector"}, "--method dino exports no projector"),
     ({"encoder": "resnet34"}, "`encoder` must be 'auto' or one of")],
)
def test_a_contradiction_names_the_file_the_method_and_both_values(dino_resnet50, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        fine_tuning_architecture(dino_resnet50, **kwargs)
    if "auto" not in message:
        assert f"{dino_resnet50} (pre-trained with --method dino)" in str(info.value)


def test_a_vit_must_fine_tune_at_its_pretraining_size(tmp_path):
    path = tmp_path / "encoder.pt"
    write_model_settings(path, {"method": "cass", "encoder": "vit_b16", "in_channels": 1, "image_size": 224,
                                "small_images": False, "projector": False})
    assert fine_tuning_architecture(path, image_size=224)["encoder"] == "vit_b16"
    with pytest.raises(ValueError, match="made for image_size=224 and this config uses image_size=64"):
        fine_tuning_architecture(path, image_size=64)
