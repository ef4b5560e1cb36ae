"""Fixtures of the MONAI Label tests: tiny bundles trained for one epoch, copied out of the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from label_helpers import ISIC_SIZES, copy_bundle


@pytest.fixture(scope="session")
def isic_data(tmp_path_factory) -> Path:
    """The tiny synthetic ISIC 2017 demo: 8 train, 2 val, 2 test images of 64-80 x 80-96 pixels."""
    from monai_ssl.data import make_isic_demo

    return make_isic_demo(tmp_path_factory.mktemp("isic") / "ISIC2017", n_train=8, n_val=2, n_test=2, height=(64, 80), width=(80, 96))


@pytest.fixture(scope="session")
def isic_bundle(tmp_path_factory, isic_data) -> Path:
    """A tiny cross-teaching bundle trained for one epoch on the demo, in ``<tmp>/bundles/isic_cross_teaching``."""
    import torch
    from monai.bundle import run

    folder = copy_bundle("isic_cross_teaching", tmp_path_factory.mktemp("served") / "bundles", ISIC_SIZES)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # SwinUNETR's backward is far slower on 2 busy threads (see tests/conftest.py)
    try:
        run(config_file=str(folder / "configs" / "train.json"), bundle_root=str(folder), dataset_dir=str(isic_data), num_epochs=1)
    finally:
        torch.set_num_threads(threads)
    return folder
