"""Every bundle works from any folder, as MONAI Label serves it: all paths follow ``bundle_root``.

MONAI Label sets ``bundle_root`` to the bundle's absolute folder, parses ``configs/inference.json``
(``network_def``, ``preprocessing``, ``postprocessing``, ``inferer``), loads ``models/model.pt``
into ``network_def`` and reads ``configs/metadata.json``. These tests copy a bundle's configs to a
temporary folder, work from yet another folder and check that nothing is read or written
elsewhere: parsing inference creates no demo data, the training configs publish the model that
inference loads, and a copied bundle runs its inference in place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser, run

from bundle_helpers import REPO, TINY_2D, TINY_ISIC_EVAL, error_messages
from monai_ssl.data import make_isic_demo, make_mrnet_demo, make_oct_demo, make_skin_lesion_demo

BUNDLES = ("byolmed2d", "oct_byol_pseudolabel", "isic_cross_teaching", "skin_lesion_classification")
# what MONAI Label resolves in inference.json
SERVED_KEYS = ("network_def", "preprocessing", "postprocessing", "inferer")
# top-level items of inference.json that read the weights or the inputs (checked separately)
READERS = {"network", "datalist", "data"}
PATH_MARKERS = ("/models", "/eval", "/runs", "/demo_data")
# the datalist item of each inference.json
DATALIST_KEY = {"byolmed2d": "datalist", "oct_byol_pseudolabel": "data", "isic_cross_teaching": "datalist",
                "skin_lesion_classification": "data"}
# the config (and key) of the training run whose file inference.json loads by default
DEPLOYED_BY = {
    "byolmed2d": (["finetune.json"], "$os.path.join(@validate#best_model_saver#save_dir, "
                                     "@validate#best_model_saver#key_metric_filename)"),
    "oct_byol_pseudolabel": (["finetune.json"], "@deploy_model_file"),
    "isic_cross_teaching": (["train.json"], "@model_file"),
    "skin_lesion_classification": (["finetune.json"], "@deploy_model_file"),
}


def _copy_bundle(name: str, parent: Path) -> Path:
    """``parent/<name>/configs``, a copy of the bundle's configs; returns ``parent/<name>`` (the new bundle_root)."""
    root = parent / name
    shutil.copytree(REPO / "bundles" / name / "configs", root / "configs")
    return root


def _parser(root: Path, *configs: str, **overrides) -> ConfigParser:
    """The configs of the bundle at ``root``, merged, with ``bundle_root`` set to ``root`` as MONAI Label does."""
    parser = ConfigParser()
    parser.read_config([str(root / "configs" / c) for c in configs])
    parser["bundle_root"] = str(root)
    for key, value in overrides.items():
        parser[key] = value
    return parser


def _tree(folder: Path) -> set[str]:
    """Every path under ``folder``, relative to it (empty when it does not exist)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def _make_demo(name: str, folder: Path) -> Path:
    """A tiny demo at ``folder`` in the layout the bundle's training creates (``ensure_*_demo``)."""
    if name == "byolmed2d":
        return make_mrnet_demo(folder, n_train=2, n_valid=2, num_slices=(3, 3), size=32, planes=("sagittal",))
    if name == "oct_byol_pseudolabel":
        return make_oct_demo(folder, n_train_per_class=2, n_test_per_class=1, height=(48, 48), width=(48, 48))
    if name == "skin_lesion_classification":
        return make_skin_lesion_demo(folder, n_train_per_class=1, n_val_per_class=1, n_test_per_class=1, size=(32, 32))
    return make_isic_demo(folder, n_train=2, n_val=1, n_test=2, height=(64, 64), width=(64, 64))


@pytest.mark.parametrize("name", BUNDLES)
def test_parsing_inference_creates_nothing_and_every_path_follows_bundle_root(name, tmp_path, monkeypatch):
    root = _copy_bundle(name, tmp_path / "copy")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    repo_bundle = REPO / "bundles" / name
    before = (repo_bundle / "demo_data").exists()
    copied = _tree(root)

    parser = _parser(root, "inference.json")
    for key in SERVED_KEYS:
        if key in parser:
            assert parser.get_parsed_content(key) is not None
    paths = {}
    for key, raw in parser.get().items():
        if isinstance(raw, str) and key not in READERS:
            value = parser.get_parsed_content(key)
            if isinstance(value, str) and any(marker in value for marker in PATH_MARKERS):
                paths[key] = value
    assert {"model_file", "input_dir", "output_dir"} <= set(paths), paths
    assert all(value.startswith(str(root) + "/") for value in paths.values()), paths
    assert paths["model_file"] == f"{root}/models/model.pt"
    assert "dataset_dir" not in parser and "data_root" not in parser and "demo_dir" not in parser

    assert (repo_bundle / "demo_data").exists() == before
    assert not [p for p in tmp_path.rglob("demo_data")]
    assert _tree(root) == copied  # nothing written into the bundle either
    assert not any(elsewhere.iterdir())  # nothing written into the current folder


# every runnable config of each bundle, overlays with their base (as `monai.bundle run --config_file [...]`)
RUNS = [
    *[("byolmed2d", c) for c in (["train.json"], ["finetune.json"], ["evaluate.json"], ["inference.json"],
                                 ["train.json", "multi_gpu_train.json"])],
    *[("oct_byol_pseudolabel", c) for c in (["train.json"], ["finetune.json"], ["evaluate.json"], ["inference.json"],
                                            ["train.json", "multi_gpu_train.json"])],
    *[("oct_byol_pseudolabel", ["finetune.json", f"{o}.json"]) for o in ("pseudolabel", "linear_probe", "few_shot",
                                                                         "supervised")],
    *[("isic_cross_teaching", c) for c in (["train.json"], ["train.json", "supervised_train.json"], ["evaluate.json"],
                                           ["inference.json"], ["train.json", "multi_gpu_train.json"])],
    *[("skin_lesion_classification", c) for c in (["train.json"], ["finetune.json"], ["evaluate.json"],
                                                  ["inference.json"], ["saliency.json"],
                                                  ["train.json", "multi_gpu_train.json"])],
    *[("skin_lesion_classification", ["finetune.json", f"{o}.json"]) for o in ("supervised", "imagenet_transfer",
                                                                               "linear_probe", "few_shot")],
]
# keys that name files or folders; `data_root` is left out: it makes the demo data
PATH_KEY = re.compile(r".*(_dir|_file|_encoder|_projector)$")
# keys that match PATH_KEY but name no file (the skin-lesion finetune.json's encoder architecture)
NOT_PATHS = {"default_encoder"}


@pytest.mark.parametrize(("name", "configs"), RUNS, ids=["-".join([n, *c]) for n, c in RUNS])
def test_every_path_of_every_config_follows_bundle_root(name, configs, tmp_path, monkeypatch):
    root = _copy_bundle(name, tmp_path / "copy")
    monkeypatch.chdir(tmp_path)
    parser = _parser(root, *configs)
    paths = {}
    for key, raw in parser.get().items():
        if isinstance(raw, str) and PATH_KEY.fullmatch(key) and key not in NOT_PATHS:
            value = parser.get_parsed_content(key)
            if isinstance(value, str) and value.lower() not in ("", "none", "null"):
                paths[key] = value
    assert {"ckpt_dir", "output_dir"} <= set(paths), paths
    assert all(value.startswith(str(root) + "/") for value in paths.values()), paths
    assert not (root / "demo_data").exists()


@pytest.mark.parametrize("name", BUNDLES)
def test_a_missing_input_folder_is_named_with_the_setting_to_pass(name, tmp_path, monkeypatch):
    root = _copy_bundle(name, tmp_path)
    monkeypatch.chdir(tmp_path)
    parser = _parser(root, "inference.json")
    with pytest.raises(Exception) as info:
        parser.get_parsed_content(DATALIST_KEY[name])
    messages = error_messages(info.value)
    folder = parser.get_parsed_content("input_dir")
    assert any(folder in m and "--input_dir" in m for m in messages), messages
    assert not (root / "demo_data").exists()


@pytest.mark.parametrize("name", BUNDLES)
def test_the_default_input_dir_is_in_the_demo_that_training_creates(name, tmp_path, monkeypatch):
    root = _copy_bundle(name, tmp_path)
    _make_demo(name, root / "demo_data")
    monkeypatch.chdir(tmp_path)
    parser = _parser(root, "inference.json")
    datalist = parser.get_parsed_content(DATALIST_KEY[name])
    items = datalist[0] if DATALIST_KEY[name] == "data" else datalist
    demo = (root / "demo_data").resolve()
    assert items and all(Path(item["image"]).resolve().is_relative_to(demo) for item in items)


@pytest.mark.parametrize("name", BUNDLES)
def test_training_writes_the_model_that_inference_loads(name, tmp_path):
    root = _copy_bundle(name, tmp_path)
    configs, expression = DEPLOYED_BY[name]
    parser = _parser(root, *configs, deployed=expression)
    inference = _parser(root, "inference.json")
    deployed = parser.get_parsed_content("deployed")
    assert deployed == inference.get_parsed_content("model_file") == f"{root}/models/model.pt"


@pytest.mark.parametrize(
    ("name", "dims", "classes", "output_format"),
    [
        ("byolmed2d", 3, None, "classes"),
        ("oct_byol_pseudolabel", 2, ["CNV", "DME", "DRUSEN", "NORMAL"], "classes"),
        ("isic_cross_teaching", 2, ["background", "lesion"], "segmentation"),
        ("skin_lesion_classification", 2, ["melanoma", "seborrheic_keratosis", "nevus"], "classes"),
    ],
)
def test_metadata_describes_the_served_network(name, dims, classes, output_format):
    meta = json.loads((REPO / "bundles" / name / "configs" / "metadata.json").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    pred = meta["network_data_format"]["outputs"]["pred"]
    assert len(image["spatial_shape"]) == dims
    assert pred["format"] == output_format
    names = [pred["channel_def"][str(i)] for i in range(len(pred["channel_def"]))]
    assert len(names) == pred["num_channels"]
    if classes is not None:
        assert names == classes
    if name in ("oct_byol_pseudolabel", "skin_lesion_classification"):  # the order of the classes the network predicts
        parser = ConfigParser()
        parser.read_config(str(REPO / "bundles" / name / "configs" / "inference.json"))
        assert parser.get_parsed_content("class_names") == names


@pytest.mark.usefixtures("one_intra_op_thread")
def test_a_copied_bundle_runs_its_inference_in_place(tmp_path, monkeypatch):
    """ISIC inference of a copied bundle, from another folder, on its default input (the demo's test images)."""
    name = "isic_cross_teaching"
    repo_bundle = REPO / "bundles" / name
    repo_before = _tree(repo_bundle)
    root = _copy_bundle(name, tmp_path / "copy")
    images = _make_demo(name, root / "demo_data") / "ISIC-2017_Test_v2_Data"
    # the deployable model: a state dict that fits inference.json's network_def (strict)
    network = _parser(root, "inference.json", **TINY_ISIC_EVAL).get_parsed_content("network_def")
    (root / "models").mkdir()
    torch.save(network.state_dict(), root / "models" / "model.pt")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    run(config_file=str(root / "configs" / "inference.json"), bundle_root=str(root), **TINY_ISIC_EVAL)

    expected = sorted(f"{p.stem}_mask.png" for p in images.glob("*.jpg"))
    assert len(expected) == 2
    assert sorted(os.listdir(root / "eval" / "inference")) == expected
    assert not any(elsewhere.iterdir())  # nothing written into the current folder
    assert _tree(repo_bundle) == repo_before  # nor into the repository's bundle


def test_the_oct_pipeline_publishes_its_classifier_as_models_model_pt(tmp_path, monkeypatch):
    """``finetune.json`` publishes its best model as ``models/model.pt``; pseudolabel.json, its best round's."""
    data = make_oct_demo(tmp_path / "OCT2017", n_train_per_class=6, n_test_per_class=1, height=(48, 48),
                         width=(48, 48))
    root = _copy_bundle("oct_byol_pseudolabel", tmp_path)
    monkeypatch.chdir(tmp_path)
    configs = root / "configs"
    common = {"bundle_root": str(root), "dataset_dir": str(data), "pretrained_encoder": "none", **TINY_2D}

    run(config_file=str(configs / "finetune.json"), **common)
    deployed = torch.load(root / "models" / "model.pt", weights_only=True)
    best = torch.load(root / "models" / "finetune_model.pt", weights_only=True)
    assert deployed.keys() == best.keys() and all(torch.equal(deployed[k], best[k].cpu()) for k in best)

    torch.save({"stale": torch.zeros(1)}, root / "models" / "model.pt")  # pseudolabel.json must replace it
    run(config_file=[str(configs / "finetune.json"), str(configs / "pseudolabel.json")], num_rounds=1,
        num_pseudo_labels=4, **common)
    deployed = torch.load(root / "models" / "model.pt", weights_only=True)
    best = torch.load(root / "models" / "pseudolabel" / "best_model.pt", weights_only=True)
    assert deployed.keys() == best.keys() and all(torch.equal(deployed[k], best[k].cpu()) for k in best)
    settings = {k: TINY_2D[k] for k in ("hidden_dim", "projection_dim")}
    network = _parser(root, "inference.json", **settings).get_parsed_content("network_def")
    network.load_state_dict(deployed, strict=True)
