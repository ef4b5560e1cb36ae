"""Study reports: means and CIs, paired gains, the CSV, the Markdown and the plot."""

from __future__ import annotations

import csv
import math

import pytest

from monai_ssl.study import Budget, StudyPlan, interval_scope, markdown_report, paired_differences, summarize, write_csv
from monai_ssl.study.plot import save_study_plot, study_figure

F01, F1 = Budget("fraction", 0.1), Budget("fraction", 1.0)
T2 = 4.302653  # t(0.975, 2)


def _row(protocol, budget, seed, accuracy=None, auc=None, status="ok", n_labeled=12, pretrain_seed=None):
    metrics = {} if status != "ok" else {"accuracy": accuracy, "auc": auc}
    return {"protocol": protocol, "budget": budget, "seed": seed, "n_labeled": n_labeled if status == "ok" else None,
            "metrics": metrics, "seconds": 1.5, "status": status,
            "cell_dir": f"cells/{protocol}/{budget.name}/seed_{seed}", "pretrain_seed": pretrain_seed}


@pytest.fixture
def rows():
    skip = "skipped: split_labeled: fraction=0.1 leaves class 0 (4 items) with no labeled item"
    return [
        _row("supervised", F01, 0, status=skip), _row("byol", F01, 0, status=skip),
        _row("supervised", F1, 0, 0.60, 0.70, n_labeled=40), _row("byol", F1, 0, 0.70, 0.80, n_labeled=40),
        _row("supervised", F1, 1, 0.62, 0.72, n_labeled=40), _row("byol", F1, 1, 0.74, None, n_labeled=40),
        _row("supervised", F1, 2, 0.64, 0.74, n_labeled=40), _row("byol", F1, 2, status="failed: RuntimeError: boom"),
    ]


def _plan(**kwargs):
    return StudyPlan(protocols={"supervised": False, "byol": True}, budgets=[F01, F1], seeds=[0, 1, 2],
                     metrics=["accuracy", "auc"], baseline="supervised", title="Demo study", **kwargs)


def test_summarize_means_and_t_intervals(rows):
    stats = summarize(rows, "accuracy")
    mean, half, n = stats[("supervised", F1)]
    assert (mean, n) == (pytest.approx(0.62), 3)
    assert half == pytest.approx(T2 * 0.02 / math.sqrt(3))  # sd of 0.60, 0.62, 0.64 is 0.02
    assert stats[("byol", F1)][0] == pytest.approx(0.72) and stats[("byol", F1)][2] == 2  # the failed seed left out
    assert ("supervised", F01) not in stats  # skipped cells have no value
    assert summarize(rows, "auc")[("byol", F1)] == (pytest.approx(0.80), None, 1)  # a missing value is left out


def test_paired_differences_use_the_seeds_both_finished(rows):
    diffs = paired_differences(rows, "accuracy", "supervised")
    mean, half, n = diffs[("byol", F1)]
    assert n == 2 and mean == pytest.approx(0.11)  # seeds 0 (+0.10) and 1 (+0.12)
    assert half == pytest.approx(12.706205 * math.sqrt(0.0002) / math.sqrt(2))
    assert ("supervised", F1) not in diffs


def test_csv_has_every_cell_and_the_columns(rows, tmp_path):
    path = write_csv(rows, ["accuracy", "auc"], tmp_path / "results.csv")
    with open(path) as f:
        reader = csv.DictReader(f)
        lines = list(reader)
    assert reader.fieldnames == ["protocol", "fraction", "seed", "n_labeled", "accuracy", "auc", "seconds", "status",
                                 "cell_dir"]
    assert len(lines) == 8
    assert lines[2] == {"protocol": "supervised", "fraction": "1", "seed": "0", "n_labeled": "40", "accuracy": "0.6",
                        "auc": "0.7", "seconds": "1.5", "status": "ok",
                        "cell_dir": "cells/supervised/fraction_1/seed_0"}
    assert lines[0]["status"].startswith("skipped: split_labeled:") and lines[0]["accuracy"] == ""


def test_csv_of_shots_names_the_column(tmp_path):
    path = write_csv([_row("a", Budget("shots", 5), 0, 0.5, 0.6)], ["accuracy"], tmp_path / "r.csv")
    header = path.read_text().splitlines()[0]
    assert header == "protocol,shots_per_class,seed,n_labeled,accuracy,seconds,status,cell_dir"


def test_markdown_tables_gains_and_skipped_cells(rows):
    plan = _plan(descriptions={"byol": "BYOL encoder"})
    text = markdown_report(rows, plan, notes=["Pre-training (seed 0): ok, 9 s."])
    assert text.startswith("# Demo study\n")
    assert "**test split**" in text and "95 % confidence interval" in text and "Student t" in text
    assert "| protocol | 10% | 100% (40 labels) |" in text
    half = T2 * 0.02 / math.sqrt(3)
    assert f"| supervised | skipped | 0.620 ± {half:.3f} (n=3) |" in text
    assert "| byol | skipped | 0.720 ± " in text
    assert "Gain over `supervised` in accuracy" in text
    assert "| byol | skipped | +0.110 ± " in text
    assert "## auc" in text and "| byol | skipped | 0.800 (n=1) |" in text
    assert "- `byol`: BYOL encoder" in text
    assert "## Cells not in the tables" in text
    assert ("- fraction=0.1, **skipped** (2 cell(s): supervised, byol x seed(s) 0): split_labeled: fraction=0.1 "
            "leaves class 0 (4 items) with no labeled item") in text
    assert "- fraction=1, **failed** (1 cell(s): byol seed 2): RuntimeError: boom" in text
    assert text.rstrip().endswith("Pre-training (seed 0): ok, 9 s.")


def test_markdown_without_results_has_no_tables():
    rows = [_row("a", F1, 0, status="not run")]
    text = markdown_report(rows, _plan())
    assert "## accuracy" not in text and "- fraction=1, **not run** (1 cell(s): a seed 0)" in text


def test_plot_has_a_panel_per_metric_and_a_line_per_protocol(rows, tmp_path):
    fig = study_figure(rows, ["accuracy", "auc"], title="Demo")
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10%", "100%"]
    assert sorted(line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")) == [
        "byol", "supervised"]
    path = save_study_plot(rows, ["accuracy", "auc"], tmp_path / "results.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_study_plot(rows[:2], ["accuracy"], tmp_path / "none.png") is None  # only skipped cells: no figure
    assert not (tmp_path / "none.png").exists()


SHARED = "intervals cover fine-tuning seeds only; pre-training ran once (seed 0)"
PER_SEED = "intervals cover pre-training and fine-tuning"


def test_interval_scope_in_words():
    assert interval_scope(_plan(shared_pretraining=True)) == SHARED
    assert interval_scope(_plan()).startswith(PER_SEED)  # per seed is the default
    supervised_only = StudyPlan(protocols={"supervised": False}, budgets=[F1], seeds=[0], metrics=["accuracy"])
    assert interval_scope(supervised_only) == ""


def test_markdown_says_what_the_intervals_cover(rows):
    shared = markdown_report(rows, _plan(shared_pretraining=True))
    assert f"The {SHARED}" in shared and PER_SEED not in shared
    assert ("an interval that excludes 0 is a difference the fine-tuning seeds agree on for this one pre-training "
            "(seed 0); another pre-training may move it:") in shared
    assert "a difference the seeds agree on" not in shared
    per_seed = markdown_report(rows, _plan())
    assert f"The {PER_SEED}" in per_seed and SHARED not in per_seed
    assert "an interval that excludes 0 is a difference the seeds agree on, pre-training included:" in per_seed
    plain = markdown_report(rows, StudyPlan(protocols={"supervised": False, "byol": False}, budgets=[F01, F1],
                                            seeds=[0, 1, 2], metrics=["accuracy"], baseline="supervised"))
    assert SHARED not in plain and PER_SEED not in plain
    assert "an interval that excludes 0 is a difference the seeds agree on:" in plain


def test_csv_names_the_pretraining_of_each_cell(tmp_path):
    rows = [_row("supervised", F1, 1, 0.5, 0.6), _row("byol", F1, 1, 0.6, 0.7, pretrain_seed=0)]
    path = write_csv(rows, ["accuracy"], tmp_path / "r.csv")
    with open(path) as f:
        reader = csv.DictReader(f)
        lines = list(reader)
    assert reader.fieldnames[:4] == ["protocol", "fraction", "seed", "pretrain_seed"]
    assert [line["pretrain_seed"] for line in lines] == ["", "0"]


@pytest.mark.parametrize("shared, words", [(True, SHARED), (False, PER_SEED)])
def test_plot_caption_says_what_the_intervals_cover(rows, shared, words):
    fig = study_figure(rows, ["accuracy"], title="Demo", caption=interval_scope(_plan(shared_pretraining=shared)))
    captions = " ".join(" ".join(t.get_text().split()) for t in fig.texts)
    assert words in captions and "95% CI over seeds" in captions
    assert not study_figure(rows, ["accuracy"]).texts  # no caption asked for, none drawn


def test_the_steps_each_cell_trained_are_in_the_csv_and_the_report(rows, tmp_path):
    assert "Optimizer steps" not in markdown_report(rows, _plan())  # none counted: nothing claimed
    steps = {(0, "supervised"): 30080, (0, "byol"): 30080, (1, "supervised"): 30080, (1, "byol"): 30016,
             (2, "supervised"): 30020}
    for row in rows:
        row["steps"] = steps.get((row["seed"], row["protocol"])) if row["budget"] == F1 else None
    rows[-1]["steps"] = 5  # a failed cell's count is not reported
    text = markdown_report(rows, _plan(training_length="Training length: fixed in optimizer steps."))
    assert "Training length: fixed in optimizer steps. Optimizer steps trained per cell: 100% 30,016–30,080." in text
    write_csv(rows, ["accuracy"], tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:5] == ["protocol", "fraction", "seed", "n_labeled", "steps"]
    assert [r["steps"] for r in table] == ["", "", "30080", "30080", "30080", "30016", "30020", "5"]
