"""End to end: the ISIC cross-teaching bundle on a tiny synthetic ISIC 2017 demo, as a user runs it.

One cross-teaching training (2 epochs) and one supervised baseline (1 epoch) are shared by the
evaluation, inference and export tests; the bad-input tests stop before training.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, run, verify_net_in_out
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bundle_helpers import ISIC, REPO, TINY_ISIC, TINY_ISIC_EVAL, error_messages, rank_outputs, run_two_cpu_processes, two_process_command
from documented_commands import documented_command, run_in_repo_layout
from monai_ssl.losses import cross_teaching_weight

TRAIN = str(ISIC / "train.json")
SUPERVISED = [str(ISIC / "train.json"), str(ISIC / "supervised_train.json")]  # an overlay of train.json
EVALUATE = str(ISIC / "evaluate.json")
INFERENCE = str(ISIC / "inference.json")
META = str(ISIC / "metadata.json")

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")  # before the module's trainings

TEST_IDS = ["ISIC_0000010", "ISIC_0000011"]  # the demo numbers its images through train (8), val (2), test (2)
CHECKPOINT_ENTRIES = {"network", "optimizer_cnn", "optimizer_transformer", "lr_scheduler_cnn",
                      "lr_scheduler_transformer", "best_model", "run", "trainer"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _parsed(config: str | list[str], keys: list[str], **overrides) -> list:
    """``keys`` of ``config`` parsed with ``overrides``, as ``monai.bundle run`` would see them."""
    parser = ConfigParser()
    parser.read_config(config)
    for key, value in overrides.items():
        parser[key] = value
    return [parser.get_parsed_content(key) for key in keys]


def _mask(path: Path) -> np.ndarray:
    """A 0/255 mask PNG as a boolean ``(H, W)`` array."""
    return np.asarray(Image.open(path)) > 127


def _iou(truth: np.ndarray, pred: np.ndarray) -> float:
    union = np.logical_or(truth, pred).sum()
    return 1.0 if union == 0 else float(np.logical_and(truth, pred).sum() / union)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_isic) -> Iterator[Path]:
    """``train.json``: 2 epochs of cross-teaching; 8 training images, 4 labeled (fraction 0.5), batch 2 + 2."""
    root = tmp_path_factory.mktemp("isic_bundle")
    run(config_file=TRAIN, bundle_root=str(root), dataset_dir=str(tiny_isic), **{**TINY_ISIC, "num_epochs": 2})
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_supervised_overlay_run_alone_names_its_base_config(tmp_path):
    """``supervised_train.json`` overlays ``train.json``; run alone it says so and gives the two-file command."""
    with pytest.raises(Exception) as info:
        run(config_file=SUPERVISED[1], bundle_root=str(tmp_path))
    messages = error_messages(info.value)
    expected = f"--config_file \"['{tmp_path}/configs/train.json','{tmp_path}/configs/supervised_train.json']\""
    assert any("supervised_train.json is an overlay of train.json" in m and expected in m for m in messages), messages


def test_the_supervised_overlay_replaces_only_what_differs():
    """The baseline keeps the shared settings, splits and validation of ``train.json`` and swaps the method's parts."""
    base = json.loads((ISIC / "train.json").read_text())
    overlay = json.loads((ISIC / "supervised_train.json").read_text())
    assert len((ISIC / "supervised_train.json").read_text().splitlines()) <= 40
    assert set(overlay) <= set(base) | {"optimizer", "lr_scheduler"}, set(overlay) - set(base)
    assert overlay["trainer"]["_target_"] == "SupervisedTrainer" and overlay["architecture"] == "supervised"
    for shared in ("splits", "labeled", "validate", "train", "network_def", "working_size", "patch_size"):
        assert shared not in overlay


@pytest.fixture(scope="module")
def supervised(trained, tiny_isic) -> Path:
    """``supervised_train.json``: 1 epoch of the ResNet-34 U-Net baseline, into the same bundle root."""
    run(config_file=SUPERVISED, bundle_root=str(trained), dataset_dir=str(tiny_isic), **TINY_ISIC)
    return trained


@pytest.fixture(scope="module")
def reports(supervised, tiny_isic) -> dict[str, Path]:
    """``evaluate.json`` on the test split for both architectures, each into its own folder."""
    folders = {}
    for architecture in ("cross_teaching", "supervised"):
        folders[architecture] = supervised / "eval" / architecture
        run(config_file=EVALUATE, bundle_root=str(supervised), dataset_dir=str(tiny_isic), architecture=architecture,
            output_dir=str(folders[architecture]), **TINY_ISIC_EVAL)
    return folders


def test_cross_teaching_writes_model_checkpoint_and_tensorboard(trained):
    model = torch.load(trained / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[0] for k in model} == {"members"}
    assert {k.split(".")[1] for k in model} == {"cnn", "transformer"}

    folder = trained / "models" / "cross_teaching"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_epoch=2.pt"]  # n_saved=1
    checkpoint = torch.load(folder / "checkpoint_epoch=2.pt", weights_only=True)
    assert set(checkpoint) == CHECKPOINT_ENTRIES
    # 4 labeled images, batch 2 -> 2 steps per epoch, 2 epochs; both optimizers stepped every time
    assert checkpoint["trainer"]["iteration"] == 4 and checkpoint["trainer"]["optimizer_steps"] == 4
    for name in ("cnn", "transformer"):
        steps = {float(state["step"]) for state in checkpoint[f"optimizer_{name}"]["state"].values()}
        assert steps == {4.0}, (name, steps)
        assert checkpoint[f"lr_scheduler_{name}"]["T_max"] == 2
    record = checkpoint["run"]
    assert record["config"] == "isic_cross_teaching/cross_teaching" and record["num_epochs"] == 2
    assert record["num_items"] == {"labeled": 4, "unlabeled": 4, "validation": 2}
    assert set(model) == set(checkpoint["network"])

    events = EventAccumulator(str(trained / "runs" / "cross_teaching"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    per_step = {f"train/{kind}/{name}" for kind in ("supervised_loss", "cross_loss") for name in ("cnn", "transformer")}
    per_epoch = {"val_iou", "val_dice"}  # of the inference network (the CNN), as evaluate.json scores it
    assert per_step | {"train/cross_weight"} | per_epoch <= scalars
    weights = [e.value for e in events.Scalars("train/cross_weight")]
    assert [e.step for e in events.Scalars("train/cross_weight")] == [1, 2, 3, 4]
    assert all(a < b for a, b in zip(weights, weights[1:])) and 0.0 < weights[0] and weights[-1] <= 0.1
    # the sigmoid ramp over the whole run's 4 optimizer steps, lambda taken before each step
    assert weights == pytest.approx([cross_teaching_weight(step, 4, 0.1, 1.0) for step in range(4)], rel=1e-5)
    for tag in per_step:
        values = [e.value for e in events.Scalars(tag)]
        assert len(values) == 4 and all(math.isfinite(v) and v >= 0.0 for v in values), (tag, values)
    for tag in (t for t in per_step if "cross_loss" in t):  # a Dice loss
        assert all(e.value <= 1.0 for e in events.Scalars(tag))
    for tag in per_epoch:
        values = [e.value for e in events.Scalars(tag)]
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values), (tag, values)
    val_iou = [e.value for e in events.Scalars("val_iou")]
    # model.pt is the network of the best validation IoU
    best = checkpoint["best_model"]
    assert best["best_metric"] == pytest.approx(max(val_iou))
    assert best["best_metric_epoch"] == 1 + val_iou.index(max(val_iou))
    if best["best_metric_epoch"] == 2:  # the last epoch: the checkpoint holds the same weights
        assert all(torch.equal(model[k], checkpoint["network"][k]) for k in model)
    assert set(events.Tags()["images"]) == {"validation/overlays"}
    for tag in events.Tags()["images"]:
        assert [e.step for e in events.Images(tag)] == [1, 2]


def test_validation_selects_the_model_on_what_evaluate_reports(trained, tiny_isic, tmp_path):
    """The validation inside training runs evaluate.json's evaluation (preprocessing, network output, sliding
    window, inverted resize, per-image scores at the original size): the best validation IoU, which chose
    models/model.pt, is the mean IoU that evaluate.json reports for that model on the validation split."""
    best = torch.load(trained / "models" / "cross_teaching" / "checkpoint_epoch=2.pt", weights_only=True)["best_model"]
    run(config_file=EVALUATE, bundle_root=str(trained), dataset_dir=str(tiny_isic), split="val",
        evaluate_on_selection_split=True, output_dir=str(tmp_path / "eval"), num_workers=0)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["n_images"] == 2 and report["split"] == "val"
    assert report["mean_iou"] == pytest.approx(best["best_metric"], rel=1e-6)


def test_supervised_baseline_trains_on_the_same_labeled_images(supervised, tiny_isic):
    model = torch.load(supervised / "models" / "supervised_model.pt", weights_only=True)
    assert model and not any(k.startswith("members.") for k in model)
    baseline = torch.load(supervised / "models" / "supervised" / "checkpoint_epoch=1.pt", weights_only=True)
    cross = torch.load(supervised / "models" / "cross_teaching" / "checkpoint_epoch=2.pt", weights_only=True)
    assert baseline["trainer"]["iteration"] == 2  # 4 labeled images, batch 2 (MONAI's SupervisedTrainer)
    assert baseline["run"]["num_items"] == {"labeled": 4, "validation": 2}
    assert baseline["run"]["fingerprints"]["labeled"] == cross["run"]["fingerprints"]["labeled"]
    assert baseline["run"]["fingerprints"]["validation"] == cross["run"]["fingerprints"]["validation"]

    settings = {"dataset_dir": str(tiny_isic), "patch_size": 64}
    (labeled_ct,) = _parsed(TRAIN, ["labeled"], **settings)
    (labeled_sup,) = _parsed(SUPERVISED, ["labeled"], **settings)
    assert [x["id"] for x in labeled_ct] == [x["id"] for x in labeled_sup] and len(labeled_ct) == 4


@pytest.mark.parametrize("architecture", ["cross_teaching", "supervised"])
def test_evaluate_writes_a_per_image_report(reports, architecture, tiny_isic):
    folder = reports[architecture]
    rows = _rows(folder / "per_image.csv")
    assert [r["id"] for r in rows] == TEST_IDS
    assert [Path(r["image_file"]).name for r in rows] == [f"{i}.jpg" for i in TEST_IDS]
    ious, dices = [float(r["iou"]) for r in rows], [float(r["dice"]) for r in rows]
    assert all(0.0 <= v <= 1.0 for v in ious + dices)
    assert all(d >= i for i, d in zip(ious, dices))  # Dice = 2 IoU / (1 + IoU)
    assert all(0.0 < float(r["truth_fraction"]) < 1.0 for r in rows)  # every demo image shows a lesion

    report = json.loads((folder / "metrics.json").read_text())
    assert report["n_images"] == 2 and report["architecture"] == architecture and report["split"] == "test"
    assert report["mean_iou"] == pytest.approx(np.mean(ious)) and report["mean_dice"] == pytest.approx(np.mean(dices))
    for metric in ("iou", "dice"):
        low, high = report[f"{metric}_ci95"]
        assert low <= report[f"mean_{metric}"] <= high
    model_name = "model.pt" if architecture == "cross_teaching" else "supervised_model.pt"
    assert Path(report["model_file"]).name == model_name
    expected = {f"{kind}_{rank:02d}_{case}.png" for kind in ("worst", "best")
                for rank, case in enumerate(report["cases"][kind], start=1)}
    assert len(expected) == 4 and {p.name for p in (folder / "cases").iterdir()} == expected
    assert all((folder / "cases" / name).read_bytes()[:4] == b"\x89PNG" for name in expected)


def test_evaluate_refuses_an_existing_report_unless_overwrite(supervised, tiny_isic, tmp_path):
    settings = {"bundle_root": str(supervised), "dataset_dir": str(tiny_isic), "output_dir": str(tmp_path / "eval"),
                **TINY_ISIC_EVAL}
    run(config_file=EVALUATE, **settings)
    (tmp_path / "eval" / "metrics.json").write_text('{"earlier": true}')
    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, **settings)
    messages = error_messages(info.value)
    assert any("already holds an evaluation" in m and "--overwrite True" in m for m in messages), messages
    assert (tmp_path / "eval" / "metrics.json").read_text() == '{"earlier": true}'

    # the masks of inference.json in eval/inference (its default place) survive a replaced report
    run(config_file=INFERENCE, bundle_root=str(supervised), input_dir=str(tiny_isic / "ISIC-2017_Test_v2_Data"),
        output_dir=str(tmp_path / "eval" / "inference"), **TINY_ISIC_EVAL)
    run(config_file=EVALUATE, overwrite=True, **settings)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["n_images"] == 2
    assert sorted(p.name for p in (tmp_path / "eval" / "inference").iterdir()) == [f"{i}_mask.png" for i in TEST_IDS]


def test_evaluating_on_the_selection_split_only_when_asked_and_marked_optimistic(supervised, tiny_isic, tmp_path):
    settings = {"bundle_root": str(supervised), "dataset_dir": str(tiny_isic), "split": "val", **TINY_ISIC_EVAL}
    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, output_dir=str(tmp_path / "refused"), **settings)
    messages = error_messages(info.value)
    assert any("--split val is the split the model was chosen on" in m and "--evaluate_on_selection_split True" in m
               for m in messages), messages
    assert not (tmp_path / "refused" / "metrics.json").exists()
    run(config_file=EVALUATE, output_dir=str(tmp_path / "asked"), evaluate_on_selection_split=True, **settings)
    report = json.loads((tmp_path / "asked" / "metrics.json").read_text())
    assert report["split"] == "val" and report["split_note"] == "selection split: optimistic"


def test_a_model_carries_its_settings_into_evaluation(supervised, tiny_isic, reports, tmp_path):
    """The trap of a model trained at working_size 96 evaluated at the default 480: evaluate.json now takes the
    sizes from the model's settings file, and refuses a value that contradicts them, naming both."""
    settings = json.loads((supervised / "models" / "model.settings.json").read_text())
    assert {k: settings[k] for k in ("working_size", "patch_size", "swin_feature_size")} == {
        k: TINY_ISIC[k] for k in ("working_size", "patch_size", "swin_feature_size")}
    assert settings["class_names"] == ["background", "lesion"] and settings["architecture"] == "cross_teaching"
    baseline = json.loads((supervised / "models" / "supervised_model.settings.json").read_text())
    assert baseline["working_size"] == 96 and baseline["architecture"] == "supervised" and "swin_feature_size" not in baseline
    run(config_file=EVALUATE, bundle_root=str(supervised), dataset_dir=str(tiny_isic), output_dir=str(tmp_path / "eval"),
        num_workers=0)  # no size given: the model's are used
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["mean_iou"] == pytest.approx(json.loads((reports["cross_teaching"] / "metrics.json").read_text())["mean_iou"])
    assert report["class_names"] == ["background", "lesion"]
    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, bundle_root=str(supervised), dataset_dir=str(tiny_isic),
            output_dir=str(tmp_path / "refused"), num_workers=0, working_size=480)
    messages = error_messages(info.value)
    assert any("working_size=480 (the model was trained with working_size=96)" in m for m in messages), messages
    # the cross-teaching pair evaluated as the baseline: refused by its settings before its weights are read
    with pytest.raises(Exception) as info:
        run(config_file=EVALUATE, bundle_root=str(supervised), dataset_dir=str(tiny_isic), architecture="supervised",
            model_file=str(supervised / "models" / "model.pt"), output_dir=str(tmp_path / "other"), num_workers=0)
    messages = error_messages(info.value)
    assert any("architecture='supervised' (the model was trained with architecture='cross_teaching')" in m
               for m in messages), messages


def test_evaluate_any_folder_of_image_mask_pairs(supervised, tiny_isic, reports, tmp_path):
    """The guide's generic layout ``<dataset_dir>/<split>/images`` + ``masks``, names of one's own, PNG images."""
    data = tmp_path / "lesions"
    (data / "test" / "images").mkdir(parents=True)
    (data / "test" / "masks").mkdir()
    names = {}
    for index, case in enumerate(TEST_IDS):
        names[f"lesion_{index}"] = case
        jpeg = Image.open(tiny_isic / "ISIC-2017_Test_v2_Data" / f"{case}.jpg")
        jpeg.save(data / "test" / "images" / f"lesion_{index}.png")
        shutil.copy(tiny_isic / "ISIC-2017_Test_v2_Part1_GroundTruth" / f"{case}_segmentation.png",
                    data / "test" / "masks" / f"lesion_{index}_mask.png")
    run(config_file=EVALUATE, bundle_root=str(supervised), dataset_dir=str(data), image_glob="*.png",
        mask_name="{stem}_mask.png", output_dir=str(tmp_path / "eval"), **TINY_ISIC_EVAL)
    rows = _rows(tmp_path / "eval" / "per_image.csv")
    assert [r["id"] for r in rows] == sorted(names)
    # the ISIC test split's pixels and masks (decoded once, stored losslessly) score as they did there
    isic = {r["id"]: r for r in _rows(reports["cross_teaching"] / "per_image.csv")}
    for row in rows:
        assert float(row["iou"]) == pytest.approx(float(isic[names[row["id"]]]["iou"]))
        assert float(row["truth_fraction"]) == pytest.approx(float(isic[names[row["id"]]]["truth_fraction"]))


def test_inference_writes_one_mask_per_image_at_its_size(supervised, tiny_isic, reports, tmp_path):
    images = tiny_isic / "ISIC-2017_Test_v2_Data"
    run(config_file=INFERENCE, bundle_root=str(supervised), input_dir=str(images), output_dir=str(tmp_path),
        **TINY_ISIC_EVAL)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}_mask.png" for i in TEST_IDS]
    report = {r["id"]: r for r in _rows(reports["cross_teaching"] / "per_image.csv")}
    for case in TEST_IDS:
        mask = Image.open(tmp_path / f"{case}_mask.png")
        assert mask.mode == "L" and mask.size == Image.open(images / f"{case}.jpg").size
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
        # the same network and pipeline as evaluate.json: the mask scores what the report says
        pred = np.asarray(mask) > 127
        truth = _mask(tiny_isic / "ISIC-2017_Test_v2_Part1_GroundTruth" / f"{case}_segmentation.png")
        assert _iou(truth, pred) == pytest.approx(float(report[case]["iou"]))
        assert pred.mean() == pytest.approx(float(report[case]["pred_fraction"]))


def test_verify_and_export_to_torchscript(trained, tmp_path):
    verify_net_in_out(net_id="network_def", meta_file=META, config_file=INFERENCE, swin_feature_size=12)
    # the guide's export command as written (plus the tiny SwinUNETR), from a folder laid out like the repository
    command = documented_command("isic_cross_teaching.md", "python -m monai.bundle ckpt_export")
    result = run_in_repo_layout(command + ["--swin_feature_size", "12"], tmp_path / "checkout",
                                "isic_cross_teaching", trained / "models")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path / "checkout") == ["bundles"]  # nothing written into the current folder
    scripted = torch.jit.load(str(trained / "models" / "model.ts"))  # bundles/isic_cross_teaching/models/model.ts
    (network,) = _parsed(INFERENCE, ["network"], bundle_root=str(trained), swin_feature_size=12,
                         device="$torch.device('cpu')")
    network.eval()
    torch.manual_seed(0)
    for shape in ((1, 3, 224, 224), (2, 3, 96, 96)):  # the traced shape and another one
        image = torch.rand(*shape)
        with torch.no_grad():
            expected = network(image)
            torch.testing.assert_close(scripted(image), expected)
        assert expected.shape == (shape[0], 2, *shape[2:])


def test_full_labeled_fraction_trains_with_the_labeled_images_as_unlabeled_stream(tiny_isic, tmp_path):
    # the paper's 100% run: batches of 15 labeled and 1 unlabeled image; the baseline takes 15 as well
    assert _parsed(TRAIN, ["labeled_batch_size", "unlabeled_batch_size"], labeled_fraction=1.0) == [15, 1]
    assert _parsed(TRAIN, ["labeled_batch_size", "unlabeled_batch_size"]) == [8, 8]
    assert _parsed(SUPERVISED, ["train#dataloader#batch_size"], labeled_fraction=1.0) == [15]
    assert _parsed(SUPERVISED, ["train#dataloader#batch_size"]) == [8]

    run(config_file=TRAIN, bundle_root=str(tmp_path), dataset_dir=str(tiny_isic),
        **{**TINY_ISIC, "labeled_fraction": 1.0, "labeled_batch_size": 4, "unlabeled_batch_size": 1})
    checkpoint = torch.load(tmp_path / "models" / "cross_teaching" / "checkpoint_epoch=1.pt", weights_only=True)
    assert checkpoint["run"]["num_items"] == {"labeled": 8, "unlabeled": 8, "validation": 2}
    assert checkpoint["trainer"]["optimizer_steps"] == 2  # 8 labeled images, batch 4
    assert (tmp_path / "models" / "model.pt").is_file()


def test_a_fraction_that_labels_every_image_below_one_is_an_error(tiny_isic, tmp_path):
    # 8 training images: 0.95 * 8 rounds to 8 labeled, none left for the unlabeled stream
    with pytest.raises(Exception) as info:
        run(config_file=TRAIN, bundle_root=str(tmp_path), dataset_dir=str(tiny_isic),
            **{**TINY_ISIC, "labeled_fraction": 0.95})
    messages = error_messages(info.value)
    assert any("the unlabeled pool is empty at labeled fraction 0.95" in m for m in messages), messages
    assert not (tmp_path / "models" / "model.pt").exists()


def test_a_missing_dataset_dir_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "no_such_folder"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", TRAIN, "--bundle_root",
               str(tmp_path / "bundle"), "--dataset_dir", str(missing),
               *[f"--{key}={value}" for key, value in TINY_ISIC.items()]]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    last = [line for line in output.splitlines() if line.strip()][-1]
    assert result.returncode != 0
    assert last.startswith("ERROR in config key") and f"not found: {missing}" in last, last
    assert "Traceback" not in output


def test_a_labeled_image_without_a_mask_is_named(tiny_isic, tmp_path):
    data = tmp_path / "ISIC2017"
    shutil.copytree(tiny_isic, data)
    (data / "ISIC-2017_Training_Part1_GroundTruth" / "ISIC_0000003_segmentation.png").unlink()
    with pytest.raises(Exception) as info:
        run(config_file=TRAIN, bundle_root=str(tmp_path / "bundle"), dataset_dir=str(data), **TINY_ISIC)
    messages = error_messages(info.value)
    assert any("ISIC_0000003.jpg" in m and "have no mask" in m and "ISIC_0000003_segmentation.png" in m
               for m in messages), messages


def test_labeled_subsets_are_nested_across_fractions_and_change_with_the_seed(tiny_isic):
    def labeled_ids(fraction: float, seed: int) -> set[str]:
        (labeled,) = _parsed(TRAIN, ["labeled"], dataset_dir=str(tiny_isic), patch_size=64,
                             labeled_fraction=fraction, seed=seed)
        return {item["id"] for item in labeled}

    quarter, half = labeled_ids(0.25, 0), labeled_ids(0.5, 0)
    assert len(quarter) == 2 and len(half) == 4 and quarter < half
    assert labeled_ids(0.5, 1) != half and len(labeled_ids(0.5, 1)) == 4
    assert labeled_ids(0.5, 0) == half  # the same seed, the same images


def test_multi_gpu_overlay_with_two_cpu_processes(tiny_isic, tmp_path):
    """``torchrun --nproc_per_node=2`` with ``multi_gpu_train.json`` on the CPU (gloo)."""
    root, logs = tmp_path / "bundle", tmp_path / "logs"
    command = two_process_command([TRAIN, ISIC / "multi_gpu_train.json"], logs, "--bundle_root", str(root),
                                  "--dataset_dir", str(tiny_isic), *[f"--{key}={value}" for key, value in TINY_ISIC.items()])
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    result = run_two_cpu_processes(command, env, root)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(root / "models" / "cross_teaching" / "checkpoint_epoch=1.pt", weights_only=True)
    # 4 labeled images split over 2 processes, batch 2 per process -> 1 step
    assert checkpoint["trainer"]["optimizer_steps"] == 1
    assert set(checkpoint) == CHECKPOINT_ENTRIES
    assert not any(k.startswith("module.") or ".module." in k for k in checkpoint["network"])  # no DDP prefixes
    model = torch.load(root / "models" / "model.pt", weights_only=True)
    assert {k.split(".")[1] for k in model} == {"cnn", "transformer"}
    assert len(list((root / "runs" / "cross_teaching").glob("events.out.tfevents.*"))) == 1  # rank 0 only
    outputs = rank_outputs(logs)
    assert "cross_teaching" in outputs[0] and "%|" in outputs[0]
    assert "%|" not in outputs[1]  # the handlers that write or display are off on rank 1, by name
