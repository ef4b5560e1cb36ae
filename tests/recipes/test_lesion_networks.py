"""The ISIC bundle's networks: one definition for training, evaluation and inference, by architecture."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import FlexibleUNet, SwinUNETR, UNet

from monai_ssl.networks import SegmentationPair
from monai_ssl.recipes import lesion_model_file, lesion_network, lesion_network_name, lesion_trained_by


def test_cross_teaching_is_a_unet_and_a_swin_unetr_pair():
    pair = lesion_network("cross_teaching", in_channels=3, num_classes=2, swin_feature_size=12, output="transformer")
    assert isinstance(pair, SegmentationPair) and pair.output == "transformer"
    assert isinstance(pair.members["cnn"], UNet) and isinstance(pair.members["transformer"], SwinUNETR)
    assert pair.members["cnn"].channels == (16, 32, 64, 128, 256) and pair.members["cnn"].num_res_units == 2
    keys = pair.state_dict().keys()
    assert {k.split(".")[1] for k in keys} == {"cnn", "transformer"} and all(k.startswith("members.") for k in keys)
    pair.eval()
    with torch.no_grad():
        assert pair(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_the_same_settings_give_the_same_layout_as_a_saved_model():
    """Evaluation and inference build the network that training saved: the state dict keys and shapes match."""
    trained = lesion_network("cross_teaching", swin_feature_size=12, output="cnn").state_dict()
    served = lesion_network("cross_teaching", swin_feature_size=12, output="mean")
    served.load_state_dict(trained, strict=True)
    with pytest.raises(RuntimeError):  # another width does not load
        lesion_network("cross_teaching", swin_feature_size=24).load_state_dict(trained, strict=True)


def test_supervised_is_a_resnet34_unet():
    net = lesion_network("supervised", in_channels=3, num_classes=2)
    assert isinstance(net, FlexibleUNet)
    assert not any(k.startswith("members.") for k in net.state_dict())
    assert any("layer4.2" in k for k in net.state_dict())  # ResNet-34: 3 blocks in its last stage
    net.eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_each_architecture_names_its_file_training_config_and_report_network():
    assert lesion_model_file("/b/models", "cross_teaching") == "/b/models/model.pt"
    assert lesion_model_file("/b/models", "supervised") == "/b/models/supervised_model.pt"
    assert lesion_trained_by("cross_teaching") == "train.json"
    assert lesion_trained_by("supervised") == "train.json + supervised_train.json"  # an overlay of train.json
    assert lesion_network_name("cross_teaching", "mean") == "mean"
    assert lesion_network_name("supervised", "cnn") == "resnet34_unet"


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="setting 'architecture' must be one of"):
        lesion_network("unet")
    with pytest.raises(ValueError, match="setting 'architecture'"):
        lesion_model_file("/b/models", "Supervised")
    with pytest.raises(ValueError, match="output must be one of"):
        lesion_network("cross_teaching", swin_feature_size=12, output="both")
