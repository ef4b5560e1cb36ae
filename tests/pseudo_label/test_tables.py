"""The columns of rounds.csv, as the OCT bundle's pseudolabel.json writes them."""

from __future__ import annotations

import json
from pathlib import Path

from monai_ssl.pseudo_label.tables import rounds_header

REPO = Path(__file__).resolve().parents[2]
PSEUDOLABEL_JSON = REPO / "bundles" / "oct_byol_pseudolabel" / "configs" / "pseudolabel.json"

COLUMNS = [
    "round", "n_labeled", "n_pseudo", "n_new", "n_changed", "n_dropped", "n_pool", "val_accuracy",
    "pseudo_label_accuracy", "train_seconds", "score_seconds", "val_seconds", "best_round", "best_metric",
]  # fmt: skip


def test_rounds_csv_columns_of_the_bundle_have_a_single_val_prefix():
    # pseudolabel.json names the fine-tuning's selecting metric (val_macro_recall for single-label data);
    # the column once read "val_val_accuracy"
    metric_name = json.loads(PSEUDOLABEL_JSON.read_text())["rounds"]["metric_name"]
    assert metric_name == "$@task['key_metric_name']"
    assert rounds_header("val_accuracy") == COLUMNS
    assert rounds_header("accuracy") == COLUMNS
    recall = rounds_header("val_macro_recall")
    assert recall == [c if c != "val_accuracy" else "val_macro_recall" for c in COLUMNS]
