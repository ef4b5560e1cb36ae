"""End to end: every config of the BYOLMed2D bundle on tiny data, as a user runs them."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch
from monai.bundle import ConfigWorkflow, run, verify_net_in_out
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bundle_helpers import BYOLMED2D, REPO, TINY, rank_outputs, run_two_cpu_processes, two_process_command
from documented_commands import documented_command, run_in_repo_layout
from monai_ssl.data import make_mrnet_demo

TRAIN = str(BYOLMED2D / "train.json")
FINETUNE = str(BYOLMED2D / "finetune.json")
EVALUATE = str(BYOLMED2D / "evaluate.json")
INFERENCE = str(BYOLMED2D / "inference.json")
META = str(BYOLMED2D / "metadata.json")


def _events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tiny_mrnet):
    root = tmp_path_factory.mktemp("byolmed2d")
    run(config_file=TRAIN, bundle_root=str(root), dataset_dir=str(tiny_mrnet), **{**TINY, "num_epochs": 2})
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_pretraining_writes_checkpoint_encoder_and_tensorboard(pretrained):
    checkpoint = torch.load(pretrained / "models" / "pretrain" / "checkpoint_epoch=2.pt", weights_only=True)
    assert set(checkpoint) == {"network", "optimizer", "trainer", "run"}  # the lr schedule is a function of the step count
    assert checkpoint["run"]["config"] == "byolmed2d/train.json" and checkpoint["run"]["num_epochs"] == 2
    assert checkpoint["run"]["num_items"] == {"train": 6}
    # 6 training exams, batch 2 -> 3 optimizer steps per epoch
    assert checkpoint["trainer"]["optimizer_steps"] == 6 and checkpoint["trainer"]["iteration"] == 6
    assert any(k.startswith("target_encoder.") for k in checkpoint["network"])
    encoder = torch.load(pretrained / "models" / "encoder.pt", weights_only=True)
    assert all(not k.startswith("online_") for k in encoder) and "backbone.conv1.weight" in encoder
    settings = json.loads((pretrained / "models" / "encoder.settings.json").read_text())
    assert settings["method"] == "byol" and settings["encoder"] == "slice_resnet18"
    assert settings["projector"] is False  # byolmed2d writes no projector.pt, so none is announced

    events = _events(pretrained / "runs" / "pretrain")
    scalars = set(events.Tags()["scalars"])
    assert {"byol/loss", "byol/lr", "byol/tau", "byol/projection_std"} <= scalars
    losses = [e.value for e in events.Scalars("byol/loss")]
    assert len(losses) == 6 and all(0.0 <= v <= 8.0 for v in losses)
    taus = [e.value for e in events.Scalars("byol/tau")]
    assert taus[0] == pytest.approx(0.99) and taus == sorted(taus)
    rates = [e.value for e in events.Scalars("byol/lr")]  # a cosine over the 6 optimizer steps, from 3e-4
    assert rates[0] == pytest.approx(3e-4) and rates == sorted(rates, reverse=True) and rates[-1] < rates[0]
    images = events.Images("byol/views")
    assert [i.step for i in images] == [1, 2]


def test_resume_continues_from_last_checkpoint(pretrained, tiny_mrnet):
    run(config_file=TRAIN, bundle_root=str(pretrained), dataset_dir=str(tiny_mrnet), resume=True,
        **{**TINY, "num_epochs": 3})
    checkpoint = torch.load(pretrained / "models" / "pretrain" / "checkpoint_epoch=3.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 9 and checkpoint["trainer"]["optimizer_steps"] == 9
    losses = [e.step for e in _events(pretrained / "runs" / "pretrain").Scalars("byol/loss")]
    assert losses[-3:] == [7, 8, 9]  # the resumed run logged iterations 7..9 only, not 1..9 again


def test_finetune_evaluate_inference_and_export(pretrained, tiny_mrnet, tmp_path):
    common = {"bundle_root": str(pretrained), "dataset_dir": str(tiny_mrnet), "num_slices": 4, "image_size": 32,
              "batch_size": 2, "num_workers": 0}
    run(config_file=FINETUNE, num_epochs=2, lr_milestones=[1], **common)
    models = pretrained / "models"
    assert (models / "model.pt").is_file()
    finetune_ckpt = torch.load(models / "finetune" / "checkpoint_epoch=2.pt", weights_only=True)
    assert finetune_ckpt["lr_scheduler"]["last_epoch"] == 2
    assert finetune_ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-5)  # x0.1 after the milestone
    events = _events(pretrained / "runs" / "finetune")
    assert {"train/loss", "val_auc", "val_accuracy"} <= set(events.Tags()["scalars"])
    settings = json.loads((models / "model.settings.json").read_text())  # the model carries its settings
    assert settings == {"image_size": 32, "in_channels": 1, "num_slices": 4, "plane": "sagittal", "task": "acl",
                        "class_names": ["negative", "acl"]}
    with pytest.raises(Exception) as info:  # evaluating the ACL model on meniscus labels is refused, naming both
        run(config_file=EVALUATE, task="meniscus", **common)
    assert any("task='meniscus' (the model was trained with task='acl')" in str(e) for e in _chain(info.value))

    run(config_file=EVALUATE, **common)
    report = json.loads((pretrained / "eval" / "metrics.json").read_text())
    assert report["n"] == 4 and report["n_positive"] >= 1
    assert {"accuracy", "auc", "sensitivity", "specificity", "confusion_matrix"} <= set(report)
    assert sum(map(sum, report["confusion_matrix"])) == 4
    with open(pretrained / "eval" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["0006", "0007", "0008", "0009"]
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)
    assert (pretrained / "eval" / "roc_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saliency = json.loads((pretrained / "eval" / "saliency" / "saliency.json").read_text())
    assert saliency["method"] == "gradient" and saliency["measured"] is None  # volumes: gradient saliency, no masks
    # 4 exams: the 4 most confident are all of them, so no "least confident" picture repeats one
    assert sorted(i["why"] for i in saliency["images"]) == [f"most confident #{r}" for r in (1, 2, 3, 4)]
    pictures = sorted((pretrained / "eval" / "saliency").glob("*.png"))
    assert len(pictures) == 4 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    assert "saliency/examples" in _events(pretrained / "eval" / "tensorboard").Tags()["images"]
    with pytest.raises(Exception) as info:  # a second evaluation into the same eval/ stops before it runs
        run(config_file=EVALUATE, **common)
    assert any(f"{pretrained / 'eval'} already holds an evaluation" in str(e) and "--overwrite True" in str(e)
               for e in _chain(info.value))

    unseen = tmp_path / "unseen"
    unseen.mkdir()
    for src in sorted((tiny_mrnet / "valid" / "sagittal").glob("*.npy"))[:2]:
        (unseen / f"exam_{src.name}").write_bytes(src.read_bytes())
    run(config_file=INFERENCE, input_dir=str(unseen), output_dir=str(tmp_path / "out"), **common)
    with open(tmp_path / "out" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["exam_0006", "exam_0007"] and "label" not in rows[0]

    verify_net_in_out(net_id="network_def", meta_file=META, config_file=INFERENCE)
    # the guide's export command as written, from a folder laid out like the repository root
    command = documented_command("byolmed2d.md", "python -m monai.bundle ckpt_export")
    result = run_in_repo_layout(command, tmp_path / "checkout", "byolmed2d", models)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    scripted = torch.jit.load(str(models / "model.ts"))  # bundles/byolmed2d/models/model.ts, as documented
    assert scripted(torch.rand(1, 1, 4, 32, 32)).shape == (1, 1)


def _single_class_validation(root):
    """The tiny MRNet demo with every training exam normal for the ``acl`` task, so that the validation
    hold-out of ``train`` (the split model selection uses) has a single class."""
    data = make_mrnet_demo(root, n_train=6, n_valid=4, num_slices=(5, 6), size=48, seed=1, planes=("sagittal",))
    rows = (data / "train-acl.csv").read_text().splitlines()
    (data / "train-acl.csv").write_text("".join(f"{row.split(',')[0]},0\n" for row in rows))
    return data


def test_finetune_on_single_class_validation_selects_on_accuracy(pretrained, tmp_path, caplog):
    data = _single_class_validation(tmp_path / "MRNet-v1.0")
    root = tmp_path / "bundle"
    workflow = ConfigWorkflow(
        config_file=FINETUNE, workflow_type=None, bundle_root=str(root), dataset_dir=str(data),
        pretrained_encoder=str(pretrained / "models" / "encoder.pt"), num_epochs=2, num_slices=4, image_size=32,
        batch_size=2, num_workers=0, val_fraction=0.5,
    )
    logger = logging.getLogger("monai_ssl")  # the bundle's logging set-up stops propagation to caplog's root handler
    logger.addHandler(caplog.handler)
    try:
        workflow.initialize()
        workflow.run()
        workflow.finalize()
    finally:
        logger.removeHandler(caplog.handler)

    warnings = [r.getMessage() for r in caplog.records if "single class" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once at start, not every epoch
    assert "validation split" in warnings[0] and "all 3 labels are class 0" in warnings[0]
    assert "selected on 'val_accuracy' instead of 'val_auc'" in warnings[0]

    events = _events(root / "runs" / "finetune")
    assert all(math.isnan(e.value) for e in events.Scalars("val_auc"))  # still logged, and undefined
    accuracy = [e.value for e in events.Scalars("val_accuracy")]
    best_epoch = 1 + accuracy.index(max(accuracy))  # the first best: an equal score does not replace it
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    assert evaluator.state.key_metric_name == "val_accuracy"
    assert evaluator.state.best_metric == pytest.approx(max(accuracy))
    assert evaluator.state.best_metric_epoch == best_epoch
    kept = torch.load(root / "models" / "model.pt", weights_only=True)
    at_best = torch.load(root / "models" / "finetune" / f"checkpoint_epoch={best_epoch}.pt", weights_only=True)
    assert kept.keys() == at_best["network"].keys()
    assert all(torch.equal(kept[k], at_best["network"][k]) for k in kept)


def test_finetune_without_pretraining_is_a_clear_error(tmp_path, tiny_mrnet):
    with pytest.raises(Exception) as info:
        run(config_file=FINETUNE, bundle_root=str(tmp_path), dataset_dir=str(tiny_mrnet), **TINY)
    causes = [e for e in _chain(info.value) if isinstance(e, FileNotFoundError)]
    assert causes and "pre-trained encoder not found" in str(causes[0]) and "train.json" in str(causes[0])


def test_missing_dataset_dir_names_it(tmp_path):
    with pytest.raises(Exception) as info:
        run(config_file=TRAIN, bundle_root=str(tmp_path), dataset_dir=str(tmp_path / "nowhere"), **TINY)
    assert "nowhere" in "".join(str(e) for e in _chain(info.value))


def _chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_multi_gpu_overlay_with_two_cpu_processes(tmp_path, tiny_mrnet):
    root, logs = tmp_path / "bundle", tmp_path / "logs"
    command = two_process_command([TRAIN, BYOLMED2D / "multi_gpu_train.json"], logs, "--bundle_root", str(root),
                                  "--dataset_dir", str(tiny_mrnet), *[f"--{k}={v}" for k, v in TINY.items()])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = run_two_cpu_processes(command, env, root)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    # 6 exams split over 2 processes, batch 2 per process -> 1 step per epoch (drop_last)
    assert checkpoint["trainer"]["optimizer_steps"] == 1
    assert len(list((root / "runs" / "pretrain").glob("events.out.tfevents.*"))) == 1  # rank 0 only
    outputs = rank_outputs(logs)
    assert "pre-training" in outputs[0] and "%|" in outputs[0]
    assert "%|" not in outputs[1]  # the handlers that write or display are off on rank 1, by name


@pytest.mark.slow
def test_documented_command_on_the_demo_data(tmp_path):
    """The README's main job, exactly as documented, from a folder laid out like a fresh checkout (3-4 minutes);
    run again, it stops with one line saying how to continue or start anew."""
    root = tmp_path / "bundles" / "byolmed2d"
    root.mkdir(parents=True)
    (root / "configs").symlink_to(REPO / "bundles" / "byolmed2d" / "configs", target_is_directory=True)
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "bundles/byolmed2d/configs/train.json"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (root / "models" / "encoder.pt").is_file()
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0
    assert "--resume True" in again.stderr.splitlines()[-1] and "--existing_checkpoints archive" in again.stderr


def test_pretraining_on_nifti_volumes_from_a_datalist(tmp_path):
    """The generic path: NIfTI volumes listed in a MONAI datalist JSON instead of MRNet."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(0)
    items = []
    for i in range(4):
        path = tmp_path / f"case{i}.nii.gz"
        nib.save(nib.Nifti1Image(rng.random((40, 40, 6)).astype(np.float32), np.eye(4)), path)  # (H, W, slices)
        items.append({"image": path.name})
    (tmp_path / "datalist.json").write_text(json.dumps({"training": items}))
    datalist = f"$monai.data.load_decathlon_datalist('{tmp_path / 'datalist.json'}', True, 'training')"
    run(config_file=TRAIN, bundle_root=str(tmp_path / "out"), **{"train#datalist": datalist}, **TINY)
    checkpoint = torch.load(tmp_path / "out" / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 2


def _three_findings(tiny_mrnet, root):
    """A copy of the tiny MRNet demo whose 6 training exams carry the label combinations 000, 000, 111, 111, 101
    and 110 (abnormal, acl, meniscus): a 0.5 hold-out of ``train`` takes one 000 and one 111 exam, so every
    finding has a positive in the validation split."""
    data = root / "MRNet-v1.0"
    shutil.copytree(tiny_mrnet, data)
    combos = ["000", "000", "111", "111", "101", "110"]
    ids = [int(line.split(",")[0]) for line in (data / "train-acl.csv").read_text().splitlines() if line.strip()]
    for k, finding in enumerate(("abnormal", "acl", "meniscus")):
        (data / f"train-{finding}.csv").write_text("".join(f"{i},{c[k]}\n" for i, c in zip(ids, combos)))
    return data


def test_all_three_findings_in_one_model(pretrained, tiny_mrnet, tmp_path):
    """``task: "all"``: one multi-label model (3 sigmoid outputs) fine-tuned, evaluated and run on new exams."""
    data = _three_findings(tiny_mrnet, tmp_path)
    root = tmp_path / "bundle"
    common = {"bundle_root": str(root), "dataset_dir": str(data), "num_slices": 4, "image_size": 32, "batch_size": 2,
              "num_workers": 0}
    run(config_file=FINETUNE, num_epochs=1, task="all", val_fraction=0.5,
        pretrained_encoder=str(pretrained / "models" / "encoder.pt"), **common)
    settings = json.loads((root / "models" / "model.settings.json").read_text())
    assert settings["task"] == "all" and settings["class_names"] == ["abnormal", "acl", "meniscus"]
    assert settings["thresholds_source"] == "chosen on the validation split (max F1 per label)"  # saved with the model
    assert len(settings["thresholds"]) == 3 and all(0.0 <= t <= 1.0 for t in settings["thresholds"])
    assert torch.load(root / "models" / "model.pt", weights_only=True)["head.weight"].shape[0] == 3
    scalars = set(_events(root / "runs" / "finetune").Tags()["scalars"])
    assert {"train/loss", "val_macro_f1", "val_macro_auc"} <= scalars and "val_auc" not in scalars

    run(config_file=EVALUATE, **common)
    report = json.loads((root / "eval" / "metrics.json").read_text())
    assert report["n"] == 4 and report["label_names"] == ["abnormal", "acl", "meniscus"]
    assert {"macro_f1", "macro_precision", "macro_recall", "macro_auc", "per_label"} <= set(report)
    assert set(report["per_label"]) == {"abnormal", "acl", "meniscus"}
    assert {"precision", "recall", "f1", "auc"} <= set(report["per_label"]["acl"])
    assert report["thresholds_source"] == "chosen on the validation split (max F1 per label)"
    assert report["thresholds"] == pytest.approx(settings["thresholds"])  # the model's, chosen on validation
    assert [report["per_label"][n]["threshold"] for n in report["label_names"]] == report["thresholds"]
    assert report["split"] == "valid"

    run(config_file=EVALUATE, thresholds=0.25, overwrite=True, **common)
    report = json.loads((root / "eval" / "metrics.json").read_text())
    assert report["thresholds"] == [0.25] * 3 and report["thresholds_source"] == "fixed by the `thresholds` setting"
    with open(root / "eval" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["0006", "0007", "0008", "0009"]
    assert all(int(r["pred_acl"]) == int(float(r["prob_acl"]) >= 0.25) for r in rows)

    run(config_file=INFERENCE, input_dir=str(data / "valid" / "sagittal"), output_dir=str(tmp_path / "out"), **common)
    with open(tmp_path / "out" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    probabilities = [[float(r[f"prob_{n}"]) for n in ("abnormal", "acl", "meniscus")] for r in rows]
    assert torch.tensor(probabilities).shape == (4, 3)  # one probability per finding and exam
    assert all(0.0 <= p <= 1.0 for row in probabilities for p in row) and "label_acl" not in rows[0]
    decisions = [[int(r[f"pred_{n}"]) for n in ("abnormal", "acl", "meniscus")] for r in rows]
    assert decisions == [[int(p >= t) for p, t in zip(row, settings["thresholds"])] for row in probabilities]


def test_unknown_finding_lists_the_three(tmp_path, tiny_mrnet):
    with pytest.raises(Exception) as info:
        run(config_file=FINETUNE, bundle_root=str(tmp_path), dataset_dir=str(tiny_mrnet), task=["acl", "pcl"], **TINY)
    assert any("unknown MRNet finding(s) ['pcl']" in str(e) and "abnormal, acl, meniscus" in str(e)
               for e in _chain(info.value))


def test_multi_label_validation_metrics_get_tensors_on_the_device(tiny_mrnet):
    """``task: "all"``: the macro F1 and macro AUC of model selection get predictions and labels on the evaluator's device."""
    import numpy as np
    from test_device_placement import misplaced_metric_inputs, misplaced_postprocessed_tensors

    labels = [np.array(v, np.float32) for v in ([1, 1, 0], [0, 0, 0], [1, 0, 1])]
    overrides = {"task": "all", "dataset_dir": str(tiny_mrnet)}
    assert misplaced_metric_inputs([FINETUNE], labels, 3, overrides) == []
    assert misplaced_postprocessed_tensors([EVALUATE], labels, 3) == []
