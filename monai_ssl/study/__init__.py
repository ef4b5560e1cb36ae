"""Label-efficiency studies: a bundle's protocols over label budgets x seeds, with confidence intervals.

``python -m monai_ssl.study --bundle bundles/oct_byol_pseudolabel --dataset_dir PATH --output_dir DIR``
(or :func:`bundle_study`) pre-trains once per seed (``--shared_pretraining``: once for every seed),
trains and tests every (protocol, label fraction, seed) cell with the bundle's own configs (for
``--num_epochs`` epochs, or ``--num_steps`` optimizer steps at every label budget), resumes
where it stopped, and writes ``results.csv``, ``results.md`` and ``results.png``. A cell whose label
budget does not fit the data (a :class:`~monai_ssl.data.LabelBudgetError`) is skipped, not failed.
The bundle describes its protocols in ``configs/study.json`` (:mod:`monai_ssl.study.spec`); the loop
(:func:`run_study`) knows no bundle.
"""

from __future__ import annotations

from .bundle_study import bundle_study, check_label_free, parse_overrides
from .engine import StudyPlan, StudyRun, run_study
from .grid import Budget, Cell, build_grid, parse_fractions, parse_seeds, parse_shots, runs_at
from .plot import save_study_plot, study_figure
from .runner import BundleRunner, label_budget_error, run_bundle, skip_reason
from .spec import StudySpec, load_study_spec
from .stats import mean_ci95, t_quantile_975
from .summary import interval_scope, markdown_report, paired_differences, summarize, write_csv, write_markdown
from .training_length import TrainingStepCounter, configs_without_key, describe_training_length

__all__ = [
    "Budget",
    "BundleRunner",
    "Cell",
    "StudyPlan",
    "StudyRun",
    "StudySpec",
    "TrainingStepCounter",
    "build_grid",
    "bundle_study",
    "check_label_free",
    "configs_without_key",
    "describe_training_length",
    "interval_scope",
    "label_budget_error",
    "load_study_spec",
    "markdown_report",
    "mean_ci95",
    "paired_differences",
    "parse_fractions",
    "parse_overrides",
    "parse_seeds",
    "parse_shots",
    "run_bundle",
    "run_study",
    "runs_at",
    "save_study_plot",
    "skip_reason",
    "study_figure",
    "summarize",
    "t_quantile_975",
    "write_csv",
    "write_markdown",
]
