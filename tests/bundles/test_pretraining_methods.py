"""``--method byol_plus|dino|cass`` in both 2D bundles: each pre-trains for an epoch on the demo and its encoder fine-tunes."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from monai.bundle import run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bundle_helpers import BYOLMED2D, OCT, REPO, TINY, TINY_2D, error_messages, run_two_cpu_processes, two_process_command
from monai_ssl.data import make_mrnet_demo, make_oct_demo

TRAIN = str(OCT / "train.json")
FINETUNE = str(OCT / "finetune.json")
EVALUATE = str(OCT / "evaluate.json")

# each method at its smallest: a DINO head of 256 outputs and 2 local crops, CASS with ViT-S/16 (4 patches at 32 px)
METHOD_OVERRIDES = {
    "byol_plus": {},
    "dino": {"methods#dino#out_features": 256, "methods#dino#local_views": 2},
    "cass": {"methods#cass#transformer": "vit_s16"},
}
# what each method's checkpoint holds besides the network and the trainer state
CHECKPOINT_ENTRIES = {
    "byol_plus": {"optimizer"},
    "dino": {"optimizer", "dino_loss"},
    "cass": {"optimizer_cnn", "optimizer_transformer"},
}


@pytest.fixture(scope="module")
def oct_data(tmp_path_factory):
    return make_oct_demo(tmp_path_factory.mktemp("oct") / "OCT2017", n_train_per_class=6, n_test_per_class=3, seed=2)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, oct_data):
    """method -> bundle root of a one-epoch pre-training with that method."""
    roots = {}
    for method, overrides in METHOD_OVERRIDES.items():
        root = tmp_path_factory.mktemp(f"oct_{method}")
        run(config_file=TRAIN, bundle_root=str(root), dataset_dir=str(oct_data), method=method, **TINY_2D, **overrides)
        roots[method] = root
    yield roots
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)  # a CASS run alone writes ~1 GB of checkpoints


@pytest.mark.parametrize("method", list(METHOD_OVERRIDES))
def test_each_method_pretrains_and_says_what_it_exported(pretrained, method):
    models = pretrained[method] / "models"
    checkpoint = torch.load(models / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert CHECKPOINT_ENTRIES[method] | {"network", "trainer", "run"} <= set(checkpoint)
    assert checkpoint["run"]["settings"] == {"method": method}
    assert checkpoint["trainer"]["optimizer_steps"] == 2  # 20 training images, batch 8, last batch dropped
    settings = json.loads((models / "encoder.settings.json").read_text())
    assert settings["method"] == method and settings["encoder"] == "resnet18" and settings["in_channels"] == 1
    assert settings["projector"] == (method == "byol_plus")
    assert (models / "projector.pt").is_file() == (method == "byol_plus")
    encoder = torch.load(models / "encoder.pt", weights_only=True)
    assert encoder["conv1.weight"].shape == (64, 1, 7, 7)  # the standard ResNet-18 stem, one input channel
    events = EventAccumulator(str(pretrained[method] / "runs" / "pretrain"))
    events.Reload()
    expected = {"byol_plus": {"byol_plus/loss", "byol_plus/tau"}, "dino": {"dino/loss", "dino/teacher_entropy", "dino/kl"},
                "cass": {"cass/loss", "cass/cosine"}}[method]
    assert expected <= set(events.Tags()["scalars"])


def test_dino_exports_its_teacher_encoder(pretrained):
    checkpoint = torch.load(pretrained["dino"] / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    encoder = torch.load(pretrained["dino"] / "models" / "encoder.pt", weights_only=True)
    teacher = {k[len("teacher_encoder."):]: v for k, v in checkpoint["network"].items() if k.startswith("teacher_encoder.")}
    assert set(teacher) == set(encoder)
    torch.testing.assert_close(encoder["conv1.weight"], teacher["conv1.weight"])


@pytest.mark.parametrize("method", list(METHOD_OVERRIDES))
def test_each_method_encoder_fine_tunes_and_evaluates_with_no_other_setting(pretrained, oct_data, method, tmp_path):
    root = pretrained[method]
    common = {"bundle_root": str(root), "dataset_dir": str(oct_data), "image_size": 32, "num_workers": 0}
    run(config_file=FINETUNE, **TINY_2D, bundle_root=str(root), dataset_dir=str(oct_data))
    model_file = root / "models" / "finetune_model.pt"
    settings = json.loads(model_file.with_suffix(".settings.json").read_text())
    assert settings["encoder"] == "resnet18"
    assert settings["head_input"] == ("projector" if method == "byol_plus" else "encoder")
    model = torch.load(model_file, weights_only=True)
    pretrained_encoder = torch.load(root / "models" / "encoder.pt", weights_only=True)
    assert {f"encoder.{k}" for k in pretrained_encoder} <= set(model)
    run(config_file=EVALUATE, model_file=str(model_file), output_dir=str(tmp_path / "eval"),
        **{k: v for k, v in common.items() if k != "image_size"})
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_fine_tuning_another_architecture_names_both(pretrained, oct_data):
    with pytest.raises(Exception) as info:
        run(config_file=FINETUNE, **TINY_2D, bundle_root=str(pretrained["dino"]), dataset_dir=str(oct_data), encoder="resnet50")
    assert any("pre-trained with --method dino" in m and "holds a resnet18 encoder" in m and "encoder='resnet50'" in m
               for m in error_messages(info.value))


def test_a_projector_head_on_an_encoder_without_projector_is_refused(pretrained, oct_data):
    with pytest.raises(Exception) as info:
        run(config_file=FINETUNE, **TINY_2D, bundle_root=str(pretrained["cass"]), dataset_dir=str(oct_data),
            head_input="projector")
    assert any("--method cass exports no projector" in m for m in error_messages(info.value))


@pytest.mark.parametrize("method", ["dino", "cass"])
def test_a_run_resumes_with_its_method_state(oct_data, tmp_path, method):
    common = {"bundle_root": str(tmp_path), "dataset_dir": str(oct_data), "method": method, **TINY_2D,
              **METHOD_OVERRIDES[method]}
    run(config_file=TRAIN, **common)
    first = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    run(config_file=TRAIN, **{**common, "num_epochs": 2, "resume": True})
    second = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=2.pt", weights_only=True)
    assert second["trainer"]["optimizer_steps"] == 4  # the schedules went on from step 2
    assert second["run"]["run_id"] == first["run"]["run_id"]  # the same run, continued
    if method == "dino":
        assert not torch.equal(second["dino_loss"]["center"], first["dino_loss"]["center"])
    with pytest.raises(Exception) as info:
        run(config_file=TRAIN, **{**common, "num_epochs": 3, "resume": True, "method": "byol"})
    assert any(f"it was started with method='{method}'; this run asks for method='byol'" in m
               for m in error_messages(info.value))


def test_an_unknown_method_names_the_choices(oct_data, tmp_path):
    with pytest.raises(Exception) as info:
        run(config_file=TRAIN, bundle_root=str(tmp_path), dataset_dir=str(oct_data), method="simclr", **TINY_2D)
    assert any("`method` must be one of ('byol', 'byol_plus', 'dino', 'cass'), got 'simclr'" in m
               for m in error_messages(info.value))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"method": "dino", "encoder": "vit_s16", "image_size": 40}, "every crop side must be a multiple of 16: image_size=40"),
     ({"method": "dino", "encoder": "vit_s16", "methods#dino#local_size": 24}, "methods#dino#local_size (now 24)=24"),
     ({"method": "cass", "encoder": "vit_b16"}, "CASS trains a CNN with a Transformer: `encoder` must be a 2D CNN")],
)
def test_a_method_backbone_mismatch_names_the_setting(oct_data, tmp_path, overrides, message):
    with pytest.raises(Exception) as info:
        run(config_file=TRAIN, **{"bundle_root": str(tmp_path), "dataset_dir": str(oct_data), **TINY_2D, **overrides})
    assert any(message in m for m in error_messages(info.value))


@pytest.fixture(scope="module")
def mrnet(tmp_path_factory):
    return make_mrnet_demo(tmp_path_factory.mktemp("mrnet") / "MRNet-v1.0", n_train=8, n_valid=4, seed=1)


def test_byolmed2d_pretrains_with_dino_and_its_encoder_fine_tunes(mrnet, tmp_path):
    common = {"bundle_root": str(tmp_path), "dataset_dir": str(mrnet), **TINY}
    run(config_file=str(BYOLMED2D / "train.json"), method="dino", **{"methods#dino#out_features": 128,
                                                                   "methods#dino#local_views": 2}, **common)
    settings = json.loads((tmp_path / "models" / "encoder.settings.json").read_text())
    assert settings["method"] == "dino" and settings["encoder"] == "slice_resnet18"
    run(config_file=str(BYOLMED2D / "finetune.json"), **common)
    assert (tmp_path / "models" / "model.pt").is_file()


def test_byolmed2d_refuses_cass_with_its_reason(mrnet, tmp_path):
    with pytest.raises(Exception) as info:
        run(config_file=str(BYOLMED2D / "train.json"), method="cass", bundle_root=str(tmp_path), dataset_dir=str(mrnet), **TINY)
    assert any("--method cass is not available here: CASS trains a 2D CNN together with a 2D Transformer" in m
               and "Choose one of ['byol', 'byol_plus', 'dino']" in m for m in error_messages(info.value))


@pytest.mark.parametrize("method", ["dino", "cass"])
def test_multi_gpu_overlay_runs_each_method_with_two_cpu_processes(oct_data, tmp_path, method):
    """``multi_gpu_train.json`` (DDP, one process per device) with DINO (its center averaged over the processes)
    and CASS (two optimizers over one DDP module), as two CPU processes."""
    root, logs = tmp_path / "bundle", tmp_path / "logs"
    options = {**TINY_2D, "method": method, **METHOD_OVERRIDES[method]}
    command = two_process_command([TRAIN, OCT / "multi_gpu_train.json"], logs, "--bundle_root", str(root),
                                  "--dataset_dir", str(oct_data), *[f"--{k}={v}" for k, v in options.items()])
    result = run_two_cpu_processes(command, {**os.environ, "PYTHONPATH": str(REPO)}, root)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 1  # 20 images over 2 processes, batch 8 each
    assert checkpoint["run"]["settings"] == {"method": method}
    assert json.loads((root / "models" / "encoder.settings.json").read_text())["method"] == method


def test_cass_exports_both_networks_and_its_transformer_fine_tunes_too(pretrained, oct_data):
    models = pretrained["cass"] / "models"
    transformer = models / "encoder_transformer.pt"
    settings = json.loads(transformer.with_suffix(".settings.json").read_text())
    assert settings["method"] == "cass" and settings["encoder"] == "vit_s16" and settings["image_size"] == 32
    assert "vit.patch_embedding.position_embeddings" in torch.load(transformer, weights_only=True)
    run(config_file=FINETUNE, **TINY_2D, bundle_root=str(pretrained["cass"]), dataset_dir=str(oct_data),
        pretrained_encoder=str(transformer), run_name="transformer_finetune")
    model_settings = json.loads((models / "transformer_finetune_model.settings.json").read_text())
    assert model_settings["encoder"] == "vit_s16" and model_settings["head_input"] == "encoder"
