"""The cluster-to-class map only for cluster architectures (PiCIE): evaluation names, inference reads."""

from __future__ import annotations

import pytest
import torch

from monai_ssl.recipes import (
    ClusterNames,
    cluster_mapping,
    cluster_report_entries,
    inference_cluster_map,
    lesion_cluster_names,
    lesion_selection_split,
)


def test_class_architectures_need_no_map(tmp_path):
    assert lesion_cluster_names("cross_teaching", None, None, None, None, 2, 2, "cpu") is None
    assert cluster_mapping(None) is None and cluster_report_entries(None) == {}
    assert inference_cluster_map("supervised", "[1, 0]", str(tmp_path / "m.pt")) is None


def test_picie_inference_reads_the_map_or_asks_for_evaluation(tmp_path):
    model = tmp_path / "picie_model.pt"
    torch.save({"w": torch.zeros(1)}, model)
    assert inference_cluster_map("picie", [1, 0], str(model)) == [1, 0]
    assert inference_cluster_map("picie", "[1, 0]", str(model)) == [1, 0]
    with pytest.raises(FileNotFoundError, match="evaluate.json"):
        inference_cluster_map("picie", None, str(model))


def test_names_become_the_mapping_and_report_entries():
    names = ClusterNames(mapping=[1, 0], confusion=[[1, 9], [8, 2]], pixel_accuracy=0.85)
    assert cluster_mapping(names) == [1, 0]
    entries = cluster_report_entries(names)
    assert entries["cluster_map"] == [1, 0] and "only to name the clusters" in entries["cluster_naming"]


def test_picie_selects_on_no_split():
    assert lesion_selection_split("picie") is None
    assert lesion_selection_split("cross_teaching") == "val"


def test_picie_backbone_starts_from_an_imagenet_checkpoint(tmp_path):
    """A torchvision-layout ResNet-18 checkpoint (with its fc head) fills PiCIE's backbone; other architectures refuse."""
    from monai_ssl.networks import resnet18_encoder
    from monai_ssl.recipes import lesion_network

    source = resnet18_encoder(in_channels=3, pool=False)
    state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / "resnet18.pth")
    net = lesion_network("picie", picie_backbone="resnet18", feature_size=8, pretrained_weights=str(tmp_path / "resnet18.pth"))
    assert torch.equal(net.backbone.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="ResNet-18.*ResNet-34|ResNet-34"):
        lesion_network("picie", picie_backbone="resnet34", pretrained_weights=str(tmp_path / "resnet18.pth"))
    with pytest.raises(ValueError, match="pretrained_weights"):
        lesion_network("supervised", pretrained_weights=str(tmp_path / "resnet18.pth"))
