"""The study's 0 % column: a label-free protocol (PiCIE-like) at fraction 0, the others above 0.

A small bundle (empty configs) runs through :func:`bundle_study` with ``run_bundle`` replaced by a
fake that records the overrides of each run, so the whole path (study.json -> budgets -> cells ->
runner -> reports -> plot) is checked without training.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_ssl.study import StudyPlan, bundle_study, markdown_report, parse_fractions, run_study

runner_module = importlib.import_module("monai_ssl.study.runner")

# made-up test IoU per protocol (+ fraction / 10 + seed / 100 for the others)
BASE = {"picie": 0.40, "supervised": 0.50, "cross": 0.55}


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    configs = bundle / "configs"
    configs.mkdir(parents=True)
    for name in ("train.json", "picie.json", "supervised.json", "evaluate.json"):
        (configs / name).write_text("{}")
    study = {
        "name": "tiny lesions",
        "labeled_count_id": "labeled",
        "label_budget": {"fraction": {"labeled_fraction": "{fraction}"}, "shots": {"labeled_per_class": "{shots}"}},
        "common_overrides": {"ckpt_dir": "{cell_dir}/models", "output_dir": "{cell_dir}/runs"},
        "evaluate": {"config_file": ["evaluate.json"], "metrics_file": "{cell_dir}/eval/metrics.json",
                     "overrides": {"model_file": "{model_file}", "output_dir": "{cell_dir}/eval"}},
        "protocols": {
            "picie": {"description": "PiCIE clustering, no labels", "config_file": ["train.json", "picie.json"],
                      "model_file": "{ckpt_dir}/picie_model.pt", "label_free": True,
                      "evaluate_overrides": {"architecture": "picie"}},
            "supervised": {"config_file": ["train.json", "supervised.json"], "model_file": "{ckpt_dir}/model.pt"},
            "cross": {"config_file": ["train.json"], "model_file": "{ckpt_dir}/model.pt"},
        },
        "baseline": "supervised",
        "metrics": {"iou": ["mean_iou"]},
    }
    (configs / "study.json").write_text(json.dumps(study))
    return bundle


class _Parser:
    """A parsed config that fails the run when the labeled items are looked up (a label-free run has none)."""

    def __contains__(self, key: str) -> bool:
        raise AssertionError(f"a label-free cell looked up {key!r}")


class _Workflow:
    def __init__(self, parser):
        self.parser = parser


class FakeBundle:
    """Replaces ``run_bundle``: records each run's config names and overrides, writes the model and metrics.

    ``stop_at`` (a count of trainings) raises ``KeyboardInterrupt`` in that training, as a Ctrl-C would.
    """

    def __init__(self, stop_at: int | None = None):
        self.calls: list[tuple[list[str], dict]] = []
        self.trainings = 0
        self.stop_at = stop_at

    def __call__(self, config_files, overrides):
        names = [Path(f).name for f in config_files]
        self.calls.append((names, dict(overrides)))
        cell_dir = Path(overrides["output_dir"]).parent
        protocol = cell_dir.parts[-3]
        if names == ["evaluate.json"]:
            fraction = float(cell_dir.parts[-2].split("_")[1])
            seed = int(cell_dir.parts[-1].split("_")[1])
            iou = BASE[protocol] + (0.0 if protocol == "picie" else fraction / 10 + seed / 100)
            Path(overrides["output_dir"]).mkdir(parents=True)
            (Path(overrides["output_dir"]) / "metrics.json").write_text(json.dumps({"mean_iou": iou}))
            return _Workflow(ConfigParser({}))
        self.trainings += 1
        if self.trainings == self.stop_at:
            raise KeyboardInterrupt
        Path(overrides["ckpt_dir"]).mkdir(parents=True)
        model = "picie_model.pt" if protocol == "picie" else "model.pt"
        (Path(overrides["ckpt_dir"]) / model).write_text("weights")
        if protocol == "picie":
            return _Workflow(_Parser())
        return _Workflow(ConfigParser({"labeled": list(range(int(round(20 * overrides["labeled_fraction"]))))}))

    def trainings_of(self, protocol: str) -> list[dict]:
        return [o for names, o in self.calls if names != ["evaluate.json"] and f"/cells/{protocol}/" in o["ckpt_dir"]]


def _csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_picie_runs_only_at_zero_and_the_others_only_above(tmp_path, monkeypatch):
    fake = FakeBundle()
    monkeypatch.setattr(runner_module, "run_bundle", fake)
    out = tmp_path / "study"
    run = bundle_study(_bundle(tmp_path), out, fractions="0,0.1,1.0", seeds="0,1",
                       protocols="picie,supervised,cross")

    assert run.ran == 10 and run.failed == 0 and run.reused == 0  # 2 seeds x (picie@0 + 2 protocols x 2 budgets)
    cells = sorted(str(p.parent.relative_to(out)) for p in out.glob("cells/*/*/*/cell.json"))
    assert cells == sorted(
        [f"cells/picie/fraction_0/seed_{s}" for s in (0, 1)]
        + [f"cells/{p}/fraction_{f}/seed_{s}" for p in ("supervised", "cross") for f in ("0.1", "1") for s in (0, 1)]
    )
    assert not (out / "cells" / "picie" / "fraction_0.1").exists()
    assert not (out / "cells" / "supervised" / "fraction_0").exists()

    picie = fake.trainings_of("picie")
    assert len(picie) == 2
    assert all("labeled_fraction" not in o and "labeled_per_class" not in o for o in picie)  # no budget override
    assert [o["seed"] for o in picie] == [0, 1]
    assert [o["labeled_fraction"] for o in fake.trainings_of("supervised")] == [0.1, 1.0, 0.1, 1.0]
    evaluations = [o for names, o in fake.calls if names == ["evaluate.json"] and "/picie/" in o["output_dir"]]
    assert [o["architecture"] for o in evaluations] == ["picie", "picie"]

    rows = _csv(out / "results.csv")
    assert len(rows) == 10 and list(rows[0])[:3] == ["protocol", "fraction", "seed"]
    picie_rows = [r for r in rows if r["protocol"] == "picie"]
    assert [(r["fraction"], r["n_labeled"], r["status"]) for r in picie_rows] == [("0", "0", "ok")] * 2
    assert {r["n_labeled"] for r in rows if r["protocol"] == "supervised"} == {"2", "20"}
    assert json.loads((out / "cells/picie/fraction_0/seed_1/cell.json").read_text())["n_labeled"] == 0

    text = (out / "results.md").read_text()
    table = text.split("## iou")[1].split("\n\n")[1].splitlines()
    assert table[0] == "| protocol | 0% (0 labels) | 10% (2 labels) | 100% (20 labels) |"
    assert table[2] == "| picie | 0.400 ± 0.000 (n=2) | n/a | n/a |"
    assert table[3].startswith("| supervised | n/a | 0.515 ± ")
    gain = text.split("Gain over `supervised`")[1].split("\n\n")[1].splitlines()
    assert gain[0] == "| protocol | 10% (2 labels) | 100% (20 labels) |"  # no 0 % column: no baseline there
    assert gain[2:] == ["| cross | +0.050 ± 0.000 (n=2) | +0.050 ± 0.000 (n=2) |"]  # picie has no column there
    assert "Label-free protocol(s) `picie` train on no label" in text
    assert "masks only to name the clusters" in text
    assert (out / "results.png").stat().st_size > 0


def test_an_interrupted_study_with_a_zero_column_reuses_its_finished_cells(tmp_path, monkeypatch):
    bundle, out = _bundle(tmp_path), tmp_path / "study"
    settings = dict(fractions="0,0.1,1.0", seeds="0,1", protocols="picie,supervised,cross")
    # order: seed 0: picie@0, supervised@0.1, cross@0.1, supervised@1, cross@1; seed 1: picie@0 (6th), ...
    monkeypatch.setattr(runner_module, "run_bundle", FakeBundle(stop_at=7))
    with pytest.raises(KeyboardInterrupt):
        bundle_study(bundle, out, **settings)
    assert len(list(out.glob("cells/*/*/*/cell.json"))) == 6
    fake = FakeBundle()
    monkeypatch.setattr(runner_module, "run_bundle", fake)
    run = bundle_study(bundle, out, **settings)
    assert (run.reused, run.ran, run.failed) == (6, 4, 0)
    assert fake.trainings_of("picie") == []  # both picie cells had finished
    assert [r["status"] for r in run.records] == ["ok"] * 10


def test_fraction_zero_needs_a_label_free_protocol(tmp_path, plans):
    with pytest.raises(ValueError, match=r"fractions: fraction 0 \(no labels\) is the column of a label-free protocol "
                                         r"\(study.json \"label_free\": true\), and none of the chosen protocols "
                                         r"\['supervised', 'cross'\] is one"):
        bundle_study(_bundle(tmp_path), tmp_path / "out", fractions="0,0.1", protocols="supervised,cross")
    assert plans == []


@pytest.mark.parametrize("budget", [{"fractions": "0.1,1.0"}, {"shots": "5"}])
def test_only_label_free_protocols_need_fraction_zero(tmp_path, plans, budget):
    with pytest.raises(ValueError, match=r"the chosen protocol\(s\) \['picie'\] are label-free and run only at "
                                         r"fraction 0 \(no labels\): add it, e.g. --fractions 0"):
        bundle_study(_bundle(tmp_path), tmp_path / "out", protocols="picie", **budget)
    assert plans == []


def test_a_label_free_protocol_without_zero_runs_no_cell_and_says_so(tmp_path, plans, caplog):
    caplog.set_level(logging.INFO, logger="monai_ssl.study")
    bundle_study(_bundle(tmp_path), tmp_path / "out", fractions="0.1,1.0", seeds="0")
    (plan,) = plans
    assert list(plan.protocols) == ["picie", "supervised", "cross"] and list(plan.label_free) == ["picie"]
    assert "label-free protocol(s) picie run only at fraction 0 (no labels), which is not among the budgets " \
           "(10%, 100%): they run no cell" in caplog.text


def test_default_fractions_may_hold_zero(tmp_path, plans):
    bundle = _bundle(tmp_path)
    path = bundle / "configs" / "study.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "default_fractions": "0,0.5"}))
    bundle_study(bundle, tmp_path / "out", seeds="0")
    (plan,) = plans
    assert [b.name for b in plan.budgets] == ["fraction_0", "fraction_0.5"]
    with pytest.raises(ValueError, match=r"study.json default_fractions: fraction 0 \(no labels\)"):
        bundle_study(bundle, tmp_path / "out2", seeds="0", protocols="supervised")


def test_a_plan_names_only_chosen_protocols_as_label_free(tmp_path):
    plan = StudyPlan(protocols={"supervised": False}, budgets=parse_fractions("0.1"), seeds=[0], metrics=["iou"],
                     label_free=["picie"])
    with pytest.raises(ValueError, match=r"StudyPlan.label_free names protocol\(s\) \['picie'\] that are not chosen"):
        run_study(object(), plan, tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "results.csv").exists()


def test_with_only_the_baseline_beside_picie_there_is_no_gain_table():
    zero, tenth = parse_fractions("0,0.1", allow_zero=True)
    rows = [{"protocol": "picie", "budget": zero, "seed": 0, "n_labeled": 0, "metrics": {"iou": 0.4}, "status": "ok"},
            {"protocol": "supervised", "budget": tenth, "seed": 0, "n_labeled": 3, "metrics": {"iou": 0.6},
             "status": "ok"},
            {"protocol": "supervised", "budget": tenth, "seed": 1, "n_labeled": 3, "metrics": {}, "status": "not run"}]
    plan = StudyPlan(protocols={"picie": False, "supervised": False}, budgets=[zero, tenth], seeds=[0, 1],
                     metrics=["iou"], baseline="supervised", label_free=["picie"])
    text = markdown_report(rows, plan)
    assert "| protocol | 0% (0 labels) | 10% (3 labels) |" in text
    assert "| picie | 0.400 (n=1) | n/a |" in text and "| supervised | n/a | 0.600 (n=1) |" in text
    assert "Gain over" not in text
