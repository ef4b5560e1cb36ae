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


def parsed_datalists(overrides: dict) -> dict:
    """The datalists a training run reads: each ``*datalist``/``labeled``/``unlabeled`` override resolved by
    MONAI's config parser, as the bundle run resolves it (the items come from the datalist file)."""
    from monai.bundle import ConfigParser

    ids = [k for k in overrides if k in ("labeled", "unlabeled") or k.endswith("#datalist")]
    parser = ConfigParser({"monailabel_datalist": overrides["monailabel_datalist"]})
    for config_id in ids:
        parser[config_id.replace("#", "_")] = overrides[config_id]
    return {config_id: parser.get_parsed_content(config_id.replace("#", "_")) for config_id in ids}


def served_bundles(bundles: Path, isic_bundle: Path) -> Path:
    """``bundles/`` of a test server: the trained tiny cross-teaching bundle and an OCT classifier with weights."""
    shutil.copytree(isic_bundle, bundles / "isic_cross_teaching")
    save_network_weights(copy_bundle("oct_byol_pseudolabel", bundles, OCT_SIZES))
    return bundles
