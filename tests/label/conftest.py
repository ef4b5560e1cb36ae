"""Fixtures of the MONAI Label tests: tiny bundles trained for one epoch, copied out of the repository."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))  # bundle_helpers

from bundle_helpers import REPO, TINY_2D, TINY_ISIC  # noqa: E402


def copy_bundle(name: str, bundles_dir: Path, settings: dict) -> Path:
    """Copy ``bundles/<name>/configs`` to ``<bundles_dir>/<name>/configs`` with ``settings`` written into each
    config that has them (as a user edits a bundle's sizes), so that MONAI Label parses the tiny sizes."""
    folder = bundles_dir / name
    shutil.copytree(REPO / "bundles" / name / "configs", folder / "configs")
    for path in (folder / "configs").glob("*.json"):
        config = json.loads(path.read_text())
        if isinstance(config, dict):
            config.update({k: v for k, v in settings.items() if k in config})
            path.write_text(json.dumps(config, indent=4))
    return folder


def save_network_weights(folder: Path) -> Path:
    """``models/model.pt`` of the bundle's own ``network_def`` (what a training writes), without training."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(folder / "configs" / "inference.json"))
    parser["bundle_root"] = str(folder)
    (folder / "models").mkdir(exist_ok=True)
    torch.save(parser.get_parsed_content("network_def").state_dict(), folder / "models" / "model.pt")
    return folder


ISIC_SIZES = {k: v for k, v in TINY_ISIC.items() if k != "num_epochs"}
OCT_SIZES = {k: v for k, v in TINY_2D.items() if k != "num_epochs"}


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
