"""Single- vs multi-label task parts: hand-computed selection metrics on a real MONAI evaluator, settings, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator

from monai_ssl.metrics import multilabel_report
from monai_ssl.recipes import classification_task, multi_label_setting, require_single_label

# single-label: labels 0,0,0,1,1,2 predicted 0,0,1,1,0,2 -> recalls 2/3, 1/2, 1 -> macro 13/18, accuracy 4/6
SL_PROBS = [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]]
SL_LABELS = [0, 0, 0, 1, 1, 2]
# multi-label at 0.5: per-label F1 1/2 (tp1 fp1 fn1), 1, 2/3 (tp1 fn1) -> macro 13/18; AUCs 1/2, 1, 1 -> 5/6
ML_PROBS = [[0.9, 0.2, 0.6], [0.4, 0.7, 0.1], [0.3, 0.8, 0.2], [0.6, 0.1, 0.4]]
ML_LABELS = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]


def _evaluate(task, probs, labels, multi_label):
    """Run a MONAI evaluator whose network returns the logits stored in the image, with the task's parts."""
    p = torch.tensor(probs, dtype=torch.float64)
    logits = torch.logit(p) if multi_label else torch.log(p)
    items = [
        {"image": logit.float(), "label": np.asarray(y, dtype=np.float32) if multi_label else y}
        for logit, y in zip(logits, labels)
    ]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(items), batch_size=3),
        network=torch.nn.Identity(),
        postprocessing=task["val_postprocessing"],
        key_val_metric=task["key_metric"],
        additional_metrics=task["additional_metrics"],
    )
    evaluator.run()
    return evaluator.state.metrics


def test_single_label_selects_by_macro_recall():
    task = classification_task(False, 3, "cpu")
    assert task["key_metric_name"] == "val_macro_recall" and list(task["key_metric"]) == ["val_macro_recall"]
    assert isinstance(task["loss"], torch.nn.CrossEntropyLoss) and task["activation"] == {"softmax": True}
    metrics = _evaluate(task, SL_PROBS, SL_LABELS, False)
    assert metrics["val_macro_recall"] == pytest.approx(13 / 18)
    assert metrics["val_accuracy"] == pytest.approx(4 / 6)
    assert 0.0 <= metrics["val_auc"] <= 1.0


def test_multi_label_selects_by_macro_f1_at_half():
    task = classification_task(True, 3, torch.device("cpu"))
    assert task["key_metric_name"] == "val_macro_f1" and task["label_dtype"] == torch.float32
    assert isinstance(task["loss"], torch.nn.BCEWithLogitsLoss) and task["activation"] == {"sigmoid": True}
    metrics = _evaluate(task, ML_PROBS, ML_LABELS, True)
    assert metrics["val_macro_f1"] == pytest.approx(13 / 18)
    assert metrics["val_macro_auc"] == pytest.approx(5 / 6)
    report = multilabel_report(ML_PROBS, ML_LABELS)  # the report agrees with the selection metric
    assert report["macro_f1"] == pytest.approx(13 / 18) and report["macro_auc"] == pytest.approx(5 / 6)


def test_losses_take_the_datalist_labels_and_weights():
    logits = torch.zeros(2, 3)
    ml = classification_task(True, 3, "cpu", loss_weight=[1.0, 2.0, 3.0])
    assert torch.equal(ml["loss"].pos_weight, torch.tensor([1.0, 2.0, 3.0]))
    # BCE of logit 0 is log 2 for every entry whatever the target; pos_weight scales the positive terms
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert ml["loss"](logits, target).item() == pytest.approx(np.log(2) * (1 + 1 + 1 + 1 + 1 + 3) / 6)
    sl = classification_task(False, 3, "cpu", loss_weight=torch.tensor([1.0, 1.0, 2.0]))
    assert sl["loss"](logits, torch.tensor([0, 2])).item() == pytest.approx(np.log(3))


def test_eval_postprocessing_touches_pred_only():
    out = classification_task(True, 2, "cpu")["eval_postprocessing"]({"pred": torch.tensor([0.0, 2.0]), "label": 7})
    assert out["pred"].tolist() == pytest.approx([0.5, 1 / (1 + np.exp(-2.0))]) and out["label"] == 7
    out = classification_task(False, 2, "cpu")["eval_postprocessing"]({"pred": torch.tensor([0.0, 0.0])})
    assert out["pred"].tolist() == pytest.approx([0.5, 0.5])


def test_multi_label_setting():
    indices = [{"label": 0}, {"label": 2}]
    vectors = [{"label": np.array([1, 0, 1], dtype=np.float32)}, {"label": [0.0, 1.0, 0.0]}]
    assert multi_label_setting("auto", indices) is False and multi_label_setting("auto", vectors) is True
    assert multi_label_setting(True, vectors) is True and multi_label_setting("false", indices) is False
    with pytest.raises(ValueError, match="`multi_label` is true but the labels are class indices"):
        multi_label_setting(True, indices)
    with pytest.raises(ValueError, match="`multi_label` is false but the labels are vectors"):
        multi_label_setting(False, vectors)
    with pytest.raises(ValueError, match="must be \"auto\", true or false"):
        multi_label_setting("yes", indices)
    with pytest.raises(ValueError, match="mixes"):
        multi_label_setting("auto", indices + vectors)


def test_require_single_label_and_bad_arguments():
    require_single_label(False, "pseudolabel.json")
    with pytest.raises(ValueError, match="pseudolabel.json is single-label only"):
        require_single_label(True, "pseudolabel.json")
    with pytest.raises(ValueError, match="resolve \"auto\""):
        classification_task("auto", 3)
    with pytest.raises(ValueError, match="num_classes"):
        classification_task(False, 1)
    with pytest.raises(ValueError, match="loss_weight"):
        classification_task(True, 3, loss_weight=[1.0, 2.0])
