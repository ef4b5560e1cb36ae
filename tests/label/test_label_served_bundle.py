"""Reading bundles for MONAI Label: kind, labels, weights, and the reasons a bundle is not served."""

from __future__ import annotations

import shutil

import pytest
import torch

from label_helpers import ISIC_SIZES, OCT_SIZES, copy_bundle, save_network_weights
from monai_ssl.label import BundleNotServable, discover_bundles, read_served_bundle


@pytest.fixture
def bundles(tmp_path):
    root = tmp_path / "bundles"
    save_network_weights(copy_bundle("isic_cross_teaching", root, ISIC_SIZES))
    save_network_weights(copy_bundle("oct_byol_pseudolabel", root, OCT_SIZES))
    copy_bundle("byolmed2d", root, {})  # never trained: no models/model.pt
    return root


def test_kinds_labels_and_dimensions_come_from_metadata(bundles):
    served, not_loaded = discover_bundles(bundles)
    assert sorted(served) == ["isic_cross_teaching", "oct_byol_pseudolabel"]
    isic, oct_ = served["isic_cross_teaching"], served["oct_byol_pseudolabel"]
    assert (isic.kind, isic.dimension, isic.is_pair) == ("segmentation", 2, True)
    assert isic.class_names == ["background", "lesion"] and isic.labels == {"lesion": 1}
    assert (oct_.kind, oct_.dimension, oct_.is_pair) == ("classification", 2, False)
    assert oct_.class_names == ["CNV", "DME", "DRUSEN", "NORMAL"]
    assert oct_.model_file == bundles.resolve() / "oct_byol_pseudolabel" / "models" / "model.pt"
    assert list(not_loaded) == ["byolmed2d"]


def test_bundle_without_weights_is_listed_with_the_reason(bundles):
    _, not_loaded = discover_bundles(bundles, "byolmed2d,isic_cross_teaching")
    assert "no trained weights" in not_loaded["byolmed2d"]
    assert "byolmed2d/models/model.pt does not exist" in not_loaded["byolmed2d"]


def test_single_logit_classifier_gets_two_class_names(bundles):
    folder = bundles / "byolmed2d"
    shutil.rmtree(folder)
    save_network_weights(copy_bundle("byolmed2d", bundles, {"image_size": 32, "num_slices": 4}))
    bundle = read_served_bundle(folder)
    assert bundle.kind == "classification" and bundle.dimension == 3
    assert bundle.class_names[0] == "negative" and len(bundle.class_names) == 2


def test_weights_that_do_not_fit_are_refused_by_name(bundles):
    model = bundles / "oct_byol_pseudolabel" / "models" / "model.pt"
    torch.save({"conv.weight": torch.zeros(1)}, model)
    with pytest.raises(BundleNotServable, match="model.pt"):
        read_served_bundle(model.parents[1])
    served, not_loaded = discover_bundles(bundles)
    assert "isic_cross_teaching" in served and "oct_byol_pseudolabel" in not_loaded  # the others still load


def test_unknown_names_and_missing_folder(bundles, tmp_path):
    served, not_loaded = discover_bundles(bundles, ["nope"])
    assert not served and "no bundle folder" in not_loaded["nope"] and "isic_cross_teaching" in not_loaded["nope"]
    with pytest.raises(FileNotFoundError, match="bundles folder not found"):
        discover_bundles(tmp_path / "missing")
