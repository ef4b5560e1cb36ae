"""Fixtures for end-to-end bundle tests: tiny MRNet-layout and ISIC 2017-layout data."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_ssl.data import make_isic_demo, make_mrnet_demo


@pytest.fixture(scope="module")
def tiny_mrnet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "MRNet-v1.0"
    return make_mrnet_demo(root, n_train=6, n_valid=4, num_slices=(5, 6), size=48, seed=1, planes=("sagittal",))


@pytest.fixture(scope="module")
def tiny_isic(tmp_path_factory) -> Path:
    """12 synthetic dermoscopy images of 80-96 x 64-80 pixels: 8 train, 2 val, 2 test (ISIC 2017 layout)."""
    root = tmp_path_factory.mktemp("isic") / "ISIC2017"
    return make_isic_demo(root, n_train=8, n_val=2, n_test=2, height=(64, 80), width=(80, 96))
