"""The study loop with a fake cell runner (no training): resume, skip, failure, pre-training once."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from monai_ssl.study import StudyPlan, parse_fractions, run_study


class FakeRunner:
    """Writes a file per cell and returns made-up metrics; counts its calls.

    A fraction below ``min_fraction`` raises the error ``split_labeled`` raises; ``fail`` names
    protocols that raise another error.
    """

    skip_errors = ("split_labeled: fraction=",)

    def __init__(self, min_fraction: float = 0.0, fail: tuple[str, ...] = (), fail_pretrain: bool = False):
        self.min_fraction, self.fail, self.fail_pretrain = min_fraction, fail, fail_pretrain
        self.cells: list[str] = []
        self.pretrains: list[tuple[int, bool]] = []

    def pretrain(self, run_dir: Path, seed: int, resume: bool = False) -> Path:
        self.pretrains.append((seed, resume))
        if self.fail_pretrain:
            raise RuntimeError("pre-training diverged")
        encoder = run_dir / "models" / "encoder.pt"
        encoder.parent.mkdir(parents=True, exist_ok=True)
        encoder.write_text(f"encoder {seed}")
        return encoder

    def run_cell(self, cell, cell_dir: Path, encoder: Path | None = None) -> dict:
        self.cells.append(str(cell))
        assert cell_dir.is_dir() and not any(cell_dir.iterdir())  # a fresh, empty folder
        if cell.budget.value < self.min_fraction:
            # as MONAI raises it: the ValueError wrapped by "Failed to evaluate"
            try:
                raise ValueError(f"split_labeled: fraction={cell.budget.value} leaves class 0 (6 items) with no "
                                 "labeled item")
            except ValueError as err:
                raise RuntimeError("Failed to evaluate ConfigExpression") from err
        if cell.protocol in self.fail:
            raise RuntimeError("out of memory")
        (cell_dir / "model.pt").write_text(str(encoder))
        accuracy = 0.5 + cell.budget.value / 4 + (0.1 if encoder else 0.0) + cell.seed / 100
        return {"metrics": {"accuracy": accuracy, "auc": accuracy + 0.1}, "n_labeled": int(40 * cell.budget.value)}


def _plan(fractions="0.1,1.0", seeds=(0, 1), per_seed=False, settings=None):
    return StudyPlan(protocols={"supervised": False, "byol": True}, budgets=parse_fractions(fractions),
                     seeds=list(seeds), metrics=["accuracy", "auc"], settings=settings or {"num_epochs": 2},
                     pretrain_per_seed=per_seed, baseline="supervised", title="Fake study")


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_runs_every_cell_then_reuses_them(tmp_path):
    runner = FakeRunner()
    run = run_study(runner, _plan(), tmp_path)
    assert (run.ran, run.reused, run.failed) == (8, 0, 0)
    assert runner.pretrains == [(0, False)]  # once per study
    assert runner.cells[:4] == ["supervised fraction=0.1 seed=0", "byol fraction=0.1 seed=0",
                                "supervised fraction=1 seed=0", "byol fraction=1 seed=0"]
    rows = _csv(tmp_path / "results.csv")
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    assert rows[1]["accuracy"] == str(0.5 + 0.025 + 0.1) and rows[1]["n_labeled"] == "4"
    assert (tmp_path / "results.md").read_text().startswith("# Fake study")
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    byol_cell = tmp_path / "cells" / "byol" / "fraction_1" / "seed_1"
    assert (byol_cell / "model.pt").read_text() == str(tmp_path / "pretrain" / "models" / "encoder.pt")
    saved = json.loads((byol_cell / "cell.json").read_text())
    assert saved["status"] == "ok" and saved["seed"] == 1 and saved["budget"] == 1.0 and saved["seconds"] >= 0

    again = FakeRunner()
    run = run_study(again, _plan(), tmp_path)
    assert (run.ran, run.reused) == (0, 8)
    assert again.cells == [] and again.pretrains == []  # nothing retrained
    assert _csv(tmp_path / "results.csv") == rows


def test_a_cell_killed_halfway_or_failed_runs_again(tmp_path):
    run_study(FakeRunner(), _plan(), tmp_path)
    killed = tmp_path / "cells" / "byol" / "fraction_0.1" / "seed_1"
    (killed / "cell.json").unlink()  # killed before its result was written
    (killed / "half_written.pt").write_text("x")
    failed = tmp_path / "cells" / "supervised" / "fraction_1" / "seed_0"
    (failed / "cell.json").write_text(json.dumps({"status": "failed: RuntimeError: out of memory"}))
    runner = FakeRunner()
    run = run_study(runner, _plan(), tmp_path)
    assert sorted(runner.cells) == ["byol fraction=0.1 seed=1", "supervised fraction=1 seed=0"]
    assert (run.ran, run.reused) == (2, 6)
    assert runner.pretrains == []  # the finished pre-training is reused
    assert not (killed / "half_written.pt").exists()


def test_extending_the_grid_runs_only_the_new_cells(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0]), tmp_path)
    runner = FakeRunner()
    run = run_study(runner, _plan(seeds=[0, 1]), tmp_path)
    assert run.reused == 4 and all(c.endswith("seed=1") for c in runner.cells) and len(runner.cells) == 4


def test_a_budget_that_does_not_fit_is_skipped_and_reported(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="monai_ssl")
    runner = FakeRunner(min_fraction=0.5)
    run = run_study(runner, _plan(), tmp_path)
    assert run.failed == 0
    rows = _csv(tmp_path / "results.csv")
    skipped = [r for r in rows if r["fraction"] == "0.1"]
    assert len(skipped) == 4
    reason = "split_labeled: fraction=0.1 leaves class 0 (6 items) with no labeled item"
    assert all(r["status"] == f"skipped: {reason}" and r["accuracy"] == "" for r in skipped)
    assert any(r.levelno == logging.WARNING and "byol fraction=0.1 seed=0: skipped: split_labeled" in r.getMessage()
               for r in caplog.records)
    text = (tmp_path / "results.md").read_text()
    assert f"- fraction=0.1, **skipped** (4 cell(s): supervised, byol x seed(s) 0, 1): {reason}" in text
    assert "| byol | skipped | 0.85" in text
    # skipped cells are finished: not retried
    again = FakeRunner(min_fraction=0.5)
    assert run_study(again, _plan(), tmp_path).ran == 0 and again.cells == []


def test_a_failing_cell_is_recorded_and_the_others_still_run(tmp_path, caplog):
    runner = FakeRunner(fail=("byol",))
    run = run_study(runner, _plan(seeds=[0]), tmp_path)
    assert run.failed == 2 and len(runner.cells) == 4
    rows = {r["protocol"]: r for r in _csv(tmp_path / "results.csv") if r["fraction"] == "1"}
    assert rows["byol"]["status"] == "failed: RuntimeError: out of memory" and rows["supervised"]["status"] == "ok"
    assert any("cell byol fraction=1 seed=0 failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_failed_pretraining_fails_only_the_cells_that_need_it(tmp_path):
    runner = FakeRunner(fail_pretrain=True)
    run = run_study(runner, _plan(seeds=[0]), tmp_path)
    assert runner.cells == ["supervised fraction=0.1 seed=0", "supervised fraction=1 seed=0"]
    assert run.failed == 2 and runner.pretrains == [(0, False)]  # tried once, not once per cell
    assert json.loads((tmp_path / "pretrain" / "cell.json").read_text())["status"].startswith(
        "failed: RuntimeError: pre-training diverged")
    assert "Pre-training (seed 0): failed: RuntimeError: pre-training diverged" in (tmp_path / "results.md").read_text()
    # the next invocation continues the pre-training it finds in its folder
    (tmp_path / "pretrain" / "models").mkdir()
    (tmp_path / "pretrain" / "models" / "checkpoint_epoch=1.pt").write_text("x")
    retry = FakeRunner()
    run_study(retry, _plan(seeds=[0]), tmp_path)
    assert retry.pretrains == [(0, True)] and len(retry.cells) == 2


def test_pretraining_per_seed(tmp_path):
    runner = FakeRunner()
    run_study(runner, _plan(seeds=[3, 4], per_seed=True), tmp_path)
    assert runner.pretrains == [(3, False), (4, False)]
    cell = tmp_path / "cells" / "byol" / "fraction_1" / "seed_4"
    assert (cell / "model.pt").read_text() == str(tmp_path / "pretrain" / "seed_4" / "models" / "encoder.pt")


def test_no_pretraining_without_pretrained_protocols(tmp_path):
    runner = FakeRunner()
    plan = _plan()
    plan.protocols = {"supervised": False}
    run_study(runner, plan, tmp_path)
    assert runner.pretrains == [] and not (tmp_path / "pretrain").exists()


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0], settings={"num_epochs": 2, "dataset_dir": "/a"}), tmp_path)
    with pytest.raises(ValueError, match=r"holds a study run with other settings \(num_epochs: 2 there, 5 now\)"):
        run_study(FakeRunner(), _plan(seeds=[0], settings={"num_epochs": 5, "dataset_dir": "/a"}), tmp_path)
