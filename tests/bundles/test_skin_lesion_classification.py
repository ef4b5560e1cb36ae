"""End to end: the dermoscopy classification bundle (S4MI, Singh et al.) on a tiny synthetic ISIC 2017 demo.

One module-scoped BYOL pre-training and fine-tuning are shared by the evaluation, inference and saliency
tests; the overlays, the multi-label CSV, the class-folder layout and the bad inputs each run once more.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import torch
from monai.bundle import run, verify_net_in_out
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bundle_helpers import REPO, SKIN, TINY_SKIN, TINY_SKIN_EVAL, error_messages, rank_outputs, \
    run_two_cpu_processes, two_process_command
from documented_commands import documented_command, run_in_repo_layout
from monai_ssl.data import LabelBudgetError, make_skin_lesion_demo
from monai_ssl.networks import resnet18_encoder

TRAIN = str(SKIN / "train.json")
FINETUNE = str(SKIN / "finetune.json")
EVALUATE = str(SKIN / "evaluate.json")
INFERENCE = str(SKIN / "inference.json")
SALIENCY = str(SKIN / "saliency.json")
META = str(SKIN / "metadata.json")
ISIC_CLASSES = ["melanoma", "seborrheic_keratosis", "nevus"]
TEST_FOLDER = "ISIC-2017_Test_v2_Data"
MASK_FOLDER = "ISIC-2017_Test_v2_Part1_GroundTruth"
# DINO at its smallest (as tests/bundles/test_pretraining_methods.py); CASS with the small ViT
METHOD_OVERRIDES = {
    "dino": {"methods#dino#out_features": 256, "methods#dino#local_views": 2, "methods#dino#hidden_dim": 64,
             "methods#dino#bottleneck_dim": 16},
    "cass": {"methods#cass#transformer": "vit_s16"},
}


def _with(*overlays: str) -> list[str]:
    return [FINETUNE] + [str(SKIN / f"{o}.json") for o in overlays]


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _settings(path):
    return json.loads(path.with_suffix(".settings.json").read_text())


def _state(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


def _raises(configs, match_all, **overrides):
    """Run ``configs`` expecting an error one of whose messages holds every text of ``match_all``."""
    with pytest.raises(Exception) as info:
        run(config_file=configs, **overrides)
    messages = error_messages(info.value)
    assert any(all(text in m for text in match_all) for m in messages), messages
    return info.value


@pytest.fixture(scope="module")
def skin_data(tmp_path_factory):
    """12/6/6 train/val/test images (4/2/2 per class) of 48 x 64 pixels, with lesion masks."""
    return make_skin_lesion_demo(tmp_path_factory.mktemp("skin") / "ISIC2017", n_train_per_class=4,
                                 n_val_per_class=2, n_test_per_class=2, size=(48, 64))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, skin_data):
    """A bundle root with a one-epoch BYOL pre-training and the fine-tuning of its encoder."""
    root = tmp_path_factory.mktemp("skin_bundle")
    common = {"bundle_root": str(root), "dataset_dir": str(skin_data), **TINY_SKIN}
    run(config_file=TRAIN, **common)
    run(config_file=FINETUNE, **common)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _common(root, data, **more):
    return {"bundle_root": str(root), "dataset_dir": str(data), **TINY_SKIN, **more}


def _eval_common(root, data, **more):
    return {"bundle_root": str(root), "dataset_dir": str(data), **TINY_SKIN_EVAL, **more}


# ------------------------------------------------------------------------------------------------ pre-training


def test_byol_pretraining_exports_the_encoder_and_its_settings(pretrained):
    models = pretrained / "models"
    settings = json.loads((models / "encoder.settings.json").read_text())
    assert settings["method"] == "byol" and settings["encoder"] == "resnet18" and settings["in_channels"] == 3
    assert settings["small_images"] is True and settings["image_size"] == 32
    encoder = torch.load(models / "encoder.pt", weights_only=True)
    assert encoder["conv1.weight"].shape[:2] == (64, 3)  # three input channels (RGB dermoscopy)
    checkpoint = torch.load(models / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 3  # 12 training images, batch 4
    assert checkpoint["run"]["config"] == "skin_lesion_classification/train.json"


@pytest.mark.parametrize("method", ["dino", pytest.param("cass", marks=pytest.mark.slow)])  # CASS with a ViT: ~20 s
def test_other_methods_pretrain_and_say_what_they_exported(method, skin_data, tmp_path):
    run(config_file=TRAIN, method=method, **_common(tmp_path, skin_data), **METHOD_OVERRIDES[method])
    settings = json.loads((tmp_path / "models" / "encoder.settings.json").read_text())
    assert settings["method"] == method and settings["encoder"] == "resnet18" and settings["in_channels"] == 3
    encoder = torch.load(tmp_path / "models" / "encoder.pt", weights_only=True)
    assert encoder["conv1.weight"].shape[:2] == (64, 3)
    checkpoint = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["run"]["settings"] == {"method": method}


# ------------------------------------------------------------------------------------------------- fine-tuning


def test_finetune_selects_on_macro_recall_and_publishes_the_model(pretrained):
    models = pretrained / "models"
    settings = _settings(models / "finetune_model.pt")
    assert settings["multi_label"] is False and settings["class_names"] == ISIC_CLASSES
    assert settings["encoder"] == "resnet18" and settings["small_images"] is True and settings["image_size"] == 32
    assert "thresholds" not in settings  # single-label: the arg-max decides
    best = _state(models / "finetune_model.pt")
    deployed = _state(models / "model.pt")
    assert deployed.keys() == best.keys() and all(torch.equal(deployed[k], best[k]) for k in best)
    assert _settings(models / "model.pt") == settings
    events = EventAccumulator(str(pretrained / "runs" / "finetune"))
    events.Reload()
    assert {"val_macro_recall", "train/loss"} <= set(events.Tags()["scalars"])
    # the checkpoint's best metric is the validation macro recall (balanced accuracy) of the selected epoch
    checkpoint = torch.load(models / "finetune" / "checkpoint_epoch=1.pt", weights_only=True)
    recall = [e.value for e in events.Scalars("val_macro_recall")]
    assert checkpoint["best_model"]["best_metric"] == pytest.approx(max(recall))


def test_supervised_reads_no_encoder(pretrained, skin_data, tmp_path):
    # no encoder where finetune.json would look: the supervised overlay must not read one
    common = _common(tmp_path, skin_data)
    run(config_file=_with("supervised"), **common)
    settings = _settings(tmp_path / "models" / "supervised_model.pt")
    assert settings["encoder"] == "resnet18" and settings["class_names"] == ISIC_CLASSES
    assert not (tmp_path / "models" / "encoder.pt").exists()


def test_linear_probe_keeps_the_pretrained_encoder(pretrained, skin_data, tmp_path):
    encoder_file = pretrained / "models" / "encoder.pt"
    run(config_file=_with("linear_probe"), pretrained_encoder=str(encoder_file), **_common(tmp_path, skin_data))
    trained = _state(tmp_path / "models" / "linear_probe_model.pt")
    encoder = torch.load(encoder_file, weights_only=True)
    compared = [k for k in encoder if not k.endswith("num_batches_tracked")]
    assert compared and all(torch.equal(trained[f"encoder.{k}"], encoder[k]) for k in compared)
    head = [k for k in trained if not k.startswith("encoder.")]
    assert head  # the linear head exists and is what trained


def test_few_shot_trains_on_shots_per_class(pretrained, skin_data, tmp_path, caplog):
    common = _common(tmp_path, skin_data, pretrained_encoder=str(pretrained / "models" / "encoder.pt"))
    run(config_file=_with("few_shot"), shots_per_class=2, **common)
    checkpoint = torch.load(tmp_path / "models" / "few_shot" / "checkpoint_epoch=1.pt", weights_only=True)
    # 2 shots x 3 classes = 6 labeled images, batch 4 -> 2 iterations
    assert checkpoint["trainer"]["iteration"] == 2
    assert (tmp_path / "models" / "few_shot_model.pt").is_file()


def test_imagenet_transfer_needs_weights_and_loads_a_torchvision_resnet18(skin_data, tmp_path, caplog):
    common = _common(tmp_path, skin_data, small_images=False)  # ImageNet ResNets have the 7x7 stem
    _raises(_with("imagenet_transfer"), ["imagenet_transfer needs `--pretrained_weights PATH`"], **common)
    # a torchvision-layout ResNet-18 checkpoint: the encoder's names plus an ImageNet classifier `fc`
    source = resnet18_encoder(in_channels=3)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    weights = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, weights)
    caplog.set_level("INFO")
    package_logger = logging.getLogger("monai_ssl")  # configure_logging stops it propagating to caplog's root
    package_logger.addHandler(caplog.handler)
    try:
        run(config_file=_with("imagenet_transfer"), pretrained_weights=str(weights), **common)
    finally:
        package_logger.removeHandler(caplog.handler)
    assert "fc.weight" in caplog.text  # the load report names the unexpected ImageNet classifier
    assert (tmp_path / "models" / "imagenet_transfer_model.pt").is_file()
    settings = _settings(tmp_path / "models" / "imagenet_transfer_model.pt")
    assert settings["small_images"] is False


@pytest.mark.parametrize("class_balance", ["loss_weights", "sampler"])
def test_class_balance_settings_run(class_balance, skin_data, tmp_path):
    run(config_file=_with("supervised"), class_balance=class_balance, **_common(tmp_path, skin_data))
    assert (tmp_path / "models" / "supervised_model.pt").is_file()


def test_a_label_budget_a_class_cannot_meet_is_a_budget_error(skin_data, tmp_path):
    with pytest.raises(Exception) as info:
        run(config_file=_with("few_shot"), shots_per_class=5, **_common(tmp_path, skin_data))
    chain, error = [], info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, LabelBudgetError) for e in chain), error_messages(info.value)


# --------------------------------------------------------------------------------- evaluation, inference, saliency


def test_evaluate_reports_recall_and_measured_saliency(pretrained, skin_data):
    common = _eval_common(pretrained, skin_data)
    run(config_file=EVALUATE, **common)
    eval_dir = pretrained / "eval"
    report = json.loads((eval_dir / "metrics.json").read_text())
    assert report["split"] == "test" and report["n"] == 6 and report["class_names"] == ISIC_CLASSES
    assert {"macro_recall", "macro_f1", "accuracy", "per_class"} <= set(report)
    assert set(report["per_class"]) == set(ISIC_CLASSES)
    saliency = report["saliency"]
    assert saliency["n"] == 6 and 0.0 <= saliency["in_mask_share_mean"] <= 1.0
    assert 0.0 <= saliency["pointing_game_hit_rate"] <= 1.0
    # 4 most and the 2 least confident of the 6 test images left: each image drawn once
    pictures = sorted((eval_dir / "saliency").glob("*.png"))
    assert len(pictures) == 6 and len({p.name.split("_confident_")[1] for p in pictures}) == 6
    assert sum("most_confident" in p.name for p in pictures) == 4
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pictures)
    events = EventAccumulator(str(eval_dir / "tensorboard"))
    events.Reload()
    assert "saliency/examples" in events.Tags()["images"]
    assert len(_rows(eval_dir / "predictions.csv")) == 6

    # the validation split chose the model: evaluating on it needs the explicit flag
    _raises(EVALUATE, ["evaluate_on_selection_split"], split="val", output_dir=str(pretrained / "eval_val"), **common)
    # a second evaluation into eval/ stops; --overwrite replaces it
    (eval_dir / "metrics.json").write_text('{"earlier": true}')
    _raises(EVALUATE, [str(eval_dir), "--overwrite True"], **common)
    assert (eval_dir / "metrics.json").read_text() == '{"earlier": true}'
    run(config_file=EVALUATE, overwrite=True, saliency_images=2, **common)
    report = json.loads((eval_dir / "metrics.json").read_text())
    assert report["n"] == 6 and "earlier" not in report
    assert len(list((eval_dir / "saliency").glob("*.png"))) == 4  # 2 most + 2 least confident, earlier ones gone


def test_inference_writes_one_row_per_image(pretrained, skin_data, tmp_path):
    out = tmp_path / "inference"
    run(config_file=INFERENCE, input_dir=str(skin_data / TEST_FOLDER), output_dir=str(out),
        **_eval_common(pretrained, skin_data))
    rows = _rows(out / "predictions.csv")
    assert len(rows) == 6 and "label" not in rows[0]
    assert {f"prob_{name}" for name in ISIC_CLASSES} <= set(rows[0])
    for row in rows:
        assert row["prediction"] in ISIC_CLASSES
        assert sum(float(row[f"prob_{name}"]) for name in ISIC_CLASSES) == pytest.approx(1.0, abs=1e-4)


def test_saliency_of_a_folder_with_masks(pretrained, skin_data, tmp_path):
    out = tmp_path / "saliency_run"
    run(config_file=SALIENCY, input_dir=str(skin_data / TEST_FOLDER), mask_dir=str(skin_data / MASK_FOLDER),
        output_dir=str(out), **_eval_common(pretrained, skin_data))
    pictures = sorted((out / "saliency").glob("*.png"))
    assert len(pictures) == 6  # saliency_images null: every image
    summary = json.loads((out / "saliency" / "saliency.json").read_text())
    assert len(summary["images"]) == 6
    assert summary["measured"]["n"] == 6 and 0.0 <= summary["measured"]["in_mask_share_mean"] <= 1.0
    assert all(0.0 <= image["in_mask_share"] <= 1.0 for image in summary["images"])


@pytest.mark.slow  # ~12 s; the other bundles check their export commands by default
def test_the_documented_export_of_the_published_model(pretrained, skin_data, tmp_path):
    verify_net_in_out(net_id="network_def", meta_file=META, config_file=INFERENCE, bundle_root=str(pretrained),
                      p=1, n=1, any=1)
    command = documented_command("skin_lesion_classification.md", "python -m monai.bundle ckpt_export")
    result = run_in_repo_layout(command, tmp_path / "checkout", "skin_lesion_classification", pretrained / "models")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    scripted = torch.jit.load(str(pretrained / "models" / "model.ts"))
    assert scripted(torch.rand(2, 3, 32, 32)).shape == (2, 3)


# -------------------------------------------------------------------------------------------------- multi-label


def _multi_label_dataset(skin_data, folder):
    """The demo's 24 images in one folder with a hand-made 3-label CSV; every third row sets two labels."""
    images = folder / "images"
    images.mkdir(parents=True)
    paths = sorted(p for p in skin_data.glob("ISIC-2017_*_Data*/*.jpg"))
    lines = ["id,label_a,label_b,label_c"]
    for i, path in enumerate(paths):
        shutil.copy(path, images / path.name)
        row = [int(i % 3 == 0), int(i % 3 == 1), int(i % 3 == 2 or i % 6 == 0)]
        lines.append(f"{path.stem},{row[0]},{row[1]},{row[2]}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_multi_label_csv_finetune_evaluate_inference(skin_data, tmp_path):
    data = _multi_label_dataset(skin_data, tmp_path / "if_data")
    root = tmp_path / "bundle"
    layout = {"layout": "csv", "labels_csv": str(data / "labels.csv"), "image_dir": str(data / "images")}
    run(config_file=FINETUNE, pretrained_encoder="none", **_common(root, data), **layout)  # "auto": multi-label
    settings = _settings(root / "models" / "finetune_model.pt")
    assert settings["multi_label"] is True and settings["class_names"] == ["label_a", "label_b", "label_c"]
    assert len(settings["thresholds"]) == 3 and all(0.0 <= t <= 1.0 for t in settings["thresholds"])
    assert "validation" in settings["thresholds_source"]
    checkpoint = torch.load(root / "models" / "finetune" / "checkpoint_epoch=1.pt", weights_only=True)
    events = EventAccumulator(str(root / "runs" / "finetune"))
    events.Reload()
    f1 = [e.value for e in events.Scalars("val_macro_f1")]
    assert checkpoint["best_model"]["best_metric"] == pytest.approx(max(f1))  # selected on macro F1

    run(config_file=EVALUATE, **_eval_common(root, data), **layout)
    report = json.loads((root / "eval" / "metrics.json").read_text())
    assert report["thresholds"] == pytest.approx(settings["thresholds"]) and "validation" in report["thresholds_source"]
    assert set(report["per_label"]) == {"label_a", "label_b", "label_c"}
    assert {"f1", "precision", "recall"} <= set(report["per_label"]["label_a"]) and "macro_f1" in report
    assert report["n"] == 5  # round(0.2 * 24) test images of the 24

    out = tmp_path / "inference"
    run(config_file=INFERENCE, input_dir=str(data / "images"), output_dir=str(out), **_eval_common(root, data))
    rows = _rows(out / "predictions.csv")
    assert len(rows) == 24
    thresholds = settings["thresholds"]
    for row in rows:
        for name, t in zip(["label_a", "label_b", "label_c"], thresholds):
            assert int(float(row[f"pred_{name}"])) == int(float(row[f"prob_{name}"]) >= t)

    # the overlays record thresholds too (the study's supervised baseline is evaluated with them)
    run(config_file=_with("supervised"), **_common(root, data), **layout)
    supervised = _settings(root / "models" / "supervised_model.pt")
    assert len(supervised["thresholds"]) == 3 and "validation" in supervised["thresholds_source"]

    _raises(_with("few_shot"), ["`labeled_per_class`", "needs single-label data", "--labeled_fraction"], shots_per_class=1,
            **_common(tmp_path / "other", data), **layout)


def test_class_folder_layout_finetunes(skin_data, tmp_path):
    data = tmp_path / "dermofit"
    for i, path in enumerate(sorted(skin_data.glob("ISIC-2017_*_Data*/*.jpg"))):
        folder = data / ["AK", "BCC", "ML"][i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    root = tmp_path / "bundle"
    run(config_file=_with("supervised"), val_fraction=0.2, test_fraction=0.2, **_common(root, data))
    settings = _settings(root / "models" / "supervised_model.pt")
    assert settings["class_names"] == ["AK", "BCC", "ML"] and settings["multi_label"] is False


# ---------------------------------------------------------------------------------------------------- bad input


def _csv_dataset(skin_data, folder, header, rows):
    images = folder / "images"
    images.mkdir(parents=True)
    for path in sorted(skin_data.glob("ISIC-2017_*_Data*/*.jpg")):
        shutil.copy(path, images / path.name)
    (folder / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return {"layout": "csv", "labels_csv": str(folder / "labels.csv"), "image_dir": str(images)}


def _one_hot_rows(skin_data):
    ids = sorted(p.stem for p in skin_data.glob("ISIC-2017_*_Data*/*.jpg"))
    return ids, [f"{name},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}" for i, name in enumerate(ids)]


def test_a_missing_image_is_named_and_skip_missing_skips_it(skin_data, tmp_path, caplog):
    ids, rows = _one_hot_rows(skin_data)
    layout = _csv_dataset(skin_data, tmp_path / "data", "id,a,b,c", [*rows, "ISIC_9999999,1,0,0"])
    common = _common(tmp_path / "bundle", tmp_path / "data", **layout)
    _raises(_with("supervised"), ["1 of 25 image(s) listed in", "labels.csv", "ISIC_9999999", "skip_missing=True"],
            **common)
    package_logger = logging.getLogger("monai_ssl")  # configure_logging stops it propagating to caplog's root
    package_logger.addHandler(caplog.handler)
    try:
        run(config_file=_with("supervised"), skip_missing=True, **common)
    finally:
        package_logger.removeHandler(caplog.handler)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(skipped) == 1 and "1 of 25" in skipped[0] and "ISIC_9999999" in skipped[0], skipped
    assert (tmp_path / "bundle" / "models" / "supervised_model.pt").is_file()


def test_label_columns_must_match_class_names(skin_data, pretrained, tmp_path):
    _, rows = _one_hot_rows(skin_data)
    layout = _csv_dataset(skin_data, tmp_path / "data", "id,x,y,z", rows)
    # evaluate.json reads the model's class names (melanoma, ...): the CSV's columns x, y, z do not match
    _raises(EVALUATE, ["its label columns ['x', 'y', 'z'] do not match class_names=['melanoma'"], output_dir=str(tmp_path / "eval"), model_file=str(
        pretrained / "models" / "finetune_model.pt"), **_eval_common(pretrained, tmp_path / "data"), **layout)


def test_a_single_label_row_setting_several_classes_is_named(skin_data, tmp_path):
    ids, rows = _one_hot_rows(skin_data)
    rows[4] = f"{ids[4]},1,1,0"
    layout = _csv_dataset(skin_data, tmp_path / "data", "id,a,b,c", rows)
    _raises(_with("supervised"), [f"row 6 (id '{ids[4]}')", "sets 2"], multi_label=False, **_common(tmp_path / "bundle", tmp_path / "data"),
            **layout)


# ---------------------------------------------------------------------------------------------- multi-GPU, study


def test_multi_gpu_overlay_with_two_cpu_processes(skin_data, tmp_path):
    root, logs = tmp_path / "bundle", tmp_path / "logs"
    command = two_process_command([TRAIN, SKIN / "multi_gpu_train.json"], logs, "--bundle_root", str(root),
                                  "--dataset_dir", str(skin_data),
                                  *[f"--{k}={v}" for k, v in TINY_SKIN.items()])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = run_two_cpu_processes(command, env, root)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    # 12 images over 2 processes, batch 4 per process -> 1 step per epoch (drop_last)
    assert checkpoint["trainer"]["optimizer_steps"] == 1
    assert (root / "models" / "encoder.pt").is_file()
    assert len(list((root / "runs" / "pretrain").glob("events.out.tfevents.*"))) == 1  # rank 0 only
    outputs = rank_outputs(logs)
    assert "%|" in outputs[0] and "%|" not in outputs[1]


@pytest.mark.slow
def test_study_over_two_fractions(skin_data, tmp_path):
    out = tmp_path / "study"
    overrides = [arg for k, v in TINY_SKIN.items() if k != "num_epochs"
                 for arg in ("--override", f"{k}={json.dumps(v)}")]
    command = [sys.executable, "-m", "monai_ssl.study", "--bundle", str(REPO / "bundles" / "skin_lesion_classification"),
               "--dataset_dir", str(skin_data), "--fractions", "0.5,1.0", "--seeds", "0",
               "--protocols", "supervised,imagenet_transfer,byol_finetune", "--num_epochs", "1",
               "--pretrain_epochs", "1", "--output_dir", str(out), *overrides]
    result = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / "results.md").read_text()
    assert "recall" in table and "saliency_in_mask" in table
    imagenet = [line for line in table.splitlines() if "imagenet_transfer" in line]
    assert imagenet and all("skipped" in line for line in imagenet), imagenet
