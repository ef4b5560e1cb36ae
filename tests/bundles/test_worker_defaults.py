"""Every bundle config that has a ``num_workers`` key defaults it to this process's share of the cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_ssl.utils import default_num_workers

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
CONFIGS = sorted(p for p in BUNDLES.glob("*/configs/*.json") if "num_workers" in json.loads(p.read_text()))


def test_every_bundle_has_configs_with_workers():
    assert {p.parents[1].name for p in CONFIGS} == {"byolmed2d", "oct_byol_pseudolabel", "isic_cross_teaching"}
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{p.parents[1].name}/{p.name}" for p in CONFIGS])
def test_num_workers_defaults_to_the_share_of_the_cores(config):
    parser = ConfigParser()
    parser.read_config(str(config))
    assert parser["num_workers"] == "$monai_ssl.utils.default_num_workers()"
    assert parser.get_parsed_content("num_workers") == default_num_workers()
