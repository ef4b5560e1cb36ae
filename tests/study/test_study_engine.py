"""The study loop with a fake cell runner (no training): resume, skip, failure, pre-training per seed or shared."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from monai_ssl.data import LabelBudgetError
from monai_ssl.study import StudyPlan, parse_fractions, run_study

SHARED_WORDS = "intervals cover fine-tuning seeds only; pre-training ran once (seed 0)"
PER_SEED_WORDS = "intervals cover pre-training and fine-tuning"


class FakeRunner:
    """Writes a file per cell and returns made-up metrics; counts its calls.

    A fraction below ``min_fraction`` raises the error ``split_labeled`` raises (a ``LabelBudgetError``;
    with ``budget_error=ValueError`` a plain one); ``fail`` names protocols that raise another error,
    ``error`` a ``ValueError`` message that every cell raises (wrapped as MONAI wraps it).
    """

    skip_errors: tuple[str, ...] = ()

    def __init__(self, min_fraction: float = 0.0, fail: tuple[str, ...] = (), fail_pretrain: bool = False,
                 budget_error: type[ValueError] = LabelBudgetError, error: str | None = None):
        self.min_fraction, self.fail, self.fail_pretrain = min_fraction, fail, fail_pretrain
        self.budget_error, self.error = budget_error, error
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
                raise self.budget_error(f"split_labeled: fraction={cell.budget.value} leaves class 0 (6 items) "
                                        "with no labeled item")
            except ValueError as err:
                raise RuntimeError("Failed to evaluate ConfigExpression") from err
        if self.error is not None:
            try:
                raise ValueError(self.error)
            except ValueError as err:
                raise RuntimeError("Failed to evaluate ConfigExpression") from err
        if cell.protocol in self.fail:
            raise RuntimeError("out of memory")
        (cell_dir / "model.pt").write_text(str(encoder))
        accuracy = 0.5 + cell.budget.value / 4 + (0.1 if encoder else 0.0) + cell.seed / 100
        return {"metrics": {"accuracy": accuracy, "auc": accuracy + 0.1}, "n_labeled": int(40 * cell.budget.value)}


def _plan(fractions="0.1,1.0", seeds=(0, 1), shared=False, settings=None, protocols=None):
    return StudyPlan(protocols=protocols or {"supervised": False, "byol": True}, budgets=parse_fractions(fractions),
                     seeds=list(seeds), metrics=["accuracy", "auc"], settings=settings or {"num_epochs": 2},
                     shared_pretraining=shared, baseline="supervised", title="Fake study")


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_runs_every_cell_then_reuses_them(tmp_path):
    runner = FakeRunner()
    run = run_study(runner, _plan(), tmp_path)
    assert (run.ran, run.reused, run.failed) == (8, 0, 0)
    assert runner.pretrains == [(0, False), (1, False)]  # by default once per seed
    assert runner.cells[:4] == ["supervised fraction=0.1 seed=0", "byol fraction=0.1 seed=0",
                                "supervised fraction=1 seed=0", "byol fraction=1 seed=0"]
    rows = _csv(tmp_path / "results.csv")
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    assert rows[1]["accuracy"] == str(0.5 + 0.025 + 0.1) and rows[1]["n_labeled"] == "4"
    assert [(r["protocol"], r["seed"], r["pretrain_seed"]) for r in rows[:2]] == [("supervised", "0", ""),
                                                                                 ("byol", "0", "0")]
    assert rows[-1]["pretrain_seed"] == "1"  # byol, seed 1: its own pre-training
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# Fake study") and PER_SEED_WORDS in text and SHARED_WORDS not in text
    assert "a difference the seeds agree on, pre-training included" in text
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "study_settings.json").read_text()) == {"num_epochs": 2,
                                                                          "shared_pretraining": False}
    byol_cell = tmp_path / "cells" / "byol" / "fraction_1" / "seed_1"
    assert (byol_cell / "model.pt").read_text() == str(tmp_path / "pretrain" / "seed_1" / "models" / "encoder.pt")
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
    assert runner.pretrains == [(1, False)]  # only the new seed's pre-training


def test_a_budget_that_does_not_fit_is_skipped_by_its_type_and_reported(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="monai_ssl")
    runner = FakeRunner(min_fraction=0.5)  # a LabelBudgetError wrapped by MONAI's RuntimeError; no skip_errors
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


def test_an_unrelated_value_error_fails_the_cell(tmp_path):
    runner = FakeRunner(error="split_labeled: give exactly one of fraction and per_class")
    run = run_study(runner, _plan(seeds=[0], protocols={"supervised": False}), tmp_path)
    assert run.failed == 2
    assert {r["status"] for r in _csv(tmp_path / "results.csv")} == {
        "failed: RuntimeError: Failed to evaluate ConfigExpression"}


def test_budget_text_is_no_longer_matched_but_listed_skip_errors_still_are(tmp_path):
    # the old budget message as a plain ValueError: not a budget any more (no text matching by default)
    plain = FakeRunner(min_fraction=0.5, budget_error=ValueError)
    run = run_study(plain, _plan(seeds=[0], protocols={"supervised": False}), tmp_path / "plain")
    assert run.failed == 1
    # a study.json that lists its own errors keeps them (backward compatible)
    listed = FakeRunner(error="dataset has no test split")
    listed.skip_errors = ("dataset has no test",)
    run = run_study(listed, _plan(seeds=[0], protocols={"supervised": False}), tmp_path / "listed")
    assert run.failed == 0
    assert {r["status"] for r in _csv(tmp_path / "listed" / "results.csv")} == {"skipped: dataset has no test split"}


def test_failed_pretraining_fails_only_the_cells_that_need_it(tmp_path):
    runner = FakeRunner(fail_pretrain=True)
    run = run_study(runner, _plan(seeds=[0]), tmp_path)
    assert runner.cells == ["supervised fraction=0.1 seed=0", "supervised fraction=1 seed=0"]
    assert run.failed == 2 and runner.pretrains == [(0, False)]  # tried once, not once per cell
    assert json.loads((tmp_path / "pretrain" / "seed_0" / "cell.json").read_text())["status"].startswith(
        "failed: RuntimeError: pre-training diverged")
    assert "Pre-training (seed 0): failed: RuntimeError: pre-training diverged" in (tmp_path / "results.md").read_text()
    # the next invocation continues the pre-training it finds in its folder
    (tmp_path / "pretrain" / "seed_0" / "models").mkdir()
    (tmp_path / "pretrain" / "seed_0" / "models" / "checkpoint_epoch=1.pt").write_text("x")
    retry = FakeRunner()
    run_study(retry, _plan(seeds=[0]), tmp_path)
    assert retry.pretrains == [(0, True)] and len(retry.cells) == 2


def test_by_default_each_seed_pretrains_its_own_encoder(tmp_path):
    runner = FakeRunner()
    run_study(runner, _plan(seeds=[3, 4]), tmp_path)
    assert runner.pretrains == [(3, False), (4, False)]
    cell = tmp_path / "cells" / "byol" / "fraction_1" / "seed_4"
    assert (cell / "model.pt").read_text() == str(tmp_path / "pretrain" / "seed_4" / "models" / "encoder.pt")
    assert not (tmp_path / "pretrain" / "cell.json").exists()


def test_shared_pretraining_pretrains_once_and_says_so(tmp_path):
    runner = FakeRunner()
    run = run_study(runner, _plan(seeds=[3, 4], shared=True), tmp_path)
    assert run.failed == 0 and runner.pretrains == [(0, False)]  # once, with seed 0, for both seeds
    for seed in (3, 4):
        cell = tmp_path / "cells" / "byol" / "fraction_1" / f"seed_{seed}"
        assert (cell / "model.pt").read_text() == str(tmp_path / "pretrain" / "models" / "encoder.pt")
    assert not any((tmp_path / "pretrain").glob("seed_*"))
    rows = _csv(tmp_path / "results.csv")
    assert {r["pretrain_seed"] for r in rows if r["protocol"] == "byol"} == {"0"}
    text = (tmp_path / "results.md").read_text()
    assert SHARED_WORDS in text and PER_SEED_WORDS not in text
    assert "a difference the fine-tuning seeds agree on for this one pre-training (seed 0)" in text
    assert json.loads((tmp_path / "study_settings.json").read_text())["shared_pretraining"] is True
    again = FakeRunner()
    assert run_study(again, _plan(seeds=[3, 4], shared=True), tmp_path).reused == 8 and again.pretrains == []


def test_no_pretraining_without_pretrained_protocols(tmp_path):
    runner = FakeRunner()
    plan = _plan()
    plan.protocols = {"supervised": False}
    run_study(runner, plan, tmp_path)
    assert runner.pretrains == [] and not (tmp_path / "pretrain").exists()
    text = (tmp_path / "results.md").read_text()
    assert SHARED_WORDS not in text and PER_SEED_WORDS not in text  # no pre-training to speak of
    assert "pretrain_seed" not in (tmp_path / "results.csv").read_text().splitlines()[0]


def _as_before_shared_pretraining(folder: Path, per_seed: bool) -> None:
    """Make ``folder``'s settings file as the study wrote it before ``shared_pretraining`` existed."""
    path = folder / "study_settings.json"
    settings = json.loads(path.read_text())
    del settings["shared_pretraining"]
    settings["pretrain_per_seed"] = per_seed
    path.write_text(json.dumps(settings))


def test_a_folder_of_the_old_shared_default_is_refused_without_the_flag(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0], shared=True), tmp_path)
    _as_before_shared_pretraining(tmp_path, per_seed=False)  # the old default: one shared pretrain/
    runner = FakeRunner()
    with pytest.raises(ValueError) as refused:
        run_study(runner, _plan(seeds=[0, 1]), tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert "holds a study made with shared pre-training" in message
    assert "this run asks for per-seed pre-training" in message
    assert "to continue it, add --shared_pretraining" in message
    assert runner.pretrains == [] and runner.cells == [] and not (tmp_path / "pretrain" / "seed_0").exists()
    # with the flag it continues in its mode: the finished cells and the encoder are reused
    resumed = FakeRunner()
    run = run_study(resumed, _plan(seeds=[0, 1], shared=True), tmp_path)
    assert run.reused == 4 and resumed.pretrains == [] and all(c.endswith("seed=1") for c in resumed.cells)
    assert json.loads((tmp_path / "study_settings.json").read_text()) == {"num_epochs": 2,
                                                                          "shared_pretraining": True}


def test_a_per_seed_folder_is_refused_with_shared_pretraining(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0]), tmp_path)
    with pytest.raises(ValueError, match=r"made with per-seed pre-training .*; this run asks for shared pre-training"
                                         r".*to continue it, drop --shared_pretraining"):
        run_study(FakeRunner(), _plan(seeds=[0], shared=True), tmp_path)
    # a folder of the old --pretrain_per_seed continues with the new default
    _as_before_shared_pretraining(tmp_path, per_seed=True)
    runner = FakeRunner()
    assert run_study(runner, _plan(seeds=[0]), tmp_path).reused == 4 and runner.pretrains == []


def test_the_layout_decides_when_the_settings_do_not_record_the_mode(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0], shared=True), tmp_path)
    path = tmp_path / "study_settings.json"
    path.write_text(json.dumps({"num_epochs": 2}))  # written by a caller that did not record the mode
    with pytest.raises(ValueError, match="holds a study made with shared pre-training"):
        run_study(FakeRunner(), _plan(seeds=[0]), tmp_path)


def test_a_folder_without_pretraining_takes_either_mode(tmp_path):
    supervised = {"supervised": False}
    run_study(FakeRunner(), _plan(seeds=[0], protocols=supervised), tmp_path)
    _as_before_shared_pretraining(tmp_path, per_seed=False)  # the old default, but nothing pre-trained
    runner = FakeRunner()
    run = run_study(runner, _plan(seeds=[0]), tmp_path)  # adds byol: pre-trains per seed
    assert run.reused == 2 and runner.pretrains == [(0, False)]
    assert json.loads((tmp_path / "study_settings.json").read_text())["shared_pretraining"] is False


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0], settings={"num_epochs": 2, "dataset_dir": "/a"}), tmp_path)
    with pytest.raises(ValueError, match=r"holds a study run with other settings \(num_epochs: 2 there, 5 now\)"):
        run_study(FakeRunner(), _plan(seeds=[0], settings={"num_epochs": 5, "dataset_dir": "/a"}), tmp_path)


class MethodRunner(FakeRunner):
    """A fake runner of a study that compares pre-training methods: records (method, seed, resume)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.method_pretrains: list[tuple[str, int, bool]] = []

    def pretrain(self, run_dir: Path, seed: int, resume: bool = False, method: str | None = None) -> Path:
        assert method is not None, "a plan with methods names the method of each pre-training"
        self.method_pretrains.append((method, seed, resume))
        encoder = super().pretrain(run_dir, seed, resume)
        encoder.write_text(f"{method} encoder {seed}")
        return encoder


METHOD_PROTOCOLS = {"supervised": False, "byol_finetune": True, "byol_linear_probe": True, "dino_finetune": True}
METHODS = {"byol_finetune": "byol", "byol_linear_probe": "byol", "dino_finetune": "dino"}


def _method_plan(seeds=(0, 1), shared=False, protocols=None):
    protocols = protocols or METHOD_PROTOCOLS
    plan = _plan(fractions="1.0", seeds=seeds, shared=shared, protocols=protocols)
    plan.methods = {p: m for p, m in METHODS.items() if p in protocols}
    plan.default_method = "byol"
    return plan


def _encoder_of(folder: Path, protocol: str, seed: int) -> str:
    return (folder / "cells" / protocol / "fraction_1" / f"seed_{seed}" / "model.pt").read_text()


def test_each_method_pretrains_once_per_seed_in_its_own_folder(tmp_path):
    runner = MethodRunner()
    run = run_study(runner, _method_plan(), tmp_path)
    assert run.failed == 0 and run.ran == 8
    # byol once per seed although two protocols use it; dino once per seed
    assert runner.method_pretrains == [("byol", 0, False), ("dino", 0, False), ("byol", 1, False), ("dino", 1, False)]
    for seed in (0, 1):
        for protocol, method in METHODS.items():
            assert _encoder_of(tmp_path, protocol, seed) == str(
                tmp_path / "pretrain" / method / f"seed_{seed}" / "models" / "encoder.pt")
        assert _encoder_of(tmp_path, "supervised", seed) == "None"
        saved = json.loads((tmp_path / "pretrain" / "dino" / f"seed_{seed}" / "cell.json").read_text())
        assert saved["method"] == "dino" and saved["seed"] == seed and saved["status"] == "ok"
    assert sorted(p.name for p in (tmp_path / "pretrain").iterdir()) == ["byol", "dino"]
    text = (tmp_path / "results.md").read_text()
    assert "Pre-training (byol, seed 0): ok" in text and "Pre-training (dino, seed 1): ok" in text
    assert json.loads((tmp_path / "study_settings.json").read_text()) == {
        "num_epochs": 2, "shared_pretraining": False, "pretrain_per_method": True}

    again = MethodRunner()
    run = run_study(again, _method_plan(), tmp_path)
    assert (run.ran, run.reused) == (0, 8) and again.method_pretrains == [] and again.cells == []


def test_only_the_methods_of_the_chosen_protocols_pretrain_and_others_can_be_added(tmp_path):
    runner = MethodRunner()
    run_study(runner, _method_plan(seeds=[0], protocols={"supervised": False, "dino_finetune": True}), tmp_path)
    assert runner.method_pretrains == [("dino", 0, False)]
    assert not (tmp_path / "pretrain" / "byol").exists()
    # a later run adds BYOL's protocols: only byol pre-trains, the dino encoder and cells are reused
    later = MethodRunner()
    run = run_study(later, _method_plan(seeds=[0]), tmp_path)
    assert later.method_pretrains == [("byol", 0, False)] and run.reused == 2
    assert sorted(later.cells) == ["byol_finetune fraction=1 seed=0", "byol_linear_probe fraction=1 seed=0"]


def test_shared_pretraining_pretrains_once_per_method(tmp_path):
    runner = MethodRunner()
    run_study(runner, _method_plan(seeds=[3, 4], shared=True), tmp_path)
    assert runner.method_pretrains == [("byol", 0, False), ("dino", 0, False)]
    for seed in (3, 4):
        assert _encoder_of(tmp_path, "dino_finetune", seed) == str(tmp_path / "pretrain" / "dino" / "models" /
                                                                   "encoder.pt")
    assert not any((tmp_path / "pretrain").glob("*/seed_*"))
    # the mode is the folder's, for every method: a per-seed run is refused
    with pytest.raises(ValueError, match="holds a study made with shared pre-training"):
        run_study(MethodRunner(), _method_plan(seeds=[3]), tmp_path)


def test_a_failed_method_fails_only_its_cells_and_resumes(tmp_path):
    class DinoFails(MethodRunner):
        def pretrain(self, run_dir, seed, resume=False, method=None):
            if method == "dino":
                self.method_pretrains.append((method, seed, resume))
                (run_dir / "models").mkdir(parents=True, exist_ok=True)
                raise RuntimeError("dino diverged")
            return super().pretrain(run_dir, seed, resume, method)

    run = run_study(DinoFails(), _method_plan(seeds=[0]), tmp_path)
    assert run.failed == 1
    rows = {r["protocol"]: r["status"] for r in _csv(tmp_path / "results.csv")}
    assert rows["dino_finetune"] == "failed: the pre-training it needs failed (see the log)"
    assert rows["byol_finetune"] == "ok"
    assert "Pre-training (dino, seed 0): failed: RuntimeError: dino diverged" in (tmp_path / "results.md").read_text()
    retry = MethodRunner()
    run_study(retry, _method_plan(seeds=[0]), tmp_path)
    assert retry.method_pretrains == [("dino", 0, True)] and retry.cells == ["dino_finetune fraction=1 seed=0"]


def test_without_methods_the_runner_gets_no_method_and_the_layout_is_unchanged(tmp_path):
    runner = MethodRunner()
    runner.pretrain = FakeRunner.pretrain.__get__(runner)  # takes no method: a TypeError if one were passed
    run_study(runner, _plan(seeds=[0]), tmp_path)
    assert runner.pretrains == [(0, False)] and (tmp_path / "pretrain" / "seed_0" / "cell.json").is_file()
    assert "method" not in json.loads((tmp_path / "pretrain" / "seed_0" / "cell.json").read_text())
    assert "Pre-training (seed 0): ok" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("methods, message", [
    ({"byol_finetune": "byol"}, r"without one: \['byol_linear_probe', 'dino_finetune'\]"),
    ({**METHODS, "supervised": "byol"}, r"not pretrained or not chosen: \['supervised'\]"),
])
def test_a_plan_must_name_the_method_of_every_pretrained_protocol(tmp_path, methods, message):
    plan = _method_plan()
    plan.methods = methods
    with pytest.raises(ValueError, match=message):
        run_study(MethodRunner(), plan, tmp_path)
    assert not (tmp_path / "study_settings.json").exists()


@pytest.mark.parametrize("shared", [False, True])
def test_a_folder_pretrained_before_methods_moves_to_the_default_method_and_is_reused(tmp_path, shared):
    old = _plan(fractions="1.0", seeds=[0], shared=shared, protocols={"supervised": False, "byol_finetune": True})
    run_study(FakeRunner(), old, tmp_path)  # as a study.json without method_key made it
    old_encoder = tmp_path / "pretrain" / ("" if shared else "seed_0") / "models" / "encoder.pt"
    assert old_encoder.read_text() == "encoder 0"
    runner = MethodRunner()
    run = run_study(runner, _method_plan(seeds=[0], shared=shared), tmp_path)
    assert runner.method_pretrains == [("dino", 0, False)]  # byol's encoder is the one made before
    assert run.reused == 2 and sorted(runner.cells) == ["byol_linear_probe fraction=1 seed=0",
                                                        "dino_finetune fraction=1 seed=0"]
    moved = tmp_path / "pretrain" / "byol" / ("" if shared else "seed_0") / "models" / "encoder.pt"
    assert moved.read_text() == "encoder 0" and not old_encoder.exists()
    assert _encoder_of(tmp_path, "byol_linear_probe", 0) == str(moved)
    assert sorted(p.name for p in (tmp_path / "pretrain").iterdir()) == ["byol", "dino"]
    assert json.loads((tmp_path / "study_settings.json").read_text())["pretrain_per_method"] is True
    # and back: a study without methods is refused on the per-method folder
    with pytest.raises(ValueError, match=r"holds pre-trainings of several methods \(pretrain/<method>/\), but this "
                                         r"study compares no methods"):
        run_study(FakeRunner(), old, tmp_path)


def test_a_folder_pretrained_before_methods_needs_a_default_method(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0]), tmp_path)
    plan = _method_plan(seeds=[0])
    plan.default_method = None
    with pytest.raises(ValueError, match="names no pretrain.default_method to say which method made them"):
        run_study(MethodRunner(), plan, tmp_path)
    assert (tmp_path / "pretrain" / "seed_0" / "cell.json").is_file()  # left as it was


def test_a_folder_without_pretraining_takes_methods_without_moving_anything(tmp_path):
    run_study(FakeRunner(), _plan(seeds=[0], protocols={"supervised": False}), tmp_path)
    runner = MethodRunner()
    run = run_study(runner, _method_plan(seeds=[0]), tmp_path)
    assert run.reused == 1 and runner.method_pretrains == [("byol", 0, False), ("dino", 0, False)]
