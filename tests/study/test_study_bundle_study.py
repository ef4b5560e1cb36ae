"""What ``bundle_study`` asks the study loop to run: the default protocols and each protocol's method."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from monai_ssl.study import bundle_study

OCT = Path(__file__).resolve().parents[2] / "bundles" / "oct_byol_pseudolabel"


def test_without_protocols_the_default_ones_run(tmp_path, plans):
    bundle_study(OCT, tmp_path, fractions="0.5", seeds="0")
    (plan,) = plans
    assert list(plan.protocols) == ["supervised", "byol_finetune", "byol_linear_probe", "byol_pseudolabel"]
    assert plan.methods == {"byol_finetune": "byol", "byol_linear_probe": "byol", "byol_pseudolabel": "byol"}
    assert plan.default_method == "byol"


def test_chosen_protocols_bring_their_methods(tmp_path, plans, caplog):
    caplog.set_level(logging.INFO, logger="monai_ssl.study")
    bundle_study(OCT, tmp_path, fractions="0.5", seeds="0,1",
                 protocols="supervised,byol_finetune,dino_finetune,cass_finetune,dino_linear_probe")
    (plan,) = plans
    assert dict(plan.protocols) == {"supervised": False, "byol_finetune": True, "dino_finetune": True,
                                    "cass_finetune": True, "dino_linear_probe": True}
    assert plan.methods == {"byol_finetune": "byol", "dino_finetune": "dino", "cass_finetune": "cass",
                            "dino_linear_probe": "dino"}
    assert plan.descriptions["dino_finetune"].startswith("DINO encoder (Caron et al. 2021)")
    assert "pre-training once per seed per method (byol, dino, cass) (6 pre-trainings" in caplog.text


def test_a_study_without_method_key_has_no_methods(tmp_path, plans):
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    text = (OCT / "configs" / "study.json").read_text()
    for name in ("train.json", "finetune.json", "linear_probe.json", "pseudolabel.json", "supervised.json",
                 "evaluate.json"):
        (bundle / "configs" / name).write_text("{}")
    raw = json.loads(text)
    del raw["pretrain"]["method_key"], raw["default_protocols"]
    raw["protocols"] = {k: v for k, v in raw["protocols"].items() if "method" not in v}
    (bundle / "configs" / "study.json").write_text(json.dumps(raw))
    bundle_study(bundle, tmp_path / "out", fractions="0.5", seeds="0")
    (plan,) = plans
    assert len(plan.protocols) == 4 and plan.methods == {}


SKIN = OCT.parent / "skin_lesion_classification"


def test_the_study_json_s_default_fractions_and_seeds_are_the_paper_s(tmp_path, plans):
    """S4MI's design (10 % and 100 % of the labels, 5 seeds) without --fractions/--seeds; given ones win."""
    bundle_study(SKIN, tmp_path / "a")
    bundle_study(SKIN, tmp_path / "b", fractions="0.5", seeds="7")
    bundle_study(OCT, tmp_path / "c")
    paper, given, oct_defaults = plans
    assert [b.value for b in paper.budgets] == [0.1, 1.0] and list(paper.seeds) == [0, 1, 2, 3, 4]
    assert [b.value for b in given.budgets] == [0.5] and list(given.seeds) == [7]
    assert [b.value for b in oct_defaults.budgets] == [0.1, 0.5, 1.0] and list(oct_defaults.seeds) == [0, 1, 2]
    assert list(paper.protocols) == ["supervised", "imagenet_transfer", "byol_finetune", "dino_finetune", "cass_finetune"]


def test_default_fractions_must_be_text(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    raw = json.loads((SKIN / "configs" / "study.json").read_text())
    for name in {f for p in raw["protocols"].values() for f in p["config_file"]} | {"train.json", "evaluate.json"}:
        (bundle / "configs" / name).write_text("{}")
    raw["default_fractions"] = [0.1, 1.0]
    (bundle / "configs" / "study.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="default_fractions must be a comma-separated string"):
        bundle_study(bundle, tmp_path / "out")
