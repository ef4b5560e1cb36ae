"""Helpers of the MONAI Label tests: copies of the repository's bundles at tiny sizes, with untrained weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bundle_helpers import REPO, TINY_2D, TINY_ISIC


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
