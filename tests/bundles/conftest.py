"""Fixtures for end-to-end bundle tests: tiny MRNet-layout data and small-model overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_ssl.data import make_mrnet_demo

REPO = Path(__file__).resolve().parents[2]
BYOLMED2D = REPO / "bundles" / "byolmed2d" / "configs"

# the recipe's structure with small sizes, so each bundle runs in seconds on 2 CPU cores
TINY = {
    "image_size": 32,
    "num_slices": 4,
    "hidden_dim": 64,
    "projection_dim": 16,
    "batch_size": 2,
    "num_workers": 0,
    "num_epochs": 1,
}


@pytest.fixture(scope="module")
def tiny_mrnet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "MRNet-v1.0"
    return make_mrnet_demo(root, n_train=6, n_valid=4, num_slices=(5, 6), size=48, seed=1, planes=("sagittal",))
