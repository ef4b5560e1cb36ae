"""Every bundle config that has a ``num_workers`` key defaults it to this process's share of the cores, and every
loader and cache of every config takes that key, not a number of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_ssl.utils import default_num_workers

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
ALL_CONFIGS = sorted(BUNDLES.glob("*/configs/*.json"))
CONFIGS = [p for p in ALL_CONFIGS if "num_workers" in json.loads(p.read_text())]


def _nested_num_workers(node) -> list:
    """The ``num_workers`` values anywhere inside ``node`` (a loader's or a cache's arguments)."""
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    found = [node["num_workers"]] if isinstance(node, dict) and "num_workers" in node else []
    return found + [v for child in children for v in _nested_num_workers(child)]


def test_every_bundle_has_configs_with_workers():
    assert {p.parents[1].name for p in CONFIGS} == {"byolmed2d", "oct_byol_pseudolabel", "isic_cross_teaching",
                                                    "skin_lesion_classification"}
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{p.parents[1].name}/{p.name}" for p in CONFIGS])
def test_num_workers_defaults_to_the_share_of_the_cores(config):
    parser = ConfigParser()
    parser.read_config(str(config))
    assert parser["num_workers"] == "$monai_ssl.utils.default_num_workers()"
    assert parser.get_parsed_content("num_workers") == default_num_workers()


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=[f"{p.parents[1].name}/{p.name}" for p in ALL_CONFIGS])
def test_loaders_take_the_num_workers_key(config):
    top = json.loads(config.read_text())
    nested = [v for child in top.values() for v in _nested_num_workers(child)] if isinstance(top, dict) else []
    assert all(value == "@num_workers" for value in nested), f"{config}: {nested}"
