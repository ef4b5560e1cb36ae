"""byolmed2d's fine-tuning with one MRNet finding (binary, oversampled, AUC) or several (multi-label, macro F1)."""

from __future__ import annotations

import numpy as np

from monai_ssl.recipes.mrnet_findings import mrnet_training_datalist, mrnet_validation_selection

BINARY = {"val_auc": "auc-metric", "val_accuracy": "accuracy-metric"}


def _binary_items(n_pos, n_neg):
    return [{"id": f"p{i}", "label": 1} for i in range(n_pos)] + [{"id": f"n{i}", "label": 0} for i in range(n_neg)]


def test_one_finding_oversamples_the_minority_class():
    items = _binary_items(2, 6)
    out = mrnet_training_datalist(items, multi_label=False, seed=0)
    counts = np.bincount([int(i["label"]) for i in out], minlength=2)
    assert counts[0] == 6 and counts[1] == 6  # the 2 positives repeated up to the 6 negatives
    assert {i["id"] for i in out} == {i["id"] for i in items}


def test_several_findings_keep_the_list_as_it_is():
    items = [{"id": f"e{i}", "label": np.array([i % 2, 1, 0], dtype=np.float32)} for i in range(5)]
    out = mrnet_training_datalist(items, multi_label=True, seed=0)
    assert out == items and out is not items


def test_one_finding_selects_on_auc_or_accuracy_with_one_class():
    both = mrnet_validation_selection(False, 1, "cpu", BINARY, _binary_items(2, 3))
    assert both == {"metrics": BINARY, "key_metric_name": "val_auc"}
    one_class = mrnet_validation_selection(False, 1, "cpu", BINARY, _binary_items(0, 3))
    assert one_class["key_metric_name"] == "val_accuracy" and one_class["metrics"] == BINARY


def test_several_findings_select_on_macro_f1():
    chosen = mrnet_validation_selection(True, 3, "cpu", BINARY, _binary_items(2, 3))
    assert chosen["key_metric_name"] == "val_macro_f1"
    assert chosen["key_metric_name"] in chosen["metrics"] and "val_auc" not in chosen["metrics"]
    assert len(chosen["metrics"]) >= 2
