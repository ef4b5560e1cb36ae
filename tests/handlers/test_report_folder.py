"""An evaluation report folder: an earlier report is refused, or replaced whole (ClassificationReportWriter)."""

from __future__ import annotations

import json

import pytest
import torch
from ignite.engine import Engine

from monai_ssl.handlers import ClassificationReportWriter

IDS = ["a", "b", "c", "d"]
BOTH_CLASSES = [0.9, 0.6, 0.4, 0.1], [1, 0, 1, 0]
ONE_CLASS = [0.8, 0.7, 0.3, 0.2], [1, 1, 1, 1]  # every label positive: no ROC curve


def _evaluate(folder, data=BOTH_CLASSES, epochs=1, **kwargs):
    probs, labels = data
    batch = ({"id": IDS}, {"pred": torch.tensor(probs), "label": torch.tensor(labels)})
    engine = Engine(lambda e, item: (setattr(e.state, "batch", item[0]), item[1])[1])
    ClassificationReportWriter(output_dir=folder, **kwargs).attach(engine)
    engine.run([batch], max_epochs=epochs)
    return json.loads((folder / "metrics.json").read_text())


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_evaluation_into_the_same_folder_is_refused_before_it_runs(tmp_path):
    folder = tmp_path / "eval"
    _evaluate(folder, overwrite=False, epochs=2)  # the later epochs of one run replace its own report
    before = _snapshot(folder)
    assert set(before) == {"confusion_matrix.png", "metrics.json", "predictions.csv", "roc_curve.png"}
    engine = Engine(lambda e, item: item)
    with pytest.raises(FileExistsError) as info:
        ClassificationReportWriter(output_dir=folder, overwrite=False).attach(engine)
    message = str(info.value)
    assert f"{folder} already holds an evaluation (confusion_matrix.png, metrics.json, predictions.csv" in message
    assert "--output_dir <new folder>" in message and "--overwrite True" in message
    assert _snapshot(folder) == before


def test_overwrite_replaces_the_whole_report_and_keeps_other_entries(tmp_path):
    folder = tmp_path / "eval"
    assert _evaluate(folder, overwrite=False)["n_positive"] == 2
    (folder / "inference").mkdir()  # where the bundles' inference.json writes
    (folder / "inference" / "predictions.csv").write_text("id,probability,prediction\n")
    report = _evaluate(folder, ONE_CLASS, overwrite=True)
    assert report["n_positive"] == 4 and report["auc"] is None
    # the earlier roc_curve.png is gone with the rest of the earlier report, not left beside the new one
    assert sorted(p.name for p in folder.iterdir()) == ["confusion_matrix.png", "inference", "metrics.json",
                                                        "predictions.csv"]
    assert (folder / "inference" / "predictions.csv").read_text() == "id,probability,prediction\n"
    assert [p.name for p in tmp_path.iterdir()] == ["eval"]  # no staging or old folder left behind


def test_a_failed_overwrite_leaves_the_earlier_report_as_it_was(tmp_path, monkeypatch):
    import monai_ssl.visualize

    folder = tmp_path / "eval"
    _evaluate(folder)
    (folder / "notes.txt").write_text("mine")
    before = _snapshot(folder)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(monai_ssl.visualize, "save_figure", broken)
    with pytest.raises(OSError, match="disk full"):
        _evaluate(folder, ONE_CLASS, overwrite=True)
    assert _snapshot(folder) == before
    assert [p.name for p in tmp_path.iterdir()] == ["eval"]


def test_the_current_folder_cannot_be_a_replaceable_report_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is the current folder or holds it"):
        ClassificationReportWriter(output_dir="./", overwrite=True).attach(Engine(lambda e, item: item))


def test_overwrite_must_be_a_bool():
    with pytest.raises(ValueError, match=r"`overwrite` must be True or False \(--overwrite True\), got 'false'"):
        ClassificationReportWriter(output_dir="eval", overwrite="false")
