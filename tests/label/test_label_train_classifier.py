"""Fine-tuning a classifier bundle from the classes saved in a MONAI Label datastore."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("monailabel", reason="MONAI Label is installed by `bash scripts/setup.sh --label`")

from label_helpers import OCT_SIZES, copy_bundle, parsed_datalists, save_network_weights  # noqa: E402
from fake_datastore import FakeDatastore  # noqa: E402
from monai_ssl.label import read_served_bundle  # noqa: E402
from monai_ssl.label.datastore_items import class_index, datastore_items  # noqa: E402
from monai_ssl.label.train_classifier import ClassifierTrain, classifier_overrides  # noqa: E402
from monai_ssl.label.train_task import RunSettings  # noqa: E402

NAMES = ["CNV", "DME", "DRUSEN", "NORMAL"]


def test_class_index_reads_params_json_text_and_indices(tmp_path):
    assert class_index({"label_info": {"class": "drusen"}}, NAMES) == 2
    (tmp_path / "a.json").write_text(json.dumps({"class": "DME"}))
    assert class_index({"label": str(tmp_path / "a.json")}, NAMES) == 1
    (tmp_path / "b.txt").write_text("NORMAL\n")
    assert class_index({"label": str(tmp_path / "b.txt")}, NAMES) == 3
    assert class_index({"label_info": {"class": 0}}, NAMES) == 0
    with pytest.raises(ValueError, match=r"image 'scan7'.*'GLAUCOMA'.*expected one of \['CNV'"):
        class_index({"id": "scan7", "label_info": {"class": "GLAUCOMA"}}, NAMES)


@pytest.fixture
def oct_bundle(tmp_path):
    """A tiny OCT bundle serving the weights of its own network (no training needed to serve)."""
    return read_served_bundle(save_network_weights(copy_bundle("oct_byol_pseudolabel", tmp_path / "bundles", OCT_SIZES)))


def _store(tmp_path, classes):
    rng = np.random.default_rng(0)
    images, labels = {}, {}
    for n, name in enumerate(classes):
        path = tmp_path / f"scan{n}.jpeg"
        Image.fromarray((rng.random((40, 48)) * 255).astype(np.uint8)).save(path)
        images[f"scan{n}"] = str(path)
        if name is not None:
            label = tmp_path / f"scan{n}.json"
            label.write_text("{}")
            labels[f"scan{n}"] = (str(label), {"class": name})
    return FakeDatastore(images, labels)


def test_overrides_set_datalists_classes_and_batch_size(oct_bundle, tmp_path):
    store = _store(tmp_path, ["CNV", "DME", "NORMAL", "NORMAL", "DRUSEN", None])
    labeled, unlabeled = datastore_items(store)
    assert len(labeled) == 5 and [i["id"] for i in unlabeled] == ["scan5"]
    overrides = classifier_overrides(oct_bundle, labeled, RunSettings(studies=str(tmp_path), num_epochs=1))
    o = {**overrides, **parsed_datalists(overrides)}
    assert len(o["train#datalist"]) == 4 and len(o["validate#datalist"]) == 1
    assert {i["id"]: i["label"] for i in o["train#datalist"] + o["validate#datalist"]} == {
        "scan0": 0, "scan1": 1, "scan2": 3, "scan3": 3, "scan4": 2}
    assert o["class_names"] == NAMES and o["batch_size"] == 4
    assert o["run_name"] == "monailabel" and o["existing_checkpoints"] == "replace"


def test_training_from_the_datastore_replaces_the_served_model(oct_bundle, tmp_path):
    store = _store(tmp_path, ["CNV", "DME", "NORMAL", "DRUSEN", "CNV", None])
    model = oct_bundle.model_file
    before = {k: v.clone() for k, v in torch.load(model, weights_only=True).items()}
    task = ClassifierTrain(oct_bundle, str(tmp_path))
    assert task.config()["max_epochs"] == 2  # the bundle's default_num_epochs
    task({"max_epochs": 1, "device": "cpu"}, store)
    after = torch.load(model, weights_only=True)
    assert after.keys() == before.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # trained, from the served weights
    assert list((oct_bundle.path / "models" / "monailabel").glob("checkpoint*.pt"))
    assert not (oct_bundle.path / "demo_data").exists()  # the datastore is the data, no demo is made


def test_knee_classifier_trains_from_saved_classes_in_its_own_folders(tmp_path):
    """byolmed2d: one logit (the class index becomes a float target), fixed run folders moved to monailabel/."""
    from monai_ssl.data import make_mrnet_demo

    bundle = read_served_bundle(save_network_weights(copy_bundle(
        "byolmed2d", tmp_path / "bundles", {"image_size": 32, "num_slices": 4, "num_workers": 0})))
    root = make_mrnet_demo(tmp_path / "mrnet", n_train=4, n_valid=2, num_slices=(5, 5), size=32, planes=("sagittal",))
    exams = sorted((root / "train" / "sagittal").glob("*.npy"))
    finding = bundle.class_names[1]
    store = FakeDatastore(
        {p.stem: str(p) for p in exams},
        {p.stem: (str(p), {"class": c}) for p, c in zip(exams, ["negative", finding, "negative", finding])},
    )
    o = parsed_datalists(classifier_overrides(bundle, datastore_items(store)[0],
                                              RunSettings(studies=str(tmp_path), num_epochs=1)))
    assert sorted(i["label"] for i in o["train#datalist"] + o["validate#datalist"]) == [[0.0], [0.0], [1.0], [1.0]]
    before = torch.load(bundle.model_file, weights_only=True)
    ClassifierTrain(bundle, str(tmp_path))({"max_epochs": 1, "device": "cpu"}, store)
    after = torch.load(bundle.model_file, weights_only=True)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert list((bundle.path / "models" / "monailabel").glob("checkpoint*.pt"))
    assert not (bundle.path / "models" / "finetune").exists()  # the command-line run's folder is left alone
    assert (bundle.path / "runs" / "monailabel").is_dir()


def test_ids_in_config_syntax_reach_the_training_as_data(oct_bundle, tmp_path):
    """Ids starting with ``$``, ``@`` and ``%`` (as a hand-made datastore could hold) train as plain data: the
    injected expression never runs, the references are never resolved, the ids arrive verbatim."""
    marker = tmp_path / "marker"
    hostile = [f"$open({str(marker)!r}, 'w').write('x')", "@labeled", "%train#datalist", "$@network_def", "ok"]
    base = _store(tmp_path, ["CNV", "DME", "NORMAL", "DRUSEN", "CNV"])
    store = FakeDatastore({new: base.images[old] for new, old in zip(hostile, sorted(base.images))},
                          {new: base.labels[old] for new, old in zip(hostile, sorted(base.images))})
    overrides = classifier_overrides(oct_bundle, datastore_items(store)[0], RunSettings(studies=str(tmp_path), num_epochs=1))
    assert not any(i in json.dumps(overrides) for i in hostile[:4])  # the ids are not config text
    parsed = parsed_datalists(overrides)
    assert sorted(i["id"] for i in parsed["train#datalist"] + parsed["validate#datalist"]) == sorted(hostile)
    ClassifierTrain(oct_bundle, str(tmp_path))({"max_epochs": 1, "device": "cpu"}, store)  # the real bundle run
    assert not marker.exists()
    written = json.loads((oct_bundle.path / "models" / "monailabel-datalist.json").read_text())
    assert sorted(i["id"] for items in written.values() for i in items) == sorted(hostile)
