"""The split policy: disjoint id sets, no selection on the reported split, no evaluation image in training."""

from __future__ import annotations

import shutil

import pytest

from monai_ssl.data import (
    SelectionSplitError,
    SplitOverlapError,
    Splits,
    make_isic_demo,
    make_mrnet_demo,
    mrnet_splits,
    reserved_ids,
    segmentation_splits,
    segmentation_unlabeled_stream,
    split_labeled_pool,
)
from monai_ssl.data.mrnet_splits import hold_out_counts


def _ids(items):
    return {item["id"] for item in items}


def test_disjoint_sets_are_accepted_with_defaults():
    splits = Splits(train={"a", "b", "c"}, validation={"v"}, test={"t"}, unlabeled={"c"}, labeled={"a", "b"})
    assert splits.reserved == {"v", "t"}
    assert Splits(train={"a"}, validation={"v"}).labeled == {"a"}  # every training id is labeled by default


@pytest.mark.parametrize(("kwargs", "first", "second"), [
    ({"train": {"a", "v"}, "validation": {"v"}}, "train", "validation"),
    ({"train": {"a", "t"}, "validation": {"v"}, "test": {"t"}}, "train", "test"),
    ({"train": {"a"}, "validation": {"v"}, "test": {"v"}}, "validation", "test"),
    ({"train": {"a", "b"}, "validation": {"v"}, "labeled": {"a", "b"}, "unlabeled": {"b"}}, "labeled", "unlabeled"),
])
def test_each_overlap_is_refused_naming_both_sets(kwargs, first, second):
    with pytest.raises(SplitOverlapError, match=f"in both '{first}'.*and '{second}'"):
        Splits(**kwargs)


def test_labeled_or_unlabeled_ids_outside_train_are_refused():
    with pytest.raises(SplitOverlapError, match="'unlabeled' id.*not in 'train'"):
        Splits(train={"a"}, validation={"v"}, unlabeled={"x"})


def test_selecting_on_the_reported_split_is_refused_naming_it():
    with pytest.raises(SelectionSplitError, match="chosen on 'valid'.*reported on \\('valid'\\)"):
        Splits(train={"a"}, validation={"v"}, selection="valid", reported="valid")
    assert issubclass(SelectionSplitError, ValueError) and issubclass(SplitOverlapError, ValueError)


def test_items_without_ids_are_refused():
    with pytest.raises(ValueError, match="item 0 has no 'id'"):
        Splits.from_datalists([{"image": "x"}], [])


def test_evaluation_split_note():
    from monai_ssl.data import OPTIMISTIC_NOTE, evaluation_split_note

    assert evaluation_split_note("test", "val") == "reported split"
    assert evaluation_split_note("test", None) == "reported split"
    with pytest.raises(SelectionSplitError, match="--split val is the split the model was chosen on"):
        evaluation_split_note("val", "val")
    assert evaluation_split_note("val", "val", evaluate_on_selection_split=True) == OPTIMISTIC_NOTE


def test_reserved_ids_of_a_bundle_splits_dict():
    assert reserved_ids({"train": [{"id": "a"}], "val": [{"id": "v"}], "test": [{"id": "t"}]}) == ["t", "v"]
    assert reserved_ids({"train": [], "val": [{"id": "v"}]}) == ["v"]


# ---------------------------------------------------------------- MRNet: select on a hold-out of train
@pytest.fixture(scope="module")
def mrnet(tmp_path_factory):
    return make_mrnet_demo(tmp_path_factory.mktemp("mrnet") / "MRNet-v1.0", n_train=20, n_valid=6, num_slices=(3, 3),
                           size=32, planes=("sagittal",))


def test_mrnet_selects_on_a_stratified_seeded_hold_out_and_reports_on_valid(mrnet):
    splits = mrnet_splits(mrnet, val_fraction=0.2, val_seed=0)
    train_classes = [int(i["label"][0]) for i in splits["train"] + splits["val"]]
    val_classes = [int(i["label"][0]) for i in splits["val"]]
    for c in set(train_classes):  # every class is represented in the hold-out, in proportion
        assert val_classes.count(c) == max(1, round(0.2 * train_classes.count(c)))
    assert not _ids(splits["train"]) & _ids(splits["val"])
    assert {i["image"].split("/")[-3] for i in splits["test"]} == {"valid"}
    assert {i["image"].split("/")[-3] for i in splits["val"]} == {"train"}
    assert mrnet_splits(mrnet, val_fraction=0.2, val_seed=0) == splits  # seeded: the same every run
    assert _ids(mrnet_splits(mrnet, val_fraction=0.2, val_seed=1)["val"]) != _ids(splits["val"])


def test_mrnet_hold_out_counts_keep_one_exam_per_class_on_each_side():
    items = [{"label": [0.0]}] * 5 + [{"label": [1.0]}] * 2
    assert hold_out_counts(items, 0.1) == {0: 1, 1: 1}  # at least one per class
    assert hold_out_counts(items, 0.9) == {0: 4, 1: 1}  # at most n - 1: one left to train on
    with pytest.raises(ValueError, match="fewer than 2 exams"):
        hold_out_counts([{"label": [0.0]}, {"label": [1.0]}, {"label": [1.0]}], 0.5)
    with pytest.raises(ValueError, match="val_fraction"):
        hold_out_counts(items, 1.0)


# ---------------------------------------------------------------- segmentation: test ids, extra unlabeled folders
@pytest.fixture(scope="module")
def isic(tmp_path_factory):
    return make_isic_demo(tmp_path_factory.mktemp("isic") / "ISIC2017", n_train=8, n_val=2, n_test=2,
                          height=(40, 44), width=(48, 52))


def test_segmentation_splits_list_the_test_images_to_keep_them_out(isic):
    splits = segmentation_splits(isic)
    assert len(splits["test"]) == 2 and all("label" not in i for i in splits["test"])
    assert not _ids(splits["test"]) & (_ids(splits["train"]) | _ids(splits["val"]))
    assert segmentation_splits(isic, eval_split=None)["test"] == []


def test_an_extra_unlabeled_folder_never_brings_validation_or_test_images_into_training(isic, tmp_path):
    splits = segmentation_splits(isic)
    extra = tmp_path / "later_archive"
    extra.mkdir()
    for item in splits["val"] + splits["test"] + splits["train"][:1]:  # a later ISIC archive repeats the ids
        shutil.copy(item["image"], extra / f"{item['id']}.jpg")
    shutil.copy(splits["train"][0]["image"], extra / "ISIC_9999999.jpg")  # a new image
    labeled = split_labeled_pool(splits["train"], 0.5, seed=0)
    stream = segmentation_unlabeled_stream(labeled, splits, 0.5, unlabeled_dir=extra, image_glob="*.jpg")
    assert not _ids(stream) & (_ids(splits["val"]) | _ids(splits["test"]))
    assert "ISIC_9999999" in _ids(stream)
    assert _ids(labeled[1]) <= _ids(stream)


def test_a_test_image_with_a_training_id_is_refused(isic, tmp_path):
    data = tmp_path / "ISIC2017"
    shutil.copytree(isic, data)
    splits = segmentation_splits(data)
    test_folder = data / "ISIC-2017_Test_v2_Data"
    first_train = splits["train"][0]
    shutil.copy(first_train["image"], test_folder / f"{first_train['id']}.jpg")
    with pytest.raises(SplitOverlapError, match="in both 'train'.*and 'test'"):
        segmentation_splits(data)
