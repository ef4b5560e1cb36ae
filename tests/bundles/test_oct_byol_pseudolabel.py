"""End to end: the OCT BYOL + pseudo-labeling bundle on tiny data, and on real BreastMNIST images."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
from monai.bundle import run, verify_net_in_out
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bundle_helpers import OCT, REPO, TINY_2D, error_messages
from documented_commands import documented_command, run_in_repo_layout
from monai_ssl.data import make_oct_demo

TRAIN = str(OCT / "train.json")
FINETUNE = str(OCT / "finetune.json")
EVALUATE = str(OCT / "evaluate.json")
INFERENCE = str(OCT / "inference.json")
META = str(OCT / "metadata.json")
BREASTMNIST = REPO.parent / "shared" / "data" / "breastmnist.npz"


def _with(*overlays: str) -> list[str]:
    return [FINETUNE] + [str(OCT / f"{o}.json") for o in overlays]


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def oct_data(tmp_path_factory):
    return make_oct_demo(tmp_path_factory.mktemp("oct") / "OCT2017", n_train_per_class=6, n_test_per_class=3, seed=2)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, oct_data):
    root = tmp_path_factory.mktemp("oct_bundle")
    run(config_file=TRAIN, bundle_root=str(root), dataset_dir=str(oct_data), **TINY_2D)
    return root


def test_pretraining(pretrained):
    checkpoint = torch.load(pretrained / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    # 6 images per class, one per class held out for validation (no val split): 20 images, batch 8
    assert checkpoint["trainer"]["optimizer_steps"] == 2
    encoder = torch.load(pretrained / "models" / "encoder.pt", weights_only=True)
    assert "conv1.weight" in encoder
    projector = torch.load(pretrained / "models" / "projector.pt", weights_only=True)
    assert projector["3.weight"].shape == (16, 64)  # the online projector g: 512 -> 64 -> 16
    events = EventAccumulator(str(pretrained / "runs" / "pretrain"))
    events.Reload()
    assert {"byol/loss", "byol/tau"} <= set(events.Tags()["scalars"])


def test_pseudo_labeling_rounds_then_evaluate_infer_export(pretrained, oct_data, tmp_path):
    common = {"bundle_root": str(pretrained), "dataset_dir": str(oct_data), **TINY_2D}
    # 5 training images per class after the validation hold-out; labeled 25% -> 1 per class (4 labeled),
    # 16 in the pool; 4 pseudo-labels per round
    run(config_file=_with("pseudolabel"), num_rounds=2, num_pseudo_labels=4, **common)
    out = pretrained / "models" / "pseudolabel"
    rounds = _rows(out / "rounds.csv")
    assert [int(r["round"]) for r in rounds] == [0, 1, 2]
    assert [int(r["n_labeled"]) for r in rounds] == [4, 4, 4]
    assert [int(r["n_pseudo"]) for r in rounds] == [0, 4, 8]
    assert [int(r["n_pool"]) for r in rounds] == [16, 12, 8]
    table = _rows(out / "pseudo_labels.csv")
    assert len(table) == 8 and {r["round"] for r in table} == {"1", "2"}
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in table)
    assert (out / "best_model.pt").is_file()
    events = EventAccumulator(str(pretrained / "runs" / "pseudolabel"))
    events.Reload()
    assert any(t.startswith("pseudo_label/") for t in events.Tags()["scalars"])

    evaluation = {"bundle_root": str(pretrained), "dataset_dir": str(oct_data), "image_size": 32, "num_workers": 0,
                  "hidden_dim": 64, "projection_dim": 16}
    run(config_file=EVALUATE, **evaluation)
    eval_dir = pretrained / "eval"
    report = json.loads((eval_dir / "metrics.json").read_text())
    assert report["n"] == 12 and report["class_names"] == ["CNV", "DME", "DRUSEN", "NORMAL"]
    assert {"accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc", "per_class"} <= set(report)
    assert np.asarray(report["confusion_matrix"]).sum() == 12
    for picture in ("confusion_matrix.png", "roc_curve.png"):
        assert (eval_dir / picture).read_bytes()[:4] == b"\x89PNG"
    assert len(_rows(eval_dir / "predictions.csv")) == 12

    run(config_file=INFERENCE, input_dir=str(oct_data / "test" / "DME"), **evaluation)  # into eval/inference
    rows = _rows(eval_dir / "inference" / "predictions.csv")
    assert len(rows) == 3 and rows[0]["prediction"] in ("CNV", "DME", "DRUSEN", "NORMAL") and "label" not in rows[0]

    # a second evaluation into eval/ stops before it runs; --overwrite True replaces the report, keeps inference/
    (eval_dir / "metrics.json").write_text('{"earlier": true}')
    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, **evaluation)
    messages = error_messages(info.value)
    assert any(f"{eval_dir} already holds an evaluation" in m and "--output_dir <new folder>" in m
               and "--overwrite True" in m for m in messages), messages
    assert (eval_dir / "metrics.json").read_text() == '{"earlier": true}'
    run(config_file=EVALUATE, overwrite=True, **evaluation)
    assert json.loads((eval_dir / "metrics.json").read_text())["n"] == 12
    assert len(_rows(eval_dir / "inference" / "predictions.csv")) == 3

    verify_net_in_out(net_id="network_def", meta_file=META, config_file=INFERENCE)
    # the guide's export command as written (plus the tiny head sizes), from a folder laid out like the repository
    command = documented_command("oct_byol_pseudolabel.md", "python -m monai.bundle ckpt_export")
    command += ["--hidden_dim", "64", "--projection_dim", "16"]
    result = run_in_repo_layout(command, tmp_path / "checkout", "oct_byol_pseudolabel", pretrained / "models")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    exported = pretrained / "models" / "model.ts"  # bundles/oct_byol_pseudolabel/models/model.ts, as documented
    assert torch.jit.load(str(exported))(torch.rand(2, 1, 32, 32)).shape == (2, 4)


def test_linear_probe_keeps_the_encoder_fixed(pretrained, oct_data):
    run(config_file=_with("linear_probe"), bundle_root=str(pretrained), dataset_dir=str(oct_data), **TINY_2D)
    model = torch.load(pretrained / "models" / "linear_probe_model.pt", weights_only=True)
    encoder = torch.load(pretrained / "models" / "encoder.pt", weights_only=True)
    projector = torch.load(pretrained / "models" / "projector.pt", weights_only=True)
    for name, weight in encoder.items():
        torch.testing.assert_close(model[f"encoder.{name}"], weight)
    for name, weight in projector.items():  # the head reads the pre-trained projector's output (Feng et al. 4.2.1)
        torch.testing.assert_close(model[f"projector.{name}"], weight)
    assert model["head.weight"].shape == (4, 16)


def test_few_shot_and_supervised_baseline(pretrained, oct_data, tmp_path):
    run(config_file=_with("few_shot"), bundle_root=str(pretrained), dataset_dir=str(oct_data), shots_per_class=2,
        **TINY_2D)
    checkpoint = torch.load(pretrained / "models" / "few_shot" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 1  # 2 shots x 4 classes = one batch of 8
    # the baseline needs no pre-trained encoder: an empty bundle_root works
    run(config_file=_with("supervised"), bundle_root=str(tmp_path), dataset_dir=str(oct_data), **TINY_2D)
    assert (tmp_path / "models" / "supervised_model.pt").is_file()


def test_labeled_fraction_that_leaves_a_class_empty_is_a_clear_error(tmp_path, oct_data):
    with pytest.raises(Exception) as info:
        run(config_file=_with("supervised"), bundle_root=str(tmp_path), dataset_dir=str(oct_data),
            labeled_fraction=0.01, **TINY_2D)
    messages = []
    error = info.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    assert any("fraction=0.01" in m and "class 0" in m and "no labeled item" in m for m in messages), messages


@pytest.mark.skipif(not BREASTMNIST.is_file(), reason="../shared/data/breastmnist.npz is not present")
def test_byol_then_finetune_beats_the_majority_class_on_breastmnist(tmp_path):
    """Real ultrasound images end to end: BYOL pre-training, fine-tuning on all labels, test accuracy."""
    data = {"bundle_root": str(tmp_path), "dataset_dir": str(BREASTMNIST), "image_size": 32, "num_workers": 0,
            "hidden_dim": 64, "projection_dim": 16}
    run(config_file=TRAIN, num_epochs=3, batch_size=64, **data)
    run(config_file=FINETUNE, num_epochs=8, batch_size=32, labeled_fraction=1.0, val_split="val", **data)
    run(config_file=EVALUATE, model_file=str(tmp_path / "models" / "finetune_model.pt"), split="test", **data)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    labels = np.load(BREASTMNIST)["test_labels"].reshape(-1)
    majority = max(np.mean(labels == 0), np.mean(labels == 1))
    assert report["n"] == 156
    assert report["accuracy"] > majority, (report["accuracy"], majority)


@pytest.mark.parametrize("overlay", ["pseudolabel", "linear_probe", "few_shot", "supervised"])
def test_an_overlay_run_alone_names_its_base_config(tmp_path, overlay):
    with pytest.raises(Exception) as info:
        run(config_file=str(OCT / f"{overlay}.json"), bundle_root=str(tmp_path))
    messages, error = [], info.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    assert any(f"{overlay}.json is an overlay of finetune.json" in m for m in messages), messages


@pytest.mark.parametrize("overlay", ["pseudolabel", "supervised"])
def test_an_overlay_run_alone_as_documented_names_its_base_config(overlay):
    """The documented command, without --bundle_root: the overlay's own bundle_root gives the base config's path."""
    with pytest.raises(Exception) as info:
        run(config_file=str(OCT / f"{overlay}.json"))
    wanted = f"'bundles/oct_byol_pseudolabel/configs/finetune.json','bundles/oct_byol_pseudolabel/configs/{overlay}.json'"
    assert any(wanted in m for m in error_messages(info.value)), error_messages(info.value)
