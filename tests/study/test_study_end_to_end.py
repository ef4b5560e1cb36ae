"""End to end: the OCT bundle's study on a tiny demo dataset, then a second invocation that reuses every cell;
the ISIC cross-teaching bundle's study on a tiny demo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from monai_ssl.data import make_isic_demo, make_oct_demo
from monai_ssl.study import bundle_study
from monai_ssl.study.__main__ import main

OCT = Path(__file__).resolve().parents[2] / "bundles" / "oct_byol_pseudolabel"
ISIC = Path(__file__).resolve().parents[2] / "bundles" / "isic_cross_teaching"
# the recipe with small sizes (as tests/bundles/bundle_helpers.TINY_2D) and small BYOL heads
TINY = {"image_size": 32, "batch_size": 8, "num_workers": 0, "hidden_dim": 64, "projection_dim": 16}


def test_study_on_tiny_oct_demo_then_resume(tmp_path):
    data = make_oct_demo(tmp_path / "OCT2017", n_train_per_class=6, n_test_per_class=3, seed=2)
    out = tmp_path / "study"
    args = ["--bundle", str(OCT), "--dataset_dir", str(data), "--fractions", "0.01,0.5", "--seeds", "0,1",
            "--protocols", "supervised,byol_finetune", "--num_epochs", "1", "--output_dir", str(out),
            "--override", json.dumps(TINY)]
    assert main(args) == 0

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["protocol"], r["fraction"], r["seed"]) for r in rows] == [
        ("supervised", "0.01", "0"), ("byol_finetune", "0.01", "0"), ("supervised", "0.5", "0"),
        ("byol_finetune", "0.5", "0"), ("supervised", "0.01", "1"), ("byol_finetune", "0.01", "1"),
        ("supervised", "0.5", "1"), ("byol_finetune", "0.5", "1")]
    done = [r for r in rows if r["fraction"] == "0.5"]
    assert all(r["status"] == "ok" for r in done)
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and 0.0 <= float(r["auc"]) <= 1.0 for r in done)
    assert len({r["n_labeled"] for r in done}) == 1 and int(done[0]["n_labeled"]) > 0
    assert len({r["steps"] for r in done}) == 1 and int(done[0]["steps"]) > 0  # the steps each cell trained
    skipped = [r for r in rows if r["fraction"] == "0.01"]
    # the bundle's LabelBudgetError, wrapped by MONAI's config parser, is recognised by its type
    assert all(r["status"].startswith("skipped: split_labeled: fraction=0.01 leaves class") for r in skipped)
    assert [r["pretrain_seed"] for r in rows] == ["", "0", "", "0", "", "1", "", "1"]  # each seed its own encoder

    text = (out / "results.md").read_text()
    assert "## accuracy" in text and "| supervised | skipped | " in text and "(n=2)" in text
    assert "**skipped** (4 cell(s): supervised, byol_finetune x seed(s) 0, 1): split_labeled:" in text
    assert "intervals cover pre-training and fine-tuning" in text and "shared_pretraining=false" in text
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"

    # each cell has its own folder: the model, the test report; the BYOL cells start from their seed's encoder
    cell = out / "cells" / "byol_finetune" / "fraction_0.5" / "seed_1"
    assert (cell / "models" / "finetune_model.pt").is_file()
    assert json.loads((cell / "eval" / "metrics.json").read_text())["n"] == 12  # the 12 test images
    encoders = [torch.load(out / "pretrain" / "byol" / f"seed_{s}" / "models" / "encoder.pt", weights_only=True)
                for s in (0, 1)]
    assert "conv1.weight" in encoders[0]
    assert not torch.equal(encoders[0]["conv1.weight"], encoders[1]["conv1.weight"])  # two pre-trainings
    assert not (out / "pretrain" / "byol" / "cell.json").exists()  # per seed, not shared
    assert sorted(p.name for p in (out / "pretrain").iterdir()) == ["byol"]  # the default method's folder only

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("**/*") if p.suffix in (".pt", ".json")}
    run = bundle_study(OCT, out, dataset_dir=data, fractions="0.01,0.5", seeds="0,1",
                       protocols="supervised,byol_finetune", num_epochs=1, overrides=TINY)
    assert (run.ran, run.reused, run.failed) == (0, 8, 0)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing retrained or rewritten
    with open(out / "results.csv") as f:
        assert list(csv.DictReader(f)) == rows

    with pytest.raises(ValueError, match="other settings.*num_epochs: 1 there, 2 now"):
        bundle_study(OCT, out, dataset_dir=data, fractions="0.5", seeds="0", num_epochs=2, overrides=TINY)
    with pytest.raises(ValueError, match="made with per-seed pre-training.*drop --shared_pretraining"):
        bundle_study(OCT, out, dataset_dir=data, fractions="0.5", seeds="0", protocols="supervised,byol_finetune",
                     num_epochs=1, overrides=TINY, shared_pretraining=True)


@pytest.mark.usefixtures("one_intra_op_thread")
def test_study_on_tiny_isic_demo(tmp_path):
    """Cross-teaching against the supervised baseline at 50% and 100% labels, one seed, one epoch."""
    data = make_isic_demo(tmp_path / "ISIC2017", n_train=8, n_val=2, n_test=2, height=(64, 80), width=(80, 96))
    out = tmp_path / "study"
    # the bundle at its smallest (as tests/bundles/bundle_helpers.TINY_ISIC); the batch sizes also replace the
    # 15 + 1 of the 100% run, which 8 training images cannot fill
    tiny = {"patch_size": 64, "working_size": 96, "swin_feature_size": 12, "labeled_batch_size": 2,
            "unlabeled_batch_size": 2, "num_workers": 0}
    args = ["--bundle", str(ISIC), "--dataset_dir", str(data), "--fractions", "0.5,1.0", "--seeds", "0",
            "--num_epochs", "1", "--output_dir", str(out), "--override", json.dumps(tiny)]
    assert main(args) == 0

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["protocol"], float(r["fraction"]), r["seed"], r["n_labeled"]) for r in rows] == [
        ("supervised", 0.5, "0", "4"), ("cross_teaching", 0.5, "0", "4"),
        ("supervised", 1.0, "0", "8"), ("cross_teaching", 1.0, "0", "8")]
    assert all(r["status"] == "ok" for r in rows)
    # one epoch of batches of 2 (drop_last): 2 optimizer steps at 50%, 4 at 100%, counted in both trainers
    assert [r["steps"] for r in rows] == ["2", "2", "4", "4"]
    assert all(0.0 <= float(r["iou"]) <= float(r["dice"]) <= 1.0 for r in rows)
    for row in rows:  # each row is its cell's test report, made with the protocol's architecture
        report = json.loads((out / row["cell_dir"] / "eval" / "metrics.json").read_text())
        assert report["n_images"] == 2 and report["architecture"] == row["protocol"]
        assert float(row["iou"]) == pytest.approx(report["mean_iou"])

    # both protocols of a cell trained on the same labeled images
    for fraction in ("0.5", "1"):
        runs = [torch.load(next((out / "cells" / protocol / f"fraction_{fraction}" / "seed_0" / "models" / protocol)
                                .glob("checkpoint_epoch=*.pt")), weights_only=True)["run"]
                for protocol in ("supervised", "cross_teaching")]
        assert runs[0]["fingerprints"]["labeled"] == runs[1]["fingerprints"]["labeled"]

    text = (out / "results.md").read_text()
    assert "## iou" in text and "## dice" in text and "| 50% (4 labels) | 100% (8 labels) |" in text
    assert "| supervised | " in text and "| cross_teaching | " in text and "Gain over `supervised` in iou" in text
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.usefixtures("one_intra_op_thread")
def test_isic_study_with_the_label_free_column(tmp_path):
    """``--fractions 0,0.5``: PiCIE (no labels) in the 0% column, the supervised baseline at 50%, one table and plot."""
    data = make_isic_demo(tmp_path / "ISIC2017", n_train=8, n_val=2, n_test=2, height=(64, 80), width=(80, 96))
    out = tmp_path / "study"
    tiny = {"patch_size": 32, "working_size": 64, "swin_feature_size": 12, "labeled_batch_size": 2,
            "unlabeled_batch_size": 2, "picie_backbone": "resnet18", "feature_size": 16, "batch_size": 4,
            "num_workers": 0}
    args = ["--bundle", str(ISIC), "--dataset_dir", str(data), "--fractions", "0,0.5", "--seeds", "0",
            "--protocols", "picie,supervised", "--num_epochs", "1", "--output_dir", str(out), "--override", json.dumps(tiny)]
    assert main(args) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["protocol"], float(r["fraction"]), r["n_labeled"], r["status"]) for r in rows] == [
        ("picie", 0.0, "0", "ok"), ("supervised", 0.5, "4", "ok")]
    report = json.loads((out / rows[0]["cell_dir"] / "eval" / "metrics.json").read_text())
    assert report["architecture"] == "picie" and "only to name the clusters" in report["cluster_naming"]
    assert float(rows[0]["iou"]) == pytest.approx(report["mean_iou"])
    text = (out / "results.md").read_text()
    assert "| 0% (0 labels) | 50% (4 labels) |" in text and "| picie | " in text and "n/a" in text
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
