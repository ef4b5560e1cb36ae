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
    assert sorted(p.name for p in out_dir.iterdir()) == ["metrics.json", "predictions.csv", "roc_curve.png"]
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
    _run(data, ClassificationReportWriter(output_dir=tmp_path, threshold=0.35, plot_roc=False))
    rows = _read_csv(tmp_path / "predictions.csv")
    assert [r["id"] for r in rows] == ["x.nii", "y.nii", "z.nii", "3", "4", "5"]  # then running index
    assert [int(r["prediction"]) for r in rows] == [1, 1, 1, 1, 0, 0]
    assert not (tmp_path / "roc_curve.png").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["threshold"] == 0.35


def test_single_class_no_roc(tmp_path):
    data = [({"id": ["a", "b"]}, {"pred": torch.tensor([0.2, 0.8]), "label": torch.tensor([1, 1])})]
    engine = _run(data, ClassificationReportWriter(output_dir=tmp_path))
    assert engine.state.metrics_report["auc"] is None and "auc_note" in engine.state.metrics_report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "predictions.csv"]


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
