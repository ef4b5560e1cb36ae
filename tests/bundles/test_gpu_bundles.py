"""Every documented bundle command for one epoch on tiny data, on a CUDA GPU.

CI has no GPU, and device mix-ups (a label on the CPU, a prediction on ``cuda``) only show on one, so
these tests are marked ``gpu``: ``python -m pytest -m gpu`` selects them, and ``tests/conftest.py``
skips them where ``torch.cuda.is_available()`` is False. The bundles pick ``cuda:0`` themselves
when there is a GPU (no device override here: the runs are what a user types), and each test checks
that the run really happened there: the files a run saves keep the device of their tensors (so
``torch.load`` without ``map_location`` gives them back on ``cuda``), and a run in this process
must have allocated GPU memory.

``MONAI_SSL_TEST_DEVICE=cpu python -m pytest -m gpu`` is a dry run of the same tests on the CPU
(the device is then forced to the CPU, and the saved tensors must be CPU tensors).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from monai.bundle import run, verify_net_in_out
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bundle_helpers import (BYOLMED2D, ISIC, OCT, REPO, SKIN, TEST_DEVICE_ENV, TINY, TINY_2D, TINY_ISIC, TINY_ISIC_EVAL,
                            TINY_SKIN, TINY_SKIN_EVAL)
from documented_commands import documented_command, run_in_repo_layout
from monai_ssl.data import make_oct_demo, make_skin_lesion_demo

pytestmark = pytest.mark.gpu

ON_CUDA = os.environ.get(TEST_DEVICE_ENV, "cuda") != "cpu"
DEVICE_TYPE = "cuda" if ON_CUDA else "cpu"
# on the GPU the configs choose the device themselves; the dry run forces the CPU even where CUDA is present
DEVICE_OVERRIDES: dict[str, Any] = {} if ON_CUDA else {"device": "$torch.device('cpu')", "amp": False}

OCT_CLASSES = ["CNV", "DME", "DRUSEN", "NORMAL"]


def _cuda_allocations() -> int:
    """How many blocks the CUDA caching allocator has handed out so far in this process."""
    return int(torch.cuda.memory_stats().get("allocation.all.allocated", 0)) if ON_CUDA else 0


def _run(config_file: str | Path | Sequence[str | Path], **overrides: Any) -> None:
    """``python -m monai.bundle run`` in this process on the test device, and check it computed there."""
    before = _cuda_allocations()
    files = str(config_file) if isinstance(config_file, (str, Path)) else [str(f) for f in config_file]
    run(config_file=files, **{k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()},
        **DEVICE_OVERRIDES)
    if ON_CUDA:
        assert _cuda_allocations() > before, f"{config_file} allocated no GPU memory: it did not run on cuda"


def _assert_saved_on_device(state: Mapping[str, Any] | Path) -> None:
    """Every tensor of a state dict (or of the state dict in a file) was saved from the test device."""
    if isinstance(state, Path):
        # no map_location: torch.load puts every tensor back on the device it was saved from
        state = torch.load(state, weights_only=True)
    devices = {v.device.type for v in state.values() if isinstance(v, torch.Tensor)}
    assert devices == {DEVICE_TYPE}, devices


def _scalar_tags(folder: Path) -> set[str]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return set(events.Tags()["scalars"])


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _torchrun(configs: Path, overrides: Mapping[str, Any]) -> subprocess.CompletedProcess:
    """The documented multi-GPU command with one process: ``torchrun --nproc_per_node=1 -m monai.bundle run``."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
        "-m", "monai.bundle", "run",
        "--config_file", f"['{configs / 'train.json'}','{configs / 'multi_gpu_train.json'}']",
        *[f"--{k}={v}" for k, v in overrides.items()],
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if not ON_CUDA:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the overlay picks its device and backend from torch.cuda.is_available()
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


# ------------------------------------------------------------------------------------------ BYOLMed2D


@pytest.fixture(scope="module")
def byolmed2d_root(tmp_path_factory, tiny_mrnet) -> Iterator[Path]:
    """``train.json``: one epoch of BYOLMed2D pre-training."""
    root = tmp_path_factory.mktemp("gpu_byolmed2d")
    _run(BYOLMED2D / "train.json", bundle_root=root, dataset_dir=tiny_mrnet, **TINY)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def byolmed2d_common(byolmed2d_root, tiny_mrnet) -> dict[str, Any]:
    return {"bundle_root": byolmed2d_root, "dataset_dir": tiny_mrnet, "num_slices": 4, "image_size": 32,
            "batch_size": 2, "num_workers": 0}


@pytest.fixture(scope="module")
def byolmed2d_finetuned(byolmed2d_common) -> Path:
    """``finetune.json``: one epoch of fine-tuning with validation (ROC AUC, accuracy) on the device."""
    _run(BYOLMED2D / "finetune.json", num_epochs=1, **byolmed2d_common)
    return byolmed2d_common["bundle_root"]


def test_byolmed2d_train(byolmed2d_root):
    checkpoint = torch.load(byolmed2d_root / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 3  # 6 exams, batch 2
    _assert_saved_on_device(checkpoint["network"])
    _assert_saved_on_device(byolmed2d_root / "models" / "encoder.pt")
    assert {"byol/loss", "byol/tau"} <= _scalar_tags(byolmed2d_root / "runs" / "pretrain")


def test_byolmed2d_finetune(byolmed2d_finetuned):
    models = byolmed2d_finetuned / "models"
    _assert_saved_on_device(models / "model.pt")  # the best-AUC model, saved by the validation run
    checkpoint = torch.load(models / "finetune" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] > 0
    _assert_saved_on_device(checkpoint["network"])
    assert {"train/loss", "val_auc", "val_accuracy"} <= _scalar_tags(byolmed2d_finetuned / "runs" / "finetune")


def test_byolmed2d_evaluate(byolmed2d_finetuned, byolmed2d_common):
    _run(BYOLMED2D / "evaluate.json", **byolmed2d_common)
    report = json.loads((byolmed2d_finetuned / "eval" / "metrics.json").read_text())
    assert report["n"] == 4 and sum(map(sum, report["confusion_matrix"])) == 4
    assert {"accuracy", "auc", "sensitivity", "specificity"} <= set(report)
    assert len(_rows(byolmed2d_finetuned / "eval" / "predictions.csv")) == 4


def test_byolmed2d_inference(byolmed2d_finetuned, byolmed2d_common, tiny_mrnet, tmp_path):
    _run(BYOLMED2D / "inference.json", input_dir=tiny_mrnet / "valid" / "sagittal", output_dir=tmp_path,
         **byolmed2d_common)
    rows = _rows(tmp_path / "predictions.csv")
    assert [r["id"] for r in rows] == ["0006", "0007", "0008", "0009"]
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)


# ------------------------------------------------------------------------------------------------ OCT


@pytest.fixture(scope="module")
def oct_data(tmp_path_factory) -> Path:
    return make_oct_demo(tmp_path_factory.mktemp("gpu_oct") / "OCT2017", n_train_per_class=6, n_test_per_class=3,
                         seed=2)


@pytest.fixture(scope="module")
def oct_root(tmp_path_factory, oct_data) -> Iterator[Path]:
    """OCT ``train.json``: one epoch of BYOL pre-training."""
    root = tmp_path_factory.mktemp("gpu_oct_bundle")
    _run(OCT / "train.json", bundle_root=root, dataset_dir=oct_data, **TINY_2D)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _oct_finetune(*overlays: str) -> list[Path]:
    return [OCT / "finetune.json", *(OCT / f"{o}.json" for o in overlays)]


@pytest.fixture(scope="module")
def oct_pseudolabeled(oct_root, oct_data) -> Path:
    """``finetune.json`` + ``pseudolabel.json``, one round: the model that evaluate.json reads by default."""
    _run(_oct_finetune("pseudolabel"), bundle_root=oct_root, dataset_dir=oct_data, num_rounds=1,
         num_pseudo_labels=4, finetune_config=OCT / "finetune.json", **TINY_2D)
    return oct_root


def test_oct_train(oct_root):
    checkpoint = torch.load(oct_root / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] >= 1
    _assert_saved_on_device(checkpoint["network"])
    _assert_saved_on_device(oct_root / "models" / "encoder.pt")
    assert {"byol/loss", "byol/tau"} <= _scalar_tags(oct_root / "runs" / "pretrain")


@pytest.mark.parametrize("bundle", ["byolmed2d", "oct"])
@pytest.mark.parametrize("views, compile", [("cpu", False), ("gpu", True)], ids=["cpu-views", "gpu-views-compiled"])
def test_pretraining_with_each_views_path(bundle, views, compile, request, tmp_path):
    """The fixtures above pre-train with the defaults (GPU views on CUDA); here the CPU views on the GPU, and the
    GPU views with ``--compile True`` (the dry run on the CPU skips compiling: it would only test the C++ toolchain)."""
    data = request.getfixturevalue("tiny_mrnet" if bundle == "byolmed2d" else "oct_data")
    configs, tiny = (BYOLMED2D, TINY) if bundle == "byolmed2d" else (OCT, TINY_2D)
    _run(configs / "train.json", bundle_root=tmp_path, dataset_dir=data, **tiny, views=views, compile=compile and ON_CUDA)
    checkpoint = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] >= 1
    _assert_saved_on_device(checkpoint["network"])
    assert not any(k.startswith("_orig_mod") for k in checkpoint["network"])  # compiling kept the keys
    _assert_saved_on_device(tmp_path / "models" / "encoder.pt")


# each pre-training method at its smallest (see tests/bundles/test_pretraining_methods.py); byolmed2d refuses CASS
METHOD_OVERRIDES: dict[str, dict[str, Any]] = {
    "byol_plus": {},
    "dino": {"methods#dino#out_features": 256, "methods#dino#local_views": 2},
    "cass": {"methods#cass#transformer": "vit_s16"},
}


@pytest.mark.parametrize("views", ["cpu", "gpu"], ids=["cpu-views", "gpu-views"])
@pytest.mark.parametrize(
    ("bundle", "method"),
    [("oct", "byol_plus"), ("oct", "dino"), ("oct", "cass"), ("byolmed2d", "byol_plus"), ("byolmed2d", "dino")],
)
def test_each_method_pretrains_on_the_device_and_its_encoder_fine_tunes(bundle, method, views, request, tmp_path):
    """``train.json --method <m>`` for an epoch with each views path (multi-crop made on the device with
    ``--views gpu``), then ``finetune.json`` on its encoder, with no other setting."""
    data = request.getfixturevalue("tiny_mrnet" if bundle == "byolmed2d" else "oct_data")
    configs, tiny = (BYOLMED2D, TINY) if bundle == "byolmed2d" else (OCT, TINY_2D)
    _run(configs / "train.json", bundle_root=tmp_path, dataset_dir=data, **tiny, views=views, method=method,
         **METHOD_OVERRIDES[method])
    checkpoint = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] >= 1 and checkpoint["run"]["settings"] == {"method": method}
    _assert_saved_on_device(checkpoint["network"])
    if method == "dino":
        _assert_saved_on_device(checkpoint["dino_loss"])  # the center lives on the training device
    _assert_saved_on_device(tmp_path / "models" / "encoder.pt")
    assert {f"{method}/loss"} <= _scalar_tags(tmp_path / "runs" / "pretrain")
    _run(configs / "finetune.json", bundle_root=tmp_path, dataset_dir=data, **tiny)
    model_file = tmp_path / "models" / ("model.pt" if bundle == "byolmed2d" else "finetune_model.pt")
    _assert_saved_on_device(model_file)


@pytest.mark.parametrize(
    ("overlays", "overrides", "run_name"),
    [
        pytest.param((), {}, "finetune", id="finetune"),
        pytest.param(("linear_probe",), {}, "linear_probe", id="linear_probe"),
        pytest.param(("few_shot",), {"shots_per_class": 2}, "few_shot", id="few_shot"),
        pytest.param(("supervised",), {}, "supervised", id="supervised"),
    ],
)
def test_oct_finetune(oct_root, oct_data, overlays, overrides, run_name):
    """``finetune.json`` alone and with each overlay: training, validation metrics, best model."""
    _run(_oct_finetune(*overlays), bundle_root=oct_root, dataset_dir=oct_data, **TINY_2D, **overrides)
    model = torch.load(oct_root / "models" / f"{run_name}_model.pt", weights_only=True)
    assert model["head.weight"].shape == (4, 16)  # the head reads the projector (head_input="projector")
    _assert_saved_on_device(model)
    checkpoint = torch.load(oct_root / "models" / run_name / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] > 0
    _assert_saved_on_device(checkpoint["network"])
    # validation ran on the device: accuracy (class_scores_and_indices) and ROC AUC (label_onehot)
    assert {"train/loss", "val_accuracy", "val_auc"} <= _scalar_tags(oct_root / "runs" / run_name)


def test_oct_pseudolabel(oct_pseudolabeled):
    out = oct_pseudolabeled / "models" / "pseudolabel"
    assert [int(r["round"]) for r in _rows(out / "rounds.csv")] == [0, 1]
    table = _rows(out / "pseudo_labels.csv")
    assert len(table) == 4 and all(r["round"] == "1" for r in table)
    _assert_saved_on_device(out / "best_model.pt")
    assert any(t.startswith("pseudo_label/") for t in _scalar_tags(oct_pseudolabeled / "runs" / "pseudolabel"))


def test_oct_evaluate(oct_pseudolabeled, oct_data):
    _run(OCT / "evaluate.json", bundle_root=oct_pseudolabeled, dataset_dir=oct_data, image_size=32, num_workers=0, hidden_dim=64, projection_dim=16)
    report = json.loads((oct_pseudolabeled / "eval" / "metrics.json").read_text())
    assert report["n"] == 12 and report["class_names"] == OCT_CLASSES
    assert {"accuracy", "macro_f1", "macro_auc", "per_class"} <= set(report)
    assert len(_rows(oct_pseudolabeled / "eval" / "predictions.csv")) == 12


def test_oct_inference(oct_pseudolabeled, oct_data, tmp_path):
    _run(OCT / "inference.json", bundle_root=oct_pseudolabeled, dataset_dir=oct_data, image_size=32, num_workers=0, hidden_dim=64, projection_dim=16,
         input_dir=oct_data / "test" / "DME", output_dir=tmp_path)
    rows = _rows(tmp_path / "predictions.csv")
    assert len(rows) == 3 and all(r["prediction"] in OCT_CLASSES for r in rows)


@pytest.mark.parametrize("bundle", ["byolmed2d", "oct"])
def test_verify_and_export_a_model_trained_on_the_device(bundle, request, tmp_path):
    """``verify_net_in_out`` (on ``cuda`` when there is one) and the guide's ``ckpt_export`` of the GPU-saved model."""
    if bundle == "byolmed2d":
        configs, name, guide = BYOLMED2D, "byolmed2d", "byolmed2d.md"
        models = request.getfixturevalue("byolmed2d_finetuned") / "models"  # the guide exports models/model.pt
        shape, outputs, heads = (1, 1, 4, 32, 32), (1, 1), []
    else:
        configs, name, guide = OCT, "oct_byol_pseudolabel", "oct_byol_pseudolabel.md"
        models = request.getfixturevalue("oct_pseudolabeled") / "models"  # ... models/model.pt (best round)
        shape, outputs, heads = (2, 1, 32, 32), (2, 4), ["--hidden_dim", "64", "--projection_dim", "16"]
    files = {"meta_file": str(configs / "metadata.json"), "config_file": str(configs / "inference.json")}
    verify_net_in_out(net_id="network_def", device=None if ON_CUDA else "cpu", **files)
    command = documented_command(guide, "python -m monai.bundle ckpt_export") + heads
    result = run_in_repo_layout(command, tmp_path / "checkout", name, models)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    scripted = torch.jit.load(str(models / "model.ts"), map_location="cpu")  # bundles/<name>/models/model.ts
    assert scripted(torch.rand(*shape)).shape == outputs


# ----------------------------------------------------------------------------------------------- ISIC

ISIC_TEST_IDS = ["ISIC_0000010", "ISIC_0000011"]  # the 2 test images of the tiny_isic demo


@pytest.fixture(scope="module")
def isic_root(tmp_path_factory, tiny_isic) -> Iterator[Path]:
    """ISIC ``train.json``: one epoch of cross-teaching (UNet and SwinUNETR, two optimizers) with validation."""
    root = tmp_path_factory.mktemp("gpu_isic")
    _run(ISIC / "train.json", bundle_root=root, dataset_dir=tiny_isic, **TINY_ISIC)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def isic_supervised(isic_root, tiny_isic) -> Path:
    """ISIC ``supervised_train.json``: one epoch of the ResNet-34 U-Net baseline, next to the cross-teaching model."""
    _run([ISIC / "train.json", ISIC / "supervised_train.json"], bundle_root=isic_root, dataset_dir=tiny_isic, **TINY_ISIC)
    return isic_root


def test_isic_train(isic_root):
    models = isic_root / "models"
    _assert_saved_on_device(models / "model.pt")  # the best-IoU pair, saved by the validation run
    checkpoint = torch.load(models / "cross_teaching" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 2  # 4 labeled images, batch 2
    _assert_saved_on_device(checkpoint["network"])
    for name in ("cnn", "transformer"):  # both optimizers stepped, their state on the device
        states = checkpoint[f"optimizer_{name}"]["state"].values()
        assert states and all(s["exp_avg"].device.type == DEVICE_TYPE for s in states)
    # training on the device (both losses of both networks) and validation there (the served network's IoU and Dice)
    assert {"train/supervised_loss/cnn", "train/supervised_loss/transformer", "train/cross_loss/cnn",
            "train/cross_loss/transformer", "train/cross_weight", "val_iou", "val_dice"} <= _scalar_tags(isic_root / "runs" / "cross_teaching")


def test_isic_supervised_train(isic_supervised):
    models = isic_supervised / "models"
    _assert_saved_on_device(models / "supervised_model.pt")
    checkpoint = torch.load(models / "supervised" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 2
    _assert_saved_on_device(checkpoint["network"])
    assert {"train/loss", "val_iou", "val_dice"} <= _scalar_tags(isic_supervised / "runs" / "supervised")


@pytest.mark.parametrize("architecture", ["cross_teaching", "supervised"])
def test_isic_evaluate(isic_supervised, tiny_isic, architecture, tmp_path):
    _run(ISIC / "evaluate.json", bundle_root=isic_supervised, dataset_dir=tiny_isic, architecture=architecture,
         output_dir=tmp_path, **TINY_ISIC_EVAL)
    rows = _rows(tmp_path / "per_image.csv")
    assert [r["id"] for r in rows] == ISIC_TEST_IDS
    assert all(0.0 <= float(r["iou"]) <= 1.0 and 0.0 <= float(r["dice"]) <= 1.0 for r in rows)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["n_images"] == 2 and report["architecture"] == architecture
    assert len(list((tmp_path / "cases").glob("*.png"))) == 4


def test_isic_inference(isic_root, tiny_isic, tmp_path):
    images = tiny_isic / "ISIC-2017_Test_v2_Data"
    _run(ISIC / "inference.json", bundle_root=isic_root, input_dir=images, output_dir=tmp_path, **TINY_ISIC_EVAL)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}_mask.png" for i in ISIC_TEST_IDS]
    for case in ISIC_TEST_IDS:
        mask = Image.open(tmp_path / f"{case}_mask.png")
        assert mask.mode == "L" and mask.size == Image.open(images / f"{case}.jpg").size
        assert set(mask.getdata()) <= {0, 255}


def test_isic_verify_and_export_a_model_trained_on_the_device(isic_root, tmp_path):
    """``verify_net_in_out`` (on ``cuda`` when there is one) and ``ckpt_export`` of the device-saved pair."""
    verify_net_in_out(net_id="network_def", device=None if ON_CUDA else "cpu", meta_file=str(ISIC / "metadata.json"),
                      config_file=str(ISIC / "inference.json"), swin_feature_size=12)
    models = isic_root / "models"
    command = documented_command("isic_cross_teaching.md", "python -m monai.bundle ckpt_export")
    command += ["--swin_feature_size", "12"]
    result = run_in_repo_layout(command, tmp_path / "checkout", "isic_cross_teaching", models)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    scripted = torch.jit.load(str(models / "model.ts"), map_location="cpu")
    assert scripted(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


# PiCIE in the ISIC bundle at its smallest: whole images at 64 px, a ResNet-18 with 16-channel pixel features
TINY_PICIE = {"working_size": 64, "patch_size": 32, "picie_backbone": "resnet18", "feature_size": 16, "batch_size": 4,
              "num_workers": 0}


@pytest.fixture(scope="module")
def isic_picie(tmp_path_factory, tiny_isic) -> Iterator[Path]:
    """ISIC ``train.json`` + ``picie.json``: one epoch of PiCIE (clustering on the device, then training), published."""
    root = tmp_path_factory.mktemp("gpu_picie")
    _run([ISIC / "train.json", ISIC / "picie.json"], bundle_root=root, dataset_dir=tiny_isic, num_epochs=1, publish=True,
         **TINY_PICIE)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_isic_picie_train(isic_picie):
    models = isic_picie / "models"
    _assert_saved_on_device(models / "picie_model.pt")  # weights and the centroids of the final clustering
    checkpoint = torch.load(models / "picie" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 2  # 8 images, batch 4
    _assert_saved_on_device(checkpoint["network"])
    assert all(s["momentum_buffer"].device.type == DEVICE_TYPE for s in checkpoint["optimizer"]["state"].values())
    assert {"train/within_loss", "train/cross_loss", "clusters/share/view1/cluster0",
            "clusters/largest_share"} <= _scalar_tags(isic_picie / "runs" / "picie")


def test_isic_picie_evaluate_and_infer(isic_picie, tiny_isic, tmp_path):
    """The naming pass, the report and inference with the cluster map on the device (the served model is PiCIE)."""
    _run(ISIC / "evaluate.json", bundle_root=isic_picie, dataset_dir=tiny_isic, output_dir=tmp_path / "eval", num_workers=0)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["architecture"] == "picie" and sorted(report["cluster_map"]) == [0, 1] and report["n_images"] == 2
    images = tiny_isic / "ISIC-2017_Test_v2_Data"
    _run(ISIC / "inference.json", bundle_root=isic_picie, input_dir=images, output_dir=tmp_path / "masks", num_workers=0)
    for case in ISIC_TEST_IDS:
        mask = Image.open(tmp_path / "masks" / f"{case}_mask.png")
        assert mask.size == Image.open(images / f"{case}.jpg").size and set(mask.getdata()) <= {0, 255}


def test_isic_multi_gpu_train_with_torchrun(tiny_isic, tmp_path):
    """ISIC ``torchrun --nproc_per_node=1 ... "['train.json','multi_gpu_train.json']"``: DDP around each network."""
    result = _torchrun(ISIC, {"bundle_root": tmp_path, "dataset_dir": tiny_isic, **TINY_ISIC})
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "models" / "cross_teaching" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 2
    _assert_saved_on_device(checkpoint["network"])
    _assert_saved_on_device(tmp_path / "models" / "model.pt")
    assert len(list((tmp_path / "runs" / "cross_teaching").glob("events.out.tfevents.*"))) == 1


# ------------------------------------------------------------------------------------------ multi-GPU


@pytest.mark.parametrize("bundle", ["byolmed2d", "oct"])
def test_multi_gpu_train_with_torchrun(bundle, request, tmp_path):
    """``torchrun --nproc_per_node=1 -m monai.bundle run --config_file "['train.json','multi_gpu_train.json']"``."""
    if bundle == "byolmed2d":
        configs, data, tiny = BYOLMED2D, request.getfixturevalue("tiny_mrnet"), TINY
    else:
        configs, data, tiny = OCT, request.getfixturevalue("oct_data"), TINY_2D
    result = _torchrun(configs, {"bundle_root": tmp_path, "dataset_dir": data, **tiny})
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] >= 1
    _assert_saved_on_device(checkpoint["network"])
    _assert_saved_on_device(tmp_path / "models" / "encoder.pt")
    assert len(list((tmp_path / "runs" / "pretrain").glob("events.out.tfevents.*"))) == 1


# ----------------------------------------------------------------------------------------- skin lesions

SKIN_CLASSES = ["melanoma", "seborrheic_keratosis", "nevus"]


@pytest.fixture(scope="module")
def skin_data(tmp_path_factory) -> Path:
    """12/6/6 train/val/test dermoscopy images of 48 x 64 pixels with lesion masks."""
    return make_skin_lesion_demo(tmp_path_factory.mktemp("gpu_skin") / "ISIC2017", n_train_per_class=4,
                                 n_val_per_class=2, n_test_per_class=2, size=(48, 64))


@pytest.fixture(scope="module")
def skin_root(tmp_path_factory, skin_data) -> Iterator[Path]:
    """Skin-lesion ``train.json`` (BYOL) then ``finetune.json`` of its encoder, one epoch each."""
    root = tmp_path_factory.mktemp("gpu_skin_bundle")
    _run(SKIN / "train.json", bundle_root=root, dataset_dir=skin_data, **TINY_SKIN)
    _run(SKIN / "finetune.json", bundle_root=root, dataset_dir=skin_data, **TINY_SKIN)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_skin_lesion_train_and_finetune(skin_root):
    models = skin_root / "models"
    checkpoint = torch.load(models / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 3  # 12 images, batch 4
    _assert_saved_on_device(checkpoint["network"])
    _assert_saved_on_device(models / "encoder.pt")
    _assert_saved_on_device(models / "model.pt")  # the best-macro-recall model, saved by the validation run
    checkpoint = torch.load(models / "finetune" / "checkpoint_epoch=1.pt", weights_only=True)
    _assert_saved_on_device(checkpoint["network"])
    assert {"train/loss", "val_macro_recall"} <= _scalar_tags(skin_root / "runs" / "finetune")


@pytest.mark.parametrize("overlay", ["supervised", "linear_probe", "few_shot"])
def test_skin_lesion_overlays(skin_root, skin_data, overlay, tmp_path):
    _run([SKIN / "finetune.json", SKIN / f"{overlay}.json"], bundle_root=tmp_path, dataset_dir=skin_data,
         pretrained_encoder=skin_root / "models" / "encoder.pt", shots_per_class=2, class_balance="sampler",
         **TINY_SKIN)
    _assert_saved_on_device(tmp_path / "models" / f"{overlay}_model.pt")


def test_skin_lesion_multi_label_thresholds_on_the_device(skin_data, tmp_path):
    """A 3-label CSV: macro F1 on the device's labels, thresholds chosen on validation, read back by evaluation."""
    images = tmp_path / "images"
    images.mkdir()
    lines = ["id,a,b,c"]
    for i, path in enumerate(sorted(skin_data.glob("ISIC-2017_*_Data*/*.jpg"))):
        shutil.copy(path, images / path.name)
        lines.append(f"{path.stem},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2 or i % 6 == 0)}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    layout = {"layout": "csv", "labels_csv": tmp_path / "labels.csv", "image_dir": images}
    root = tmp_path / "bundle"
    _run(SKIN / "finetune.json", bundle_root=root, dataset_dir=tmp_path, pretrained_encoder="none", **TINY_SKIN,
         **layout)
    settings = json.loads((root / "models" / "finetune_model.settings.json").read_text())
    assert settings["multi_label"] is True and len(settings["thresholds"]) == 3
    assert "val_macro_f1" in _scalar_tags(root / "runs" / "finetune")
    _run(SKIN / "evaluate.json", bundle_root=root, dataset_dir=tmp_path, **TINY_SKIN_EVAL, **layout)
    report = json.loads((root / "eval" / "metrics.json").read_text())
    assert report["thresholds"] == pytest.approx(settings["thresholds"]) and "macro_f1" in report


def test_skin_lesion_evaluate_with_saliency(skin_root, skin_data, tmp_path):
    _run(SKIN / "evaluate.json", bundle_root=skin_root, dataset_dir=skin_data, output_dir=tmp_path, **TINY_SKIN_EVAL)
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["n"] == 6 and report["class_names"] == SKIN_CLASSES and "macro_recall" in report
    assert report["saliency"]["n"] == 6 and 0.0 <= report["saliency"]["in_mask_share_mean"] <= 1.0
    assert len(list((tmp_path / "saliency").glob("*.png"))) == 6  # 4 most + the 2 least confident left, each once


def test_skin_lesion_inference_and_saliency_of_a_folder(skin_root, skin_data, tmp_path):
    images = skin_data / "ISIC-2017_Test_v2_Data"
    _run(SKIN / "inference.json", bundle_root=skin_root, input_dir=images, output_dir=tmp_path / "inference",
         **TINY_SKIN_EVAL)
    rows = _rows(tmp_path / "inference" / "predictions.csv")
    assert len(rows) == 6 and all(r["prediction"] in SKIN_CLASSES for r in rows)
    _run(SKIN / "saliency.json", bundle_root=skin_root, input_dir=images,
         mask_dir=skin_data / "ISIC-2017_Test_v2_Part1_GroundTruth", output_dir=tmp_path / "maps", **TINY_SKIN_EVAL)
    summary = json.loads((tmp_path / "maps" / "saliency" / "saliency.json").read_text())
    assert len(summary["images"]) == 6 and summary["measured"]["n"] == 6


def test_skin_lesion_multi_gpu_train_with_torchrun(skin_data, tmp_path):
    result = _torchrun(SKIN, {"bundle_root": tmp_path, "dataset_dir": skin_data, **TINY_SKIN})
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "models" / "pretrain" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["trainer"]["optimizer_steps"] == 3  # one process: 12 images, batch 4
    _assert_saved_on_device(checkpoint["network"])
    _assert_saved_on_device(tmp_path / "models" / "encoder.pt")


def test_skin_lesion_verify_and_export_a_model_trained_on_the_device(skin_root, tmp_path):
    """``verify_net_in_out`` and the guide's ``ckpt_export`` of the device-saved ``models/model.pt``."""
    files = {"meta_file": str(SKIN / "metadata.json"), "config_file": str(SKIN / "inference.json")}
    verify_net_in_out(net_id="network_def", device=None if ON_CUDA else "cpu", bundle_root=str(skin_root), **files)
    command = documented_command("skin_lesion_classification.md", "python -m monai.bundle ckpt_export")
    result = run_in_repo_layout(command, tmp_path / "checkout", "skin_lesion_classification", skin_root / "models")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    scripted = torch.jit.load(str(skin_root / "models" / "model.ts"), map_location="cpu")
    assert scripted(torch.rand(2, 3, 32, 32)).shape == (2, 3)
