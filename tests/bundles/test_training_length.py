"""Every training config can be given its length in optimizer steps (``--num_steps``) as well as in epochs.

The study's ``--num_steps`` sets ``num_steps`` on each cell's training config; a config without the key
would ignore it and train its default epochs, so every config with a ``max_epochs`` must pass it to
``run_length`` with that config's optimizer steps per epoch.
"""

from __future__ import annotations

import json
import math

import pytest
from monai.bundle import ConfigParser

from bundle_helpers import BYOLMED2D, ISIC, REPO, TINY, TINY_ISIC, error_messages

TRAINING_CONFIGS = sorted(
    p for p in (REPO / "bundles").glob("*/configs/*.json") if "max_epochs" in json.loads(p.read_text())
)


def test_the_bundles_have_the_training_configs_the_study_runs():
    names = {f"{p.parent.parent.name}/{p.name}" for p in TRAINING_CONFIGS}
    assert names == {"byolmed2d/train.json", "byolmed2d/finetune.json", "oct_byol_pseudolabel/train.json",
                     "oct_byol_pseudolabel/finetune.json", "isic_cross_teaching/train.json",
                     "skin_lesion_classification/train.json", "skin_lesion_classification/finetune.json"}


@pytest.mark.parametrize("config", TRAINING_CONFIGS, ids=lambda p: f"{p.parent.parent.name}-{p.name}")
def test_every_training_config_takes_num_steps(config):
    content = json.loads(config.read_text())
    assert "num_steps" in content and content["num_steps"] is None, f"{config}: no `num_steps` setting"
    expression = content["max_epochs"]
    assert "num_steps=@num_steps" in expression and "steps_per_epoch=" in expression, f"{config}: {expression}"


def _max_epochs(config_files: list, **overrides) -> tuple[int, int]:
    """``max_epochs`` and the training loader's length of the merged configs with ``overrides``."""
    parser = ConfigParser()
    parser.read_config([str(f) for f in config_files])
    parser.update(overrides)
    return parser.get_parsed_content("max_epochs"), len(parser.get_parsed_content("train#dataloader"))


@pytest.mark.parametrize(
    "configs", [["train.json"], ["train.json", "supervised_train.json"]], ids=["cross_teaching", "supervised"]
)
def test_num_steps_gives_the_isic_run_the_epochs_that_cover_them(configs, tiny_isic, tmp_path):
    settings = {**TINY_ISIC, "bundle_root": str(tmp_path), "dataset_dir": str(tiny_isic), "num_epochs": None}
    epochs, steps_per_epoch = _max_epochs([ISIC / c for c in configs], num_steps=5, **settings)
    assert steps_per_epoch == 2  # 4 labeled images (50% of 8), 2 per batch
    assert epochs == math.ceil(5 / steps_per_epoch) == 3


def test_num_steps_gives_byolmed2d_the_epochs_that_cover_them(tiny_mrnet, tmp_path):
    settings = {**TINY, "bundle_root": str(tmp_path), "dataset_dir": str(tiny_mrnet), "num_epochs": None}
    epochs, steps_per_epoch = _max_epochs([BYOLMED2D / "train.json"], num_steps=7, **settings)
    assert steps_per_epoch == 3  # 6 exams, 2 per batch, last batch dropped
    assert epochs == 3
    epochs, _ = _max_epochs([BYOLMED2D / "train.json"], num_steps=7, accumulation_steps=3, **settings)
    assert epochs == 7  # one optimizer step per epoch: 3 batches accumulated


def test_num_steps_and_num_epochs_together_are_refused(tiny_isic, tmp_path):
    settings = {**TINY_ISIC, "bundle_root": str(tmp_path), "dataset_dir": str(tiny_isic), "num_epochs": 2}
    with pytest.raises(Exception) as info:
        _max_epochs([ISIC / "train.json"], num_steps=5, **settings)
    messages = error_messages(info.value)
    assert any("num_epochs" in m and "num_steps" in m for m in messages), messages
