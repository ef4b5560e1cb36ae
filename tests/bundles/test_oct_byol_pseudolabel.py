"""End to end: the OCT BYOL + pseudo-labeling bundle on tiny data, and on real BreastMNIST images."""

from __future__ import annotations

import csv
import json
import os
import shutil

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
    yield root
    shutil.rmtree(root, ignore_errors=True)  # checkpoints of a full ResNet-18: free the disk for later modules


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
    # bundle_root holds no configs/ here: name the fine-tuning config the rounds run
    run(config_file=_with("pseudolabel"), num_rounds=2, num_pseudo_labels=4, finetune_config=FINETUNE, **common)
    out = pretrained / "models" / "pseudolabel"
    rounds = _rows(out / "rounds.csv")
    assert list(rounds[0]) == ["round", "n_labeled", "n_pseudo", "n_new", "n_changed", "n_dropped", "n_pool",
                               "val_macro_recall", "pseudo_label_accuracy", "train_seconds", "score_seconds", "val_seconds",
                               "best_round", "best_metric"]
    assert [int(r["round"]) for r in rounds] == [0, 1, 2]
    assert [int(r["n_labeled"]) for r in rounds] == [4, 4, 4]
    assert [int(r["n_pseudo"]) for r in rounds] == [0, 4, 8]
    assert [int(r["n_pool"]) for r in rounds] == [16, 12, 8]
    table = _rows(out / "pseudo_labels.csv")
    assert len(table) == 8 and {r["round"] for r in table} == {"1", "2"}
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in table)
    for r in range(3):  # each round a fine-tuning run in its own folder; once saved as round_N.pt, its checkpoints go
        assert (out / f"round_{r}.pt").is_file() and not (out / f"round_{r}" / "checkpoints").exists()
        assert (out / f"round_{r}" / "model.settings.json").is_file() and (out / f"round_{r}" / "runs").is_dir()
    best = int(rounds[-1]["best_round"])
    sidecar = json.loads((out / f"round_{best}" / "model.settings.json").read_text())
    assert sidecar["image_size"] == 32 and sidecar["hidden_dim"] == 64 and sidecar["projection_dim"] == 16
    # the published models carry the best round's settings
    assert json.loads((out / "best_model.settings.json").read_text()) == sidecar
    assert json.loads((pretrained / "models" / "model.settings.json").read_text()) == sidecar
    deployed = torch.load(pretrained / "models" / "model.pt", weights_only=True)
    assert all(torch.equal(deployed[k], v) for k, v in torch.load(out / "best_model.pt", weights_only=True).items())
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


def _pseudo_label_run(pretrained, oct_data, folder, **overrides):
    """``finetune.json`` + ``pseudolabel.json`` into ``folder``, starting from the module's pre-trained encoder."""
    settings = {"bundle_root": str(pretrained), "dataset_dir": str(oct_data), "finetune_config": FINETUNE,
                "ckpt_dir": str(folder / "models"), "output_dir": str(folder / "runs"),
                "pretrained_encoder": str(pretrained / "models" / "encoder.pt"), "num_pseudo_labels": 4, **TINY_2D}
    run(config_file=_with("pseudolabel"), **{**settings, **overrides})
    return folder / "models" / "pseudolabel"


def test_pseudolabel_json_forwards_every_setting_of_finetune_json():
    """Every setting of finetune.json (a literal, or one of the computed defaults a user sets) reaches the rounds."""
    from monai_ssl.pseudo_label import ROUND_KEYS

    finetune = json.loads(open(FINETUNE).read())
    forwarded = json.loads((OCT / "pseudolabel.json").read_text())["round_settings"]
    literal = {k for k, v in finetune.items() if not isinstance(v, (dict, list)) and not str(v).startswith(("$", "@"))}
    computed = {"device", "amp", "num_workers", "dataset_dir", "demo_dir", "pretrained_encoder", "pretrained_projector"}
    missing = sorted((literal | computed) - set(forwarded) - set(ROUND_KEYS))
    assert not missing, f"pseudolabel.json round_settings does not forward {missing} to the rounds"
    assert all(value == f"@{key}" for key, value in forwarded.items())
    assert not set(forwarded) & set(ROUND_KEYS) and set(forwarded) <= set(finetune)


@pytest.mark.slow
def test_settings_of_the_pseudo_label_command_reach_every_round(pretrained, oct_data, tmp_path, monkeypatch):
    import monai_ssl.pseudo_label.round_folder as rounds_module

    workflows = []
    original = rounds_module.run_config_workflow

    def spy(config_file, overrides):
        workflows.append(original(config_file, overrides))
        return workflows[-1]

    monkeypatch.setattr(rounds_module, "run_config_workflow", spy)
    given = {"seed": 3, "labeled_fraction": 0.4, "batch_size": 4, "learning_rate": 0.005, "val_fraction": 0.2}
    out = _pseudo_label_run(pretrained, oct_data, tmp_path, num_rounds=1, **given)
    assert len(workflows) == 2
    labeled = {int(r["n_labeled"]) for r in _rows(out / "rounds.csv")}
    for workflow in workflows:
        parser = workflow.parser
        assert {k: parser.get_parsed_content(k) for k in given} == given
        assert parser.get_parsed_content("image_size") == 32 and parser.get_parsed_content("hidden_dim") == 64
        trainer = parser.get_parsed_content("train#trainer")
        assert trainer.data_loader.batch_size == 4 and trainer.optimizer.param_groups[0]["lr"] == 0.005
        assert {len(parser.get_parsed_content("labeled"))} == labeled
    # 4 training images per class after the 20 % hold-out, 40 % labeled: 2 per class
    assert labeled == {8}


@pytest.mark.slow
def test_pseudo_label_run_killed_in_round_2_resumes_there(pretrained, oct_data, tmp_path, monkeypatch):
    import monai_ssl.pseudo_label.round_folder as rounds_module
    from monai_ssl.handlers import CheckpointSaver

    original = CheckpointSaver.interval_completed

    def killed_in_round_2(self, engine):
        original(self, engine)
        if os.path.basename(os.path.dirname(self.save_dir)) == "round_2" and engine.state.epoch == 1:
            raise KeyboardInterrupt("killed in round 2")

    monkeypatch.setattr(CheckpointSaver, "interval_completed", killed_in_round_2)
    with pytest.raises(BaseException) as info:
        _pseudo_label_run(pretrained, oct_data, tmp_path, num_rounds=2, num_epochs=2)
    assert "killed in round 2" in " ".join(error_messages(info.value))
    out = tmp_path / "models" / "pseudolabel"
    assert [int(r["round"]) for r in _rows(out / "rounds.csv")] == [0, 1]
    assert (out / "round_2" / "checkpoints" / "checkpoint_epoch=1.pt").is_file() and not (out / "round_2.pt").exists()
    def finished_rounds():  # a saved round is its round_N.pt (its periodic checkpoints are removed then)
        return {r: (out / f"round_{r}.pt").stat().st_mtime_ns for r in (0, 1)}

    finished = finished_rounds()
    table = _rows(out / "pseudo_labels.csv")

    monkeypatch.setattr(CheckpointSaver, "interval_completed", original)
    workflows = []
    run_round = rounds_module.run_config_workflow

    def keep(*args):
        workflows.append(run_round(*args))
        return workflows[-1]

    monkeypatch.setattr(rounds_module, "run_config_workflow", keep)
    _pseudo_label_run(pretrained, oct_data, tmp_path, num_rounds=2, num_epochs=2, resume=True)
    assert len(workflows) == 1  # round 2 only, from its own checkpoint
    resume_handler = workflows[0].parser.get_parsed_content("train#handlers#resume")
    assert resume_handler.loaded == out / "round_2" / "checkpoints" / "checkpoint_epoch=1.pt"
    assert finished_rounds() == finished  # rounds 0 and 1 did not run again
    assert [int(r["round"]) for r in _rows(out / "rounds.csv")] == [0, 1, 2]
    assert _rows(out / "pseudo_labels.csv")[: len(table)] == table and len(_rows(out / "pseudo_labels.csv")) == 8
    assert torch.load(out / "round_2.pt", weights_only=True)["rounds"]["trainer_epoch"] == 2
    assert not (out / "round_2" / "checkpoints").exists()
    assert (tmp_path / "models" / "model.pt").is_file() and (tmp_path / "models" / "model.settings.json").is_file()


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


def test_evaluation_takes_the_classes_and_sizes_of_the_model(pretrained, oct_data, tmp_path):
    """The linear probe's settings (written by its training) give evaluate.json its sizes and the classes in the
    model's order; a model of classes the data lacks is an error naming them, a contradicting size names both."""
    model = pretrained / "models" / "linear_probe_model.pt"
    if not model.is_file():
        run(config_file=_with("linear_probe"), bundle_root=str(pretrained), dataset_dir=str(oct_data), **TINY_2D)
    settings = json.loads(model.with_suffix(".settings.json").read_text())
    assert settings == {"image_size": 32, "in_channels": 1, "encoder": "resnet18", "small_images": False,
                        "head_input": "projector", "hidden_dim": 64, "projection_dim": 16,
                        "class_names": ["CNV", "DME", "DRUSEN", "NORMAL"], "multi_label": False}
    evaluation = {"bundle_root": str(pretrained), "dataset_dir": str(oct_data), "model_file": str(model), "num_workers": 0}
    run(config_file=EVALUATE, output_dir=str(tmp_path / "eval"), **evaluation)  # no sizes given: the model's
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["n"] == 12 and report["class_names"] == settings["class_names"]
    saliency = json.loads((tmp_path / "eval" / "saliency" / "saliency.json").read_text())
    assert saliency["method"] == "gradcam" and saliency["measured"] is None  # OCT has no masks: pictures only
    assert len(list((tmp_path / "eval" / "saliency").glob("*_confident_*.png"))) == 8  # 4 most + 4 least of 12
    assert "saliency" not in report

    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, output_dir=str(tmp_path / "other"), image_size=64, **evaluation)
    assert any("image_size=64 (the model was trained with image_size=32)" in m for m in error_messages(info.value))
    other = tmp_path / "other_classes_model.pt"
    other.write_bytes(model.read_bytes())
    other.with_suffix(".settings.json").write_text(json.dumps({**settings, "class_names": ["CNV", "DME", "GA", "NORMAL"]}))
    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, **{**evaluation, "model_file": str(other), "output_dir": str(tmp_path / "other")})
    assert any("GA" in m and "not found" in m for m in error_messages(info.value)), error_messages(info.value)


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


@pytest.mark.slow  # about 70 s of real-data training: kept out of the default run, which must stay under 10 minutes
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


ML_LABELS = ["fluid", "drusen", "scar"]


def _multi_label_csv(oct_data, split, folder):
    """A hand-made multi-label CSV (3 labels, several set per image) over a split's images, copied into one folder."""
    images = sorted((oct_data / split).rglob("*.jpeg"))
    (folder / split).mkdir(parents=True)
    rows = ["id," + ",".join(ML_LABELS)]
    for i, image in enumerate(images):
        shutil.copy(image, folder / split / image.name)
        vector = [int(i % 2 == 0), int(i % 3 == 0), int(i % 4 != 1)]
        rows.append(f"{image.stem}," + ",".join(map(str, vector)))
    path = folder / f"{split}_labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, len(images)


def test_multi_label_csv_finetune_saves_validation_thresholds_that_evaluation_and_inference_use(oct_data, tmp_path):
    """A multi-label label CSV: BCE + sigmoid, selection by val_macro_f1, thresholds chosen on validation."""
    data = tmp_path / "data"
    train_csv, n_train = _multi_label_csv(oct_data, "train", data)
    test_csv, n_test = _multi_label_csv(oct_data, "test", data)
    assert (n_train, n_test) == (24, 12)
    common = {"bundle_root": str(tmp_path), "dataset_dir": str(oct_data), **TINY_2D}
    run(config_file=_with("supervised"), labels_csv=str(train_csv), image_dir=str(data / "train"),
        labeled_fraction=1.0, val_fraction=0.25, **common)
    model = tmp_path / "models" / "supervised_model.pt"
    settings = json.loads(model.with_suffix(".settings.json").read_text())
    assert settings["multi_label"] is True and settings["class_names"] == ML_LABELS
    assert settings["thresholds_source"] == "chosen on the validation split (max F1 per label)"  # when fine-tuning ended
    assert len(settings["thresholds"]) == 3 and all(0.0 <= t <= 1.0 for t in settings["thresholds"])
    assert settings["thresholds"] != [0.5] * 3  # observed validation probabilities, not the default
    events = EventAccumulator(str(tmp_path / "runs" / "supervised"))
    events.Reload()
    assert {"val_macro_f1", "val_macro_auc"} <= set(events.Tags()["scalars"])

    evaluation = {"bundle_root": str(tmp_path), "dataset_dir": str(oct_data), "model_file": str(model),
                  "num_workers": 0, "labels_csv": str(test_csv), "image_dir": str(data / "test")}
    run(config_file=EVALUATE, output_dir=str(tmp_path / "eval"), **evaluation)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["n"] == 12 and report["label_names"] == ML_LABELS and list(report["per_label"]) == ML_LABELS
    assert {"macro_f1", "macro_precision", "macro_recall", "macro_auc", "thresholds"} <= set(report)
    assert report["thresholds_source"] == "chosen on the validation split (max F1 per label)"
    assert report["thresholds"] == pytest.approx(settings["thresholds"])  # the model's, never chosen on the test split
    assert not (tmp_path / "eval" / "confusion_matrix.png").exists()
    rows = _rows(tmp_path / "eval" / "predictions.csv")
    assert len(rows) == 12 and {f"pred_{n}" for n in ML_LABELS} <= set(rows[0])

    run(config_file=INFERENCE, model_file=str(model), input_dir=str(data / "test"), output_dir=str(tmp_path / "inf"),
        num_workers=0)  # unlabeled images: probabilities and 0/1 decisions per label, no metrics
    inferred = _rows(tmp_path / "inf" / "predictions.csv")
    assert len(inferred) == 12 and list(inferred[0])[1:] == [f"{k}_{n}" for k in ("prob", "pred") for n in ML_LABELS]
    assert not (tmp_path / "inf" / "metrics.json").exists()
    decisions = [[int(r[f"pred_{n}"]) for n in ML_LABELS] for r in inferred]
    probabilities = [[float(r[f"prob_{n}"]) for n in ML_LABELS] for r in inferred]
    assert decisions == [[int(p >= t) for p, t in zip(row, settings["thresholds"])] for row in probabilities]

    run(config_file=EVALUATE, output_dir=str(tmp_path / "fixed"), **{**evaluation, "thresholds": 0.5})
    fixed = json.loads((tmp_path / "fixed" / "metrics.json").read_text())
    assert fixed["thresholds"] == [0.5] * 3 and fixed["thresholds_source"] == "fixed by the `thresholds` setting"

    with pytest.raises(Exception) as info:  # evaluate.json has no validation images to choose thresholds on
        run(config_file=EVALUATE, output_dir=str(tmp_path / "none"), **{**evaluation, "thresholds": "validation"})
    assert any("labeled validation split" in m for m in error_messages(info.value)), error_messages(info.value)


def test_multi_label_setting_contradicting_the_data_is_one_clear_error(oct_data, tmp_path):
    with pytest.raises(Exception) as info:
        run(config_file=_with("supervised"), bundle_root=str(tmp_path), dataset_dir=str(oct_data), multi_label=True,
            **TINY_2D)
    assert any("`multi_label` is true" in m and "--labels_csv" in m for m in error_messages(info.value))
