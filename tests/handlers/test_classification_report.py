"""Tests of ClassificationReportWriter on real Ignite engines."""

from __future__ import annotations

import csv
import json
import logging

import pytest
import torch
from ignite.engine import Engine

from monai_ssl.handlers import ClassificationReportWriter

# two batches of three; positives 0.9, 0.7, 0.4, negatives 0.7, 0.3, 0.1 -> AUC 7.5 / 9
PROBS = [[0.9, 0.7, 0.7], [0.4, 0.3, 0.1]]
LABELS = [[1, 1, 0], [1, 0, 0]]
IDS = [["a", "b", "c"], ["d", "e", "f"]]


def _batched(with_labels=True, with_ids=True):
    """Collated batches and dict outputs of batched tensors (decollate=False)."""
    data = []
    for p, y, i in zip(PROBS, LABELS, IDS):
        batch = {"image": torch.zeros(3, 1, 4, 4)} | ({"id": i} if with_ids else {})
        out = {"pred": torch.tensor(p).view(-1, 1)} | ({"label": torch.tensor(y).view(-1, 1)} if with_labels else {})
        data.append((batch, out))
    return data


def _decollated():
    """Per-sample list batches and outputs, as MONAI evaluators give with decollate=True."""
    return [
        ([{"id": k} for k in i], [{"pred": torch.tensor([v]), "label": torch.tensor(lab)} for v, lab in zip(p, y)])
        for p, y, i in zip(PROBS, LABELS, IDS)
    ]


def _run(data, handler, epochs=1):
    def step(engine, item):
        engine.state.batch = item[0]
        return item[1]

    engine = Engine(step)
    handler.attach(engine)
    engine.run(data, max_epochs=epochs)
    return engine


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("make_data", [_batched, _decollated])
def test_report_files(tmp_path, make_data, caplog):
    out_dir = tmp_path / "report"
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        engine = _run(make_data(), ClassificationReportWriter(output_dir=out_dir), epochs=2)
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "confusion_matrix.png",
        "metrics.json",
        "predictions.csv",
        "roc_curve.png",
    ]
    rows = _read_csv(out_dir / "predictions.csv")
    assert list(rows[0]) == ["id", "probability", "prediction", "label"]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e", "f"]  # reset between epochs: 6 rows, not 12
    assert [float(r["probability"]) for r in rows] == pytest.approx([0.9, 0.7, 0.7, 0.4, 0.3, 0.1])
    assert [int(r["prediction"]) for r in rows] == [1, 1, 1, 0, 0, 0]
    assert [int(r["label"]) for r in rows] == [1, 1, 0, 1, 0, 0]
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["auc"] == pytest.approx(7.5 / 9)
    assert metrics["confusion_matrix"] == [[2, 1], [1, 2]]
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["sensitivity"] == pytest.approx(2 / 3) and metrics["specificity"] == pytest.approx(2 / 3)
    assert (metrics["n"], metrics["n_positive"], metrics["threshold"]) == (6, 3, 0.5)
    assert engine.state.metrics_report == metrics
    assert (out_dir / "roc_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (out_dir / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "auc=0.8333" in caplog.text


def test_inference_without_labels(tmp_path):
    engine = _run(_batched(with_labels=False), ClassificationReportWriter(output_dir=tmp_path, prefix="test_"))
    assert [p.name for p in tmp_path.iterdir()] == ["test_predictions.csv"]
    rows = _read_csv(tmp_path / "test_predictions.csv")
    assert list(rows[0]) == ["id", "probability", "prediction"] and len(rows) == 6
    assert engine.state.metrics_report is None


def test_id_fallbacks_and_threshold(tmp_path):
    from monai.data import MetaTensor

    data = _batched(with_ids=False)
    data[0][0]["image"] = MetaTensor(torch.zeros(3, 1, 4, 4), meta={"filename_or_obj": ["x.nii", "y.nii", "z.nii"]})
    _run(data, ClassificationReportWriter(tmp_path, threshold=0.35, plot_roc=False, plot_confusion_matrix=False))
    rows = _read_csv(tmp_path / "predictions.csv")
    assert [r["id"] for r in rows] == ["x.nii", "y.nii", "z.nii", "3", "4", "5"]  # then running index
    assert [int(r["prediction"]) for r in rows] == [1, 1, 1, 1, 0, 0]
    assert not (tmp_path / "roc_curve.png").exists() and not (tmp_path / "confusion_matrix.png").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["threshold"] == 0.35


def test_single_class_no_roc(tmp_path):
    data = [({"id": ["a", "b"]}, {"pred": torch.tensor([0.2, 0.8]), "label": torch.tensor([1, 1])})]
    engine = _run(data, ClassificationReportWriter(output_dir=tmp_path))
    assert engine.state.metrics_report["auc"] is None and "auc_note" in engine.state.metrics_report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.png", "metrics.json", "predictions.csv"]


def test_probability_out_of_range(tmp_path):
    data = [({"id": ["a", "b"]}, {"pred": torch.tensor([0.2, 1.7]), "label": torch.tensor([0, 1])})]
    with pytest.raises(ValueError, match="apply a sigmoid in postprocessing"):
        _run(data, ClassificationReportWriter(output_dir=tmp_path))


def test_supervised_evaluator(tmp_path):
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator
    from monai.transforms import Activationsd

    torch.manual_seed(0)
    items = [{"image": torch.randn(1, 4, 4), "label": torch.tensor([float(i % 2)]), "id": f"s{i}"} for i in range(5)]
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(items), batch_size=2),
        network=net,
        postprocessing=Activationsd(keys="pred", sigmoid=True),
    )
    ClassificationReportWriter(output_dir=tmp_path).attach(evaluator)
    evaluator.run()
    rows = _read_csv(tmp_path / "predictions.csv")
    assert [r["id"] for r in rows] == [f"s{i}" for i in range(5)]
    assert [int(r["label"]) for r in rows] == [0, 1, 0, 1, 0]
    assert evaluator.state.metrics_report["n"] == 5 and evaluator.state.metrics_report["auc"] is not None
    assert (tmp_path / "roc_curve.png").exists()


# multi-class: the 3-class example of tests/metrics/test_multiclass.py in batches of 3, 3, 2
MC_PROBS = [
    [[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.3, 0.6, 0.1]],
    [[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3]],
    [[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]],
]
MC_LABELS = [[0, 0, 0], [1, 1, 1], [2, 2]]
MC_IDS = [["a", "b", "c"], ["d", "e", "f"], ["g", "h"]]
MC_NAMES = ["CNV", "DME", "NORMAL"]


def _mc_batched(label_form="index", with_labels=True):
    """Collated batches with (B, K) probabilities; labels as indices (B,), (B, 1) or one-hot (B, K)."""
    data = []
    for p, y, i in zip(MC_PROBS, MC_LABELS, MC_IDS):
        label = torch.tensor(y)
        label = {"index": label, "column": label.view(-1, 1), "onehot": torch.eye(3)[label]}[label_form]
        out = {"pred": torch.tensor(p)} | ({"label": label} if with_labels else {})
        data.append(({"id": i}, out))
    return data


def _mc_decollated():
    return [
        ([{"id": k} for k in i], [{"pred": torch.tensor(v), "label": torch.tensor([lab])} for v, lab in zip(p, y)])
        for p, y, i in zip(MC_PROBS, MC_LABELS, MC_IDS)
    ]


@pytest.mark.parametrize(
    "data",
    [_mc_batched(), _mc_batched("column"), _mc_batched("onehot"), _mc_decollated()],
    ids=["index", "column", "onehot", "decollated"],
)
def test_multiclass_report(tmp_path, data, caplog):
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        engine = _run(data, ClassificationReportWriter(output_dir=tmp_path, class_names=MC_NAMES), epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confusion_matrix.png",
        "metrics.json",
        "predictions.csv",
        "roc_curve.png",
    ]
    rows = _read_csv(tmp_path / "predictions.csv")
    assert list(rows[0]) == ["id", "prediction", "confidence", "prob_CNV", "prob_DME", "prob_NORMAL", "label"]
    assert [r["id"] for r in rows] == list("abcdefgh")  # reset between epochs
    assert [r["prediction"] for r in rows] == ["CNV", "CNV", "DME", "DME", "DME", "CNV", "NORMAL", "DME"]
    assert [r["label"] for r in rows] == ["CNV"] * 3 + ["DME"] * 3 + ["NORMAL"] * 2
    assert [float(r["confidence"]) for r in rows] == pytest.approx([0.7, 0.5, 0.6, 0.7, 0.8, 0.4, 0.7, 0.5])
    flat = [v for batch in MC_PROBS for v in batch]
    assert [[float(r[f"prob_{n}"]) for n in MC_NAMES] for r in rows] == [pytest.approx(v) for v in flat]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == [[2, 1, 0], [1, 2, 0], [0, 1, 1]]
    assert metrics["accuracy"] == pytest.approx(5 / 8) and metrics["n"] == 8
    assert metrics["class_names"] == MC_NAMES and list(metrics["per_class"]) == MC_NAMES
    assert metrics["macro_f1"] == pytest.approx(40 / 63)
    assert metrics["macro_auc"] == pytest.approx((14 / 15 + 12 / 15 + 11.5 / 12) / 3)
    assert engine.state.metrics_report == metrics
    for name in ("confusion_matrix.png", "roc_curve.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "macro_f1=0.6349" in caplog.text


def test_multiclass_default_names_and_inference(tmp_path):
    _run(_mc_batched(), ClassificationReportWriter(output_dir=tmp_path / "eval"))
    rows = _read_csv(tmp_path / "eval" / "predictions.csv")
    assert list(rows[0]) == ["id", "prediction", "confidence", "prob_0", "prob_1", "prob_2", "label"]
    assert rows[2]["prediction"] == "1" and rows[2]["label"] == "0"
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["class_names"] == ["0", "1", "2"]
    handler = ClassificationReportWriter(output_dir=tmp_path / "inf", num_classes=3)
    engine = _run(_mc_batched(with_labels=False), handler)
    assert [p.name for p in (tmp_path / "inf").iterdir()] == ["predictions.csv"]
    rows = _read_csv(tmp_path / "inf" / "predictions.csv")
    assert list(rows[0]) == ["id", "prediction", "confidence", "prob_0", "prob_1", "prob_2"] and len(rows) == 8
    assert engine.state.metrics_report is None


def test_multiclass_single_class_no_roc(tmp_path):
    data = [({"id": ["a", "b"]}, {"pred": torch.tensor([[0.6, 0.4], [0.3, 0.7]]), "label": torch.tensor([1, 1])})]
    engine = _run(data, ClassificationReportWriter(output_dir=tmp_path))
    assert engine.state.metrics_report["macro_auc"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.png", "metrics.json", "predictions.csv"]


def test_multiclass_report_leaves_a_never_predicted_class_out_of_macro_precision(tmp_path, caplog):
    # NORMAL is a label but never predicted: its precision is 0 / 0, written as null and left out of the mean
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4]])
    data = [({"id": ["a", "b", "c"]}, {"pred": probs, "label": torch.tensor([0, 1, 2])})]
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        _run(data, ClassificationReportWriter(output_dir=tmp_path, class_names=MC_NAMES))
    text = (tmp_path / "metrics.json").read_text()
    metrics = json.loads(text)
    assert metrics["per_class"]["NORMAL"]["precision"] is None and '"precision": null' in text
    assert metrics["macro_precision"] == pytest.approx((0.5 + 1.0) / 2)
    assert metrics["macro_recall"] == pytest.approx(2 / 3)
    assert "precision for ['NORMAL'] (never predicted)" in metrics["macro_note"]
    assert "macro_precision=0.7500 macro_recall=0.6667" in caplog.text


@pytest.mark.parametrize(
    "pred, label, kwargs, match",
    [
        ([[0.5, 0.6], [0.5, 0.5]], [0, 1], {}, "apply a softmax in postprocessing"),
        ([[1.5, -0.5], [0.5, 0.5]], [0, 1], {}, "apply a softmax in postprocessing"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 2], {}, r"class indices in \[0, 1\]"),
        ([[0.5, 0.5], [0.5, 0.5]], [[1, 1], [0, 1]], {}, "one-hot"),
        ([[0.5, 0.5], [0.5, 0.5]], [0, 1], {"class_names": ["a", "b", "c"]}, "expected 3 class probabilities"),
        ([0.5, 0.5], [0, 1], {"num_classes": 3}, "expected 3 class probabilities"),
    ],
)
def test_multiclass_errors(tmp_path, pred, label, kwargs, match):
    data = [({"id": ["a", "b"]}, {"pred": torch.tensor(pred), "label": torch.tensor(label)})]
    with pytest.raises(ValueError, match=match):
        _run(data, ClassificationReportWriter(output_dir=tmp_path, **kwargs))


def test_multiclass_width_change_and_bad_arguments(tmp_path):
    data = [
        ({"id": ["a"]}, {"pred": torch.tensor([[0.5, 0.5]])}),
        ({"id": ["b"]}, {"pred": torch.tensor([[0.2, 0.3, 0.5]])}),
    ]
    with pytest.raises(ValueError, match="earlier iterations"):
        _run(data, ClassificationReportWriter(output_dir=tmp_path))
    with pytest.raises(ValueError, match="distinct"):
        ClassificationReportWriter(class_names=["a", "a"])
    with pytest.raises(ValueError, match="num_classes"):
        ClassificationReportWriter(class_names=["a", "b"], num_classes=3)


def test_binary_with_class_names(tmp_path):
    # two names on a single-probability output only label the confusion matrix; the binary report is unchanged
    _run(_batched(), ClassificationReportWriter(output_dir=tmp_path, class_names=["healthy", "tear"]))
    rows = _read_csv(tmp_path / "predictions.csv")
    assert list(rows[0]) == ["id", "probability", "prediction", "label"] and rows[0]["prediction"] == "1"
    assert json.loads((tmp_path / "metrics.json").read_text())["confusion_matrix"] == [[2, 1], [1, 2]]
    assert (tmp_path / "confusion_matrix.png").exists()


def test_supervised_evaluator_multiclass(tmp_path):
    from monai.data import DataLoader, Dataset
    from monai.engines import SupervisedEvaluator
    from monai.transforms import Activationsd

    torch.manual_seed(0)
    items = [{"image": torch.randn(1, 4, 4), "label": torch.tensor(i % 3), "id": f"s{i}"} for i in range(7)]
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(items), batch_size=3),
        network=net,
        postprocessing=Activationsd(keys="pred", softmax=True),
    )
    ClassificationReportWriter(output_dir=tmp_path, class_names=["x", "y", "z"]).attach(evaluator)
    evaluator.run()
    rows = _read_csv(tmp_path / "predictions.csv")
    assert [r["id"] for r in rows] == [f"s{i}" for i in range(7)]
    assert [r["label"] for r in rows] == ["x", "y", "z", "x", "y", "z", "x"]
    assert all(abs(sum(float(r[f"prob_{n}"]) for n in "xyz") - 1.0) < 1e-5 for r in rows)
    report = evaluator.state.metrics_report
    assert report["n"] == 7 and report["macro_auc"] is not None
    assert (tmp_path / "roc_curve.png").exists() and (tmp_path / "confusion_matrix.png").exists()


# multi-label: 4 samples, 3 labels; at thresholds (0.5, 0.5, 0.5): per-label F1 1/2, 1, 2/3 (macro 13/18),
# AUCs 1/2, 1, 1 (macro 5/6); at (0.3, 0.65, 0.4) (chosen on validation) every label has F1 1 except label 0:
# decisions 1,1,1,1 against 1,0,1,0 -> tp2 fp2 -> F1 4/6
ML_PROBS = [[0.9, 0.2, 0.6], [0.4, 0.7, 0.1], [0.3, 0.8, 0.2], [0.6, 0.1, 0.4]]
ML_LABELS = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]
ML_NAMES = ["nucleus", "membrane", "cytoplasm"]


def _ml_data(with_labels=True, decollated=False):
    probs, labels = torch.tensor(ML_PROBS), torch.tensor(ML_LABELS, dtype=torch.float32)
    batches = [(slice(0, 3), ["a", "b", "c"]), (slice(3, 4), ["d"])]
    if decollated:
        return [
            ([{"id": i} for i in ids], [{"pred": p, "label": y} for p, y in zip(probs[sl], labels[sl])])
            for sl, ids in batches
        ]
    return [({"id": ids}, {"pred": probs[sl]} | ({"label": labels[sl]} if with_labels else {})) for sl, ids in batches]


@pytest.mark.parametrize("decollated", [False, True])
def test_multilabel_report(tmp_path, decollated, caplog):
    handler = ClassificationReportWriter(
        output_dir=tmp_path, class_names=ML_NAMES, multi_label=True, summary_extra={"split": "test"}
    )
    with caplog.at_level(logging.INFO, logger="monai_ssl"):
        engine = _run(_ml_data(decollated=decollated), handler, epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "predictions.csv", "roc_curve.png"]
    rows = _read_csv(tmp_path / "predictions.csv")
    assert list(rows[0]) == ["id"] + [f"{k}_{n}" for k in ("prob", "pred", "label") for n in ML_NAMES]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert [[int(r[f"pred_{n}"]) for n in ML_NAMES] for r in rows] == [[1, 0, 1], [0, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert [[int(r[f"label_{n}"]) for n in ML_NAMES] for r in rows] == ML_LABELS
    assert float(rows[3]["prob_nucleus"]) == pytest.approx(0.6)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["macro_f1"] == pytest.approx(13 / 18) and metrics["macro_auc"] == pytest.approx(5 / 6)
    assert metrics["per_label"]["nucleus"]["f1"] == pytest.approx(0.5)
    assert metrics["per_label"]["cytoplasm"]["recall"] == pytest.approx(0.5)
    assert metrics["thresholds"] == [0.5] * 3 and metrics["thresholds_source"] == "default 0.5"
    assert metrics["split"] == "test" and "confusion_matrix" not in metrics
    assert engine.state.metrics_report["macro_f1"] == pytest.approx(13 / 18)
    assert "macro_f1=0.7222" in caplog.text


def test_multilabel_thresholds_and_inference(tmp_path):
    handler = ClassificationReportWriter(
        output_dir=tmp_path / "eval", class_names=ML_NAMES, multi_label=True, thresholds=[0.3, 0.65, 0.4],
        thresholds_source="chosen on the val split (max F1 per label)", plot_roc=False,
    )
    _run(_ml_data(), handler)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["thresholds"] == [0.3, 0.65, 0.4] and metrics["thresholds_source"].startswith("chosen on the val")
    assert [metrics["per_label"][n]["f1"] for n in ML_NAMES] == pytest.approx([4 / 6, 1.0, 1.0])
    assert not (tmp_path / "eval" / "roc_curve.png").exists()
    handler = ClassificationReportWriter(output_dir=tmp_path / "inf", num_classes=3, multi_label=True, thresholds=0.65)
    engine = _run(_ml_data(with_labels=False), handler)
    assert [p.name for p in (tmp_path / "inf").iterdir()] == ["predictions.csv"] and engine.state.metrics_report is None
    rows = _read_csv(tmp_path / "inf" / "predictions.csv")
    assert list(rows[0]) == ["id", "prob_0", "prob_1", "prob_2", "pred_0", "pred_1", "pred_2"]
    assert [int(rows[0][f"pred_{j}"]) for j in range(3)] == [1, 0, 0]  # 0.9, 0.2, 0.6 at 0.65


@pytest.mark.parametrize(
    "pred, label, match",
    [
        ([[0.5, 1.5, 0.1]], [[1, 0, 0]], "apply a sigmoid"),
        ([[0.5, 0.5]], [[1, 0]], "expected 3 probabilities"),
        ([[0.5, 0.5, 0.5]], [1], "multi-hot"),
        ([[0.5, 0.5, 0.5]], [[1, 0, 2]], "0 or 1"),
    ],
)
def test_multilabel_errors(tmp_path, pred, label, match):
    data = [({"id": ["a"]}, {"pred": torch.tensor(pred), "label": torch.tensor(label)})]
    with pytest.raises(ValueError, match=match):
        _run(data, ClassificationReportWriter(output_dir=tmp_path, class_names=ML_NAMES, multi_label=True))


def test_multilabel_bad_arguments():
    with pytest.raises(ValueError, match="`thresholds` are for multi-label reports"):
        ClassificationReportWriter(thresholds=0.3)
    with pytest.raises(ValueError, match="expected 3 values"):
        ClassificationReportWriter(class_names=ML_NAMES, multi_label=True, thresholds=[0.1, 0.2])


def test_binary_report_gives_macro_recall(tmp_path):
    # sensitivity 2/3 and specificity 2/3 (the binary example above) -> balanced accuracy 2/3
    engine = _run(_batched(), ClassificationReportWriter(output_dir=tmp_path, plot_roc=False, plot_confusion_matrix=False))
    assert engine.state.metrics_report["macro_recall"] == pytest.approx(2 / 3)
    assert json.loads((tmp_path / "metrics.json").read_text())["macro_recall"] == pytest.approx(2 / 3)
