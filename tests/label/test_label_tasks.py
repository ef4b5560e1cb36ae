"""The MONAI Label tasks without a server: infer, active-learning scores and the training overrides."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("monailabel", reason="MONAI Label is installed by `bash scripts/setup.sh --label`")

from label_helpers import OCT_SIZES, copy_bundle, parsed_datalists, save_network_weights  # noqa: E402
from fake_datastore import FakeDatastore  # noqa: E402
from monai_ssl.label import read_served_bundle  # noqa: E402
from monai_ssl.label.active_learning import BundleScorer  # noqa: E402
from monai_ssl.label.infer import BundleInfer, classification_result  # noqa: E402
from monai_ssl.label.train_cross_teaching import cross_teaching_overrides  # noqa: E402
from monai_ssl.label.train_task import RunSettings  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


def _train_images(isic_data):
    return sorted((isic_data / "ISIC-2017_Training_Data").glob("ISIC_*.jpg"))


def test_segmentation_answer_is_a_mask_of_the_original_size(isic_bundle, isic_data):
    task = BundleInfer(read_served_bundle(isic_bundle))
    image = _train_images(isic_data)[0]
    label_file, result = task({"image": str(image), "device": "cpu"})
    try:
        mask = np.asarray(Image.open(label_file))
        assert mask.shape == np.asarray(Image.open(image)).shape[:2]
        assert set(np.unique(mask)) <= {0, 1}
        assert result["label_names"] == {"lesion": 1}
    finally:
        os.remove(label_file)


def test_classification_answer_has_class_and_probabilities(tmp_path):
    folder = save_network_weights(copy_bundle("oct_byol_pseudolabel", tmp_path / "bundles", OCT_SIZES))
    image = tmp_path / "scan.jpeg"
    Image.fromarray((np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)).save(image)
    label_file, result = BundleInfer(read_served_bundle(folder))({"image": str(image), "device": "cpu"})
    assert label_file is None
    assert result["class"] in {"CNV", "DME", "DRUSEN", "NORMAL"}
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert max(result["probabilities"], key=result["probabilities"].get) == result["class"]


def test_classification_result_of_one_logit():
    result = classification_result([0.8], ["negative", "acl tear"])
    assert result["class"] == "acl tear"
    assert result["probabilities"] == {"negative": pytest.approx(0.2), "acl tear": pytest.approx(0.8)}
    with pytest.raises(ValueError, match="3 probabilities for the 2 classes"):
        classification_result([0.2, 0.3, 0.5], ["a", "b"])


def test_scores_are_cached_per_model_version_and_unreadable_images_skipped(isic_bundle, isic_data, tmp_path):
    images = {p.stem: str(p) for p in _train_images(isic_data)[:3]}
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    images["broken"] = str(broken)
    store = FakeDatastore(images)
    scorer = BundleScorer(BundleInfer(read_served_bundle(isic_bundle)))
    assert scorer.score_name == "disagreement"
    scores, skipped = scorer.update(store, sorted(images))
    assert skipped == 1 and sorted(scores) == sorted(set(images) - {"broken"})
    assert all(0.0 <= s <= 1.0 for s in scores.values())

    calls = []
    scorer.score = lambda path, device="cpu": calls.append(path) or 0.5
    again, _ = scorer.update(store, sorted(set(images) - {"broken"}))
    assert again == scores and calls == []  # cached: nothing scored twice for the same model
    model = isic_bundle / "models" / "model.pt"
    stat = model.stat()
    os.utime(model, (stat.st_atime, stat.st_mtime + 10))  # a training replaced the model
    try:
        fresh, _ = scorer.update(store, sorted(set(images) - {"broken"}))
        assert len(calls) == 3 and set(fresh.values()) == {0.5}
    finally:
        os.utime(model, (stat.st_atime, stat.st_mtime))


def _items(n, labeled=True):
    return [{"id": f"img{i}", "image": f"/data/img{i}.jpg", **({"label": f"/data/labels/img{i}.png"} if labeled else {})} for i in range(n)]


def test_training_overrides_pass_labeled_and_unlabeled_images(isic_bundle):
    bundle = read_served_bundle(isic_bundle)
    overrides = cross_teaching_overrides(bundle, _items(10), _items(12, labeled=False)[10:] + [{"id": "u", "image": "/u.jpg"}],
                                         RunSettings(studies="/data", num_epochs=2, val_split=0.2))
    o = {**overrides, **parsed_datalists(overrides)}
    assert len(o["labeled"]) == 8 and len(o["validate#datalist"]) == 2
    assert not {i["id"] for i in o["labeled"]} & {i["id"] for i in o["validate#datalist"]}
    assert [i["id"] for i in o["unlabeled"]] == ["img10", "img11", "u"] and all("label" not in i for i in o["unlabeled"])
    assert (o["labeled_batch_size"], o["unlabeled_batch_size"]) == (8, 3)
    assert o["dataset_dir"] == "/data" and o["num_epochs"] == 2 and o["existing_checkpoints"] == "replace"
    assert o["bundle_root"] == str(isic_bundle.resolve()) and "load_weights" in o["network"]
    # the same labeled images give the same validation share, whatever their order
    again = parsed_datalists(cross_teaching_overrides(bundle, _items(10)[::-1], [], RunSettings(studies="/data", num_epochs=1)))
    assert {i["id"] for i in again["validate#datalist"]} == {i["id"] for i in o["validate#datalist"]}
    # every image labeled: the labeled training images, without masks, are the unlabeled stream
    assert {i["id"] for i in again["unlabeled"]} == {i["id"] for i in again["labeled"]}
    assert all("label" not in i for i in again["unlabeled"])


def test_training_needs_two_labeled_images(isic_bundle):
    bundle = read_served_bundle(isic_bundle)
    with pytest.raises(ValueError, match="at least 2 labeled images .* has 1"):
        cross_teaching_overrides(bundle, _items(1), _items(3, labeled=False), RunSettings(studies="/d", num_epochs=1))
    two = parsed_datalists(cross_teaching_overrides(bundle, _items(2), [], RunSettings(studies="/d", num_epochs=1, val_split=0.9)))
    assert len(two["labeled"]) == 1 and len(two["validate#datalist"]) == 1
    with pytest.raises(ValueError, match="val_split"):
        cross_teaching_overrides(bundle, _items(4), [], RunSettings(studies="/d", num_epochs=1, val_split=1.0))
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        cross_teaching_overrides(bundle, _items(4), [], RunSettings(studies="/d", num_epochs=0))


def test_knee_mri_answer_is_finding_probability(tmp_path):
    from monai_ssl.data import make_mrnet_demo

    folder = save_network_weights(copy_bundle("byolmed2d", tmp_path / "bundles", {"image_size": 32, "num_slices": 4}))
    root = make_mrnet_demo(tmp_path / "mrnet", n_train=2, n_valid=2, num_slices=(5, 5), size=32, planes=("sagittal",))
    exam = sorted((root / "valid" / "sagittal").glob("*.npy"))[0]
    bundle = read_served_bundle(folder)
    assert bundle.dimension == 3 and bundle.num_outputs == 1
    label_file, result = BundleInfer(bundle)({"image": str(exam), "device": "cpu"})
    assert label_file is None
    assert list(result["probabilities"]) == ["negative", bundle.class_names[1]]
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_training_datalists_leave_out_unreadable_files(isic_data, tmp_path, caplog):
    from monai_ssl.label.datastore_items import datastore_items, usable_items

    images = _train_images(isic_data)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    bad_label = tmp_path / "bad_label.png"
    bad_label.write_bytes(b"")
    store = FakeDatastore(
        {"a": str(images[0]), "b": str(images[1]), "c": str(images[2]), "broken": str(broken)},
        {"a": (str(isic_data / "ISIC-2017_Training_Part1_GroundTruth" / f"{images[0].stem}_segmentation.png"), {}),
         "b": (str(bad_label), {})},
    )
    assert [i["id"] for i in datastore_items(store)[1]] == ["broken", "c"]  # unchecked: everything
    labeled, unlabeled, left_out = usable_items(*datastore_items(store))
    assert [i["id"] for i in labeled] == ["a"] and [i["id"] for i in unlabeled] == ["c"]
    assert set(left_out) == {"broken.jpg", images[1].name} and "empty file" in left_out[images[1].name]
    assert "broken.jpg" in caplog.text and "empty file (0 bytes)" in caplog.text  # each named, with its problem
