"""Fixtures for end-to-end bundle tests: tiny MRNet-layout data."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_ssl.data import make_mrnet_demo


@pytest.fixture(scope="module")
def tiny_mrnet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "MRNet-v1.0"
    return make_mrnet_demo(root, n_train=6, n_valid=4, num_slices=(5, 6), size=48, seed=1, planes=("sagittal",))
